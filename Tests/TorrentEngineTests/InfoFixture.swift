import BitTorrent

/// Info dictionaries for engine tests: files as (path, length, attr), dummy piece hashes.
enum InfoFixture {
    struct File {
        var path: [String]
        var length: Int64
        var attr: String?

        init(_ path: [String], _ length: Int64, attr: String? = nil) {
            self.path = path
            self.length = length
            self.attr = attr
        }
    }

    /// The bencoded info dictionary.
    static func value(name: String = "fixture", files: [File], pieceLength: Int = 16384, hashes: [Digest20]? = nil) -> BValue {
        let total = files.reduce(Int64(0)) { $0 + $1.length }
        let count = Int((total + Int64(pieceLength) - 1) / Int64(pieceLength))
        let pieces = hashes.map { $0.flatMap(\.bytes) }
            ?? (0..<count).flatMap { index in (0..<20).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) } }
        var info = BDictionary()
        info["files"] = .list(files.map { file in
            var entry = BDictionary()
            if let attr = file.attr { entry["attr"] = .string(attr) }
            entry["length"] = .integer(file.length)
            entry["path"] = .list(file.path.map { .string($0) })
            return .dictionary(entry)
        })
        info["name"] = .string(name)
        info["piece length"] = .integer(Int64(pieceLength))
        info["pieces"] = .bytes(pieces)
        return .dictionary(info)
    }

    static func info(name: String = "fixture", files: [File], pieceLength: Int = 16384) throws -> InfoDictionary {
        try InfoDictionary(value(name: name, files: files, pieceLength: pieceLength))
    }
}
