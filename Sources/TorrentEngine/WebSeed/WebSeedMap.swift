import BitTorrent

/// Where a torrent's bytes live on a web seed (BEP 19): one URL per file. For a single-file
/// torrent the URL is the file (or, ending in `/`, the folder holding a file named as the
/// torrent); for a multi-file torrent the URL is the folder holding the torrent's folder:
/// `URL/NAME/PATH`, each segment percent-encoded. Padding files (BEP 47) are not on the
/// server: their bytes are zeros made locally. A value.
struct WebSeedMap: Sendable {
    /// A part of a torrent byte range inside one file.
    struct Segment: Equatable, Sendable {
        /// The file's URL; nil for padding (zeros, nothing to fetch).
        var url: String?
        /// Bytes of the file.
        var fileRange: Range<Int64>
        /// The file's whole length (a 200 answer is accepted only for a whole file).
        var fileLength: Int64
    }

    let files: [TorrentFile]
    let urls: [String?]

    init?(base: String, info: InfoDictionary) {
        guard let scheme = base.split(separator: ":", maxSplits: 1).first?.lowercased(),
              scheme == "http" || scheme == "https" else { return nil }
        files = info.files
        if info.isSingleFile {
            let url = base.hasSuffix("/") ? base + WebSeedMap.encode(info.name) : base
            urls = info.files.map { $0.isPadding ? nil : url }
        } else {
            let folder = (base.hasSuffix("/") ? base : base + "/") + WebSeedMap.encode(info.name) + "/"
            urls = info.files.map { file in
                file.isPadding ? nil : folder + file.path.map(WebSeedMap.encode).joined(separator: "/")
            }
        }
    }

    /// The segments of torrent bytes `range`, in order.
    func segments(_ range: Range<Int64>) -> [Segment] {
        var out: [Segment] = []
        for (index, file) in files.enumerated() where file.length > 0 {
            let start = max(range.lowerBound, file.offset)
            let end = min(range.upperBound, file.offset + file.length)
            guard start < end else { continue }
            out.append(Segment(url: urls[index], fileRange: (start - file.offset)..<(end - file.offset),
                               fileLength: file.length))
        }
        return out
    }

    /// RFC 3986 unreserved characters stay; every other byte is %XX.
    static func encode(_ segment: String) -> String {
        var out = ""
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(byte)))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
