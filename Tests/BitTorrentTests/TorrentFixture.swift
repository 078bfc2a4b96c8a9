import BitTorrent

/// Builds info dictionaries and .torrent bytes for metainfo tests, one field at a time so a
/// test can break exactly one thing.
enum TorrentFixture {
    static let pieceLength: Int64 = 16384

    /// `count` distinct piece hashes, concatenated.
    static func pieces(_ count: Int) -> [UInt8] {
        (0..<count).flatMap { index in (0..<20).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) } }
    }

    static func pieceCount(_ total: Int64, pieceLength: Int64 = pieceLength) -> Int {
        Int((total + pieceLength - 1) / pieceLength)
    }

    /// A valid single-file info dictionary.
    static func singleFile(name: String = "file.bin", length: Int64 = 40000) -> BDictionary {
        var info = BDictionary()
        info["length"] = .integer(length)
        info["name"] = .string(name)
        info["piece length"] = .integer(pieceLength)
        info["pieces"] = .bytes(pieces(pieceCount(length)))
        return info
    }

    /// One entry of `files`, with raw path elements.
    static func file(_ path: [[UInt8]], length: Int64, attr: String? = nil) -> BValue {
        var entry = BDictionary()
        if let attr { entry["attr"] = .string(attr) }
        entry["length"] = .integer(length)
        entry["path"] = .list(path.map { .bytes($0) })
        return .dictionary(entry)
    }

    static func file(_ path: [String], length: Int64, attr: String? = nil) -> BValue {
        file(path.map { Array($0.utf8) }, length: length, attr: attr)
    }

    /// A valid multi-file info dictionary with the right number of pieces for `files`.
    static func multiFile(name: String = "folder", files: [BValue]) -> BDictionary {
        let total = files.reduce(Int64(0)) { $0 + max(0, $1["length"]?.integerValue ?? 0) }
        var info = BDictionary()
        info["files"] = .list(files)
        info["name"] = .string(name)
        info["piece length"] = .integer(pieceLength)
        info["pieces"] = .bytes(pieces(pieceCount(total)))
        return info
    }

    /// A whole .torrent (canonically encoded) around `info`.
    static func torrent(_ info: BDictionary, extra: BDictionary = BDictionary()) -> [UInt8] {
        torrent(info: .dictionary(info), extra: extra)
    }

    static func torrent(info: BValue, extra: BDictionary = BDictionary()) -> [UInt8] {
        var root = extra
        root["info"] = info
        return Bencode.encode(.dictionary(root))
    }

    /// Parses a torrent made of `files`, for sanitizer checks.
    static func parse(files: [BValue]) throws -> Metainfo {
        try Metainfo(bytes: torrent(multiFile(files: files)))
    }
}
