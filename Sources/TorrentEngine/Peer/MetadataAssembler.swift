import BitTorrent

/// Collects a magnet link's info dictionary from peers with ut_metadata (BEP 9), checks it
/// against the info hash, and remembers who sent what so liars can be penalized.
public struct MetadataAssembler: Sendable {
    public let infoHash: InfoHash
    public private(set) var totalSize: Int?
    private var pieces: [[UInt8]?] = []
    private var requestedAt: [Int64?] = []
    private var sources: [Int: Int] = [:]  // piece → peer key
    /// The pieces of the last attempt that failed the hash check and who sent each, so the
    /// liar can be named once good metadata arrives (`liars(in:)`).
    public private(set) var failedAttempt: [Int: (data: [UInt8], peer: Int)] = [:]
    /// A piece request unanswered this long may go to another peer.
    public static let requestTimeout: Int64 = 10_000_000_000

    public init(infoHash: InfoHash) { self.infoHash = infoHash }

    /// A peer announced `metadata_size`. The first plausible size wins; a peer announcing
    /// another size is not asked.
    public mutating func sizeAnnounced(_ size: Int) -> Bool {
        guard size > 0, size <= MetadataMessage.maxMetadataSize else { return false }
        if let totalSize { return totalSize == size }
        totalSize = size
        let count = (size + MetadataMessage.pieceSize - 1) / MetadataMessage.pieceSize
        pieces = [[UInt8]?](repeating: nil, count: count)
        requestedAt = [Int64?](repeating: nil, count: count)
        return true
    }

    /// The next metadata piece to request, if any is missing and not recently requested.
    public mutating func nextRequest(now: Int64) -> Int? {
        for index in pieces.indices where pieces[index] == nil {
            if let at = requestedAt[index], now - at < MetadataAssembler.requestTimeout { continue }
            requestedAt[index] = now
            return index
        }
        return nil
    }

    public enum Outcome: Equatable, Sendable {
        case incomplete
        /// Rejected piece data (wrong size, index out of range): penalize the peer.
        case invalid
        case complete(Metainfo)
        /// All pieces arrived but do not hash to the info hash: these peers sent data.
        case hashMismatch(peers: [Int])
    }

    public mutating func received(piece: Int, totalSize: Int, data: [UInt8], from peer: Int) -> Outcome {
        guard let expected = self.totalSize, totalSize == expected, piece >= 0, piece < pieces.count else {
            return .invalid
        }
        let pieceLength = piece == pieces.count - 1 ? expected - piece * MetadataMessage.pieceSize : MetadataMessage.pieceSize
        guard data.count == pieceLength else { return .invalid }
        pieces[piece] = data
        sources[piece] = peer
        guard pieces.allSatisfy({ $0 != nil }) else { return .incomplete }
        let bytes = pieces.flatMap { $0! }
        if let metainfo = try? Metainfo(infoBytes: bytes, expected: infoHash) {
            return .complete(metainfo)
        }
        let liars = Array(Set(sources.values)).sorted()
        failedAttempt = [:]
        for (index, peer) in sources { failedAttempt[index] = (pieces[index]!, peer) }
        reset()
        return .hashMismatch(peers: liars)
    }

    /// Peers whose pieces in the failed attempt differ from the verified metadata.
    public func liars(in good: [UInt8]) -> [Int] {
        var out = Set<Int>()
        for (index, attempt) in failedAttempt {
            let start = index * MetadataMessage.pieceSize
            let end = min(start + MetadataMessage.pieceSize, good.count)
            if start >= good.count || !attempt.data.elementsEqual(good[start..<end]) { out.insert(attempt.peer) }
        }
        return out.sorted()
    }

    /// A peer rejected a request: let another peer have it at once.
    public mutating func rejected(piece: Int) {
        if piece >= 0 && piece < requestedAt.count { requestedAt[piece] = nil }
    }

    /// Drops the pieces collected so far (the size stays): a new single source starts over.
    public mutating func discardPieces() {
        for index in pieces.indices {
            pieces[index] = nil
            requestedAt[index] = nil
        }
        sources = [:]
    }

    /// Forgets everything, the size included: a liar may have announced it first.
    private mutating func reset() {
        totalSize = nil
        pieces = []
        requestedAt = []
        sources = [:]
    }
}
