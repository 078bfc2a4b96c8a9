import BitTorrent
import TorrentFSCore

// libFuzzer target: bytes written to a mount's `.add`. Neither the check at each write nor
// the parse at close crashes; what the parse accepts, the partial check accepts at every
// line boundary (a write is never refused for something the close would take); and each
// item is of the form its kind promises.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAddInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let partialOK: Bool
    do {
        try AddInput.check(partial: bytes)
        partialOK = true
    } catch {
        partialOK = false
    }
    let items: [AddItem]
    do {
        items = try AddInput.parse(bytes)
    } catch {
        return 0
    }
    if !partialOK { fatalError("the write check refused what the close accepts") }
    // The first and last few line ends: all of them would be quadratic in the input.
    let ends = bytes.indices.filter { bytes[$0] == UInt8(ascii: "\n") }
    for end in Set(ends.prefix(8) + ends.suffix(8)) {
        guard (try? AddInput.check(partial: Array(bytes[...end]))) != nil else {
            fatalError("the write check refused a prefix (to byte \(end)) of what the close accepts")
        }
    }
    if items.isEmpty { fatalError("nothing parsed, yet no error") }
    for item in items {
        switch item {
        case .magnet(let magnet):
            guard let again = try? MagnetLink(parsing: magnet.uri), again.infoHash == magnet.infoHash else {
                fatalError("a parsed magnet does not survive its URI: \(magnet.uri)")
            }
        case .metainfo(let metainfo, let raw):
            if raw != bytes || items.count != 1 { fatalError("a .torrent is not the whole input") }
            _ = metainfo.infoHash
        case .url(let url):
            let lower = url.lowercased()
            if !(lower.hasPrefix("http://") || lower.hasPrefix("https://"))
                || url.unicodeScalars.contains(where: { $0 == " " || $0.value < 0x20 }) {
                fatalError("bad URL \(url)")
            }
        case .path(let path):
            if !path.hasPrefix("/") { fatalError("relative path \(path)") }
        }
    }
    return 0
}
