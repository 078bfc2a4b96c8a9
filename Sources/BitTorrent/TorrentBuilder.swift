/// The pure half of torrent creation: choosing a piece length and assembling the bencoded
/// .torrent from file names, lengths and piece hashes. Reading and hashing files is the
/// engine's `TorrentCreator`.
public enum TorrentBuilder {
    /// Smallest automatic piece length.
    public static let minAutomaticPieceLength = 16 * 1024
    /// Largest automatic piece length.
    public static let maxAutomaticPieceLength = 16 * 1024 * 1024
    /// The automatic choice aims at no more than this many pieces (and more than half of it).
    public static let targetPieceCount: Int64 = 2000

    /// A power of two giving about 1000–2000 pieces, clamped to 16 KiB…16 MiB.
    public static func automaticPieceLength(totalLength: Int64) -> Int {
        let (quotient, remainder) = totalLength.quotientAndRemainder(dividingBy: targetPieceCount)
        let wanted = quotient + (remainder > 0 ? 1 : 0)
        var length = minAutomaticPieceLength
        while Int64(length) < wanted && length < maxAutomaticPieceLength { length *= 2 }
        return length
    }

    /// One file of a torrent being made: its path below the torrent folder and its size.
    public struct FileSpec: Hashable, Sendable {
        public var path: [String]
        public var length: Int64

        public init(path: [String], length: Int64) {
            self.path = path
            self.length = length
        }
    }

    /// Optional fields of a .torrent outside the info dictionary, plus the private flag.
    public struct Options: Sendable {
        public var trackers: [[String]] = []
        public var webSeeds: [String] = []
        public var isPrivate = false
        public var comment: String?
        public var createdBy: String? = "torrentfs 0.1.0"
        public var creationDate: Int64?
        /// BEP 27 `source`, which changes the info hash of otherwise equal torrents.
        public var source: String?

        public init() {}
    }

    /// The info dictionary: single-file form when `files` is one file with an empty path.
    public static func infoDictionary(name: String, files: [FileSpec], pieceLength: Int, pieceHashes: [Digest20],
                                      options: Options) -> BValue {
        var info = BDictionary()
        info["name"] = .string(name)
        info["piece length"] = .integer(Int64(pieceLength))
        var pieces: [UInt8] = []
        pieces.reserveCapacity(pieceHashes.count * 20)
        for hash in pieceHashes { pieces += hash.bytes }
        info["pieces"] = .bytes(pieces)
        if files.count == 1 && files[0].path.isEmpty {
            info["length"] = .integer(files[0].length)
        } else {
            info["files"] = .list(files.map { file in
                .dictionary(BDictionary(["length": .integer(file.length), "path": .list(file.path.map { .string($0) })]))
            })
        }
        if options.isPrivate { info["private"] = 1 }
        if let source = options.source { info["source"] = .string(source) }
        return .dictionary(info)
    }

    /// The whole .torrent file, canonically encoded.
    public static func torrentFile(info: BValue, options: Options) -> [UInt8] {
        var root = BDictionary()
        root["info"] = info
        let tiers = options.trackers.filter { !$0.isEmpty }
        if let first = tiers.first?.first { root["announce"] = .string(first) }
        if tiers.count > 1 || (tiers.first?.count ?? 0) > 1 {
            root["announce-list"] = .list(tiers.map { .list($0.map { .string($0) }) })
        }
        if options.webSeeds.count == 1 {
            root["url-list"] = .string(options.webSeeds[0])
        } else if !options.webSeeds.isEmpty {
            root["url-list"] = .list(options.webSeeds.map { .string($0) })
        }
        if let comment = options.comment { root["comment"] = .string(comment) }
        if let createdBy = options.createdBy { root["created by"] = .string(createdBy) }
        if let date = options.creationDate { root["creation date"] = .integer(date) }
        return Bencode.encode(.dictionary(root))
    }
}
