import BitTorrent

/// Who sent a block: enough to ban them after they disconnected.
struct BlockSender: Hashable, Sendable {
    var connection: Int
    var address: PeerAddress
    var peerID: PeerID?
}

/// Pieces put together from blocks in memory, with the sender of each block, and failed
/// attempts kept so that, once the piece passes its hash check, the blocks that differ name
/// the peer that lied ("smart ban"): honest peers that shared a bad piece are never blamed.
/// A value: blocks and verdicts in, complete pieces and peers to ban out.
struct PieceAssembly: Sendable {
    /// Failed attempts kept for comparison; the oldest is forgotten beyond this.
    static let maxRememberedFailures = 64

    struct Attempt: Sendable {
        var bytes: [UInt8]
        var senders: [BlockSender?]

        var distinctSenders: Set<BlockSender> { Set(senders.compactMap { $0 }) }
    }

    private var assembling: [Int: Attempt] = [:]
    private var failures: [Int: Attempt] = [:]
    private var failureOrder: [Int] = []

    /// Pieces with blocks in memory.
    var piecesInProgress: Int { assembling.count }
    var rememberedFailures: Int { failures.count }

    /// Copies a block into its piece. With `complete` (the picker says every block is
    /// here) the piece leaves assembly and is returned for verification.
    mutating func add(_ range: BlockRange, _ data: UnsafeRawBufferPointer, from sender: BlockSender,
                      lengths: Lengths, complete: Bool) -> Attempt? {
        let piece = range.piece.value
        // Taken out of the table while written to: a copy of the piece per block otherwise.
        var attempt = assembling.removeValue(forKey: piece)
            ?? Attempt(bytes: Self.unfilled(lengths.pieceSize(range.piece)),
                       senders: [BlockSender?](repeating: nil, count: lengths.blockCount(range.piece)))
        attempt.bytes.withUnsafeMutableBytes { target in
            target.baseAddress!.advanced(by: range.begin).copyMemory(from: data.baseAddress!, byteCount: data.count)
        }
        attempt.senders[range.blockIndex] = sender
        if complete { return attempt }
        assembling[piece] = attempt
        return nil
    }

    /// A piece buffer left as allocated: every byte is written by a block before the piece
    /// is complete, and a piece is trusted only after its hash check, so zeroing it first
    /// (a memset of every downloaded byte) buys nothing.
    static func unfilled(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// The attempt failed its hash check: the peer to ban if it alone sent the piece;
    /// otherwise nobody yet, and the attempt is kept for `passed`.
    mutating func failed(_ piece: Int, _ attempt: Attempt) -> BlockSender? {
        let senders = attempt.distinctSenders
        if senders.count == 1 { return senders.first }
        failures[piece] = attempt
        failureOrder.removeAll { $0 == piece }
        failureOrder.append(piece)
        if failureOrder.count > Self.maxRememberedFailures { failures[failureOrder.removeFirst()] = nil }
        return nil
    }

    /// The piece passed with `good` bytes: the senders of blocks that differed in the
    /// failed attempt kept for it, if any.
    mutating func passed(_ piece: Int, good: [UInt8]) -> Set<BlockSender> {
        guard let failed = failures.removeValue(forKey: piece) else { return [] }
        failureOrder.removeAll { $0 == piece }
        var liars = Set<BlockSender>()
        for (index, sender) in failed.senders.enumerated() {
            guard let sender else { continue }
            let start = index * Lengths.blockSize
            let end = min(start + Lengths.blockSize, good.count)
            if !failed.bytes[start..<end].elementsEqual(good[start..<end]) { liars.insert(sender) }
        }
        return liars
    }

    /// Drops every unfinished piece a connection contributed to (it was banned: its
    /// blocks are not trusted); returns those pieces, to be fetched again.
    mutating func dropPieces(from connection: Int) -> [Int] {
        let dropped = assembling.filter { $0.value.senders.contains { $0?.connection == connection } }.map(\.key)
        for piece in dropped { assembling[piece] = nil }
        return dropped.sorted()
    }
}
