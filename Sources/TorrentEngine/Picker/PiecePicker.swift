import BitTorrent

/// Chooses which blocks to request from which peer. A value type with no I/O and no clock
/// of its own: time arrives as `now` (nanoseconds on any monotonic scale).
///
/// Order of preference for a peer (see NOTES.md beside this file):
/// 1. pieces with a deadline, nearest first (reads from the filesystem);
/// 2. pieces already partly requested or received (finish what was started);
/// 3. by priority, then rarest first (or lowest index in sequential mode).
/// Endgame: once every wanted block is requested, a block may be requested again from
/// another peer; deadline pieces whose deadline is near get that treatment at once.
public struct PiecePicker: Sendable {
    /// Highest priority; reads map deadlines above every file priority.
    public static let maxPriority: UInt8 = 7
    /// Priority of a piece nobody wants (file deselected, BEP 53 `so`).
    public static let skip: UInt8 = 0
    /// Priority every piece starts with.
    public static let normalPriority: UInt8 = 1
    /// Most peers one block is requested from at once.
    public static let maxDuplicates = 2

    enum BlockState: UInt8, Sendable {
        case open, requested, received
    }

    struct Partial: Sendable {
        var blocks: [BlockState]
        /// How many peers each block is currently requested from.
        var requesters: [UInt8]
        var received = 0
        var requested = 0
    }

    public let lengths: Lengths
    public private(set) var have: Bitfield
    private var availability: [UInt16]
    private var priority: [UInt8]
    private var deadline: [Int64?]
    private var partial: [Int: Partial] = [:]
    /// Pieces received in full and waiting for their hash check.
    private var hashing = Set<Int>()
    /// Pieces ordered for picking; rebuilt lazily when availability or priority changes.
    private var order: [Int] = []
    private var orderDirty = true
    private var seed: UInt64
    /// Deadlines ordered nearest first (piece indices).
    private var deadlinePieces: [Int] = []
    public var sequential = false {
        didSet { orderDirty = true }
    }

    public init(lengths: Lengths, have: Bitfield, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        precondition(have.count == lengths.pieceCount)
        self.lengths = lengths
        self.have = have
        availability = [UInt16](repeating: 0, count: lengths.pieceCount)
        priority = [UInt8](repeating: PiecePicker.normalPriority, count: lengths.pieceCount)
        deadline = [Int64?](repeating: nil, count: lengths.pieceCount)
        self.seed = seed
    }

    // MARK: Availability

    public mutating func peerAdded(_ bitfield: Bitfield) {
        for piece in bitfield.setIndices { availability[piece] &+= 1 }
        orderDirty = true
    }

    public mutating func peerRemoved(_ bitfield: Bitfield) {
        for piece in bitfield.setIndices where availability[piece] > 0 { availability[piece] -= 1 }
        orderDirty = true
    }

    public mutating func peerHas(_ piece: PieceIndex) {
        availability[piece.value] &+= 1
        orderDirty = true
    }

    public func availability(of piece: PieceIndex) -> Int { Int(availability[piece.value]) }

    // MARK: Wants

    public mutating func setPriority(_ value: UInt8, for piece: PieceIndex) {
        let clamped = min(value, PiecePicker.maxPriority)
        guard priority[piece.value] != clamped else { return }
        priority[piece.value] = clamped
        orderDirty = true
    }

    public func priority(of piece: PieceIndex) -> UInt8 { priority[piece.value] }

    /// Sets (or clears) the time by which `piece` is needed.
    public mutating func setDeadline(_ when: Int64?, for piece: PieceIndex) {
        deadline[piece.value] = when
        deadlinePieces.removeAll { $0 == piece.value }
        if when != nil && !have[piece.value] {
            let index = deadlinePieces.firstIndex { deadline[$0]! > when! } ?? deadlinePieces.endIndex
            deadlinePieces.insert(piece.value, at: index)
        }
    }

    public func deadline(of piece: PieceIndex) -> Int64? { deadline[piece.value] }

    /// Whether the piece is still wanted: not had, not hashing, and a priority or deadline.
    public func wants(_ piece: Int) -> Bool {
        !have[piece] && !hashing.contains(piece) && (priority[piece] != PiecePicker.skip || deadline[piece] != nil)
    }

    /// True when every wanted piece is had.
    public var isDone: Bool {
        (0..<lengths.pieceCount).allSatisfy { have[$0] || (priority[$0] == PiecePicker.skip && deadline[$0] == nil) }
    }

    /// Whether a peer with `bitfield` has something we want.
    public func isInteresting(_ bitfield: Bitfield) -> Bool {
        if bitfield.isComplete { return !isDone }
        return bitfield.setIndices.contains { wants($0) }
    }

    // MARK: Picking

    /// Up to `count` blocks for a peer that has `peerHas`. `alreadyRequested` are the
    /// peer's outstanding blocks (never returned again for the same peer). `fast` peers
    /// get deadline pieces and duplicate requests of late deadline blocks. With `runs`, each
    /// fresh piece taken is followed by the next pieces in index order while they are
    /// wanted and untouched (a web seed's byte ranges).
    public mutating func pick(count: Int, peerHas: Bitfield, alreadyRequested: Set<BlockRange>, fast: Bool,
                              now: Int64, lateThreshold: Int64 = 1_000_000_000, runs: Bool = false) -> [BlockRange] {
        guard count > 0 else { return [] }
        var picked: [BlockRange] = []
        func take(_ piece: Int, allowDuplicates: Bool) {
            guard picked.count < count, peerHas[piece], wants(piece) else { return }
            picked += claimBlocks(piece, limit: count - picked.count, exclude: alreadyRequested,
                                  allowDuplicates: allowDuplicates)
        }
        // 1. Deadlines, nearest first; late ones may be duplicated to fast peers.
        for piece in deadlinePieces {
            let late = deadline[piece].map { $0 - now < lateThreshold } ?? false
            take(piece, allowDuplicates: fast && late)
            if picked.count >= count { return picked }
        }
        // 2. Pieces in progress.
        for piece in partial.keys.sorted() {
            take(piece, allowDuplicates: false)
            if picked.count >= count { return picked }
        }
        // 3. Fresh pieces by priority and rarity (or sequence).
        if orderDirty { rebuildOrder() }
        for piece in order where partial[piece] == nil {
            take(piece, allowDuplicates: false)
            var next = piece + 1
            while runs, picked.count < count, next < lengths.pieceCount, partial[next] == nil, peerHas[next], wants(next) {
                take(next, allowDuplicates: false)
                next += 1
            }
            if picked.count >= count { return picked }
        }
        // 4. Endgame: nothing left open, so request blocks others are already fetching.
        if picked.isEmpty {
            for piece in partial.keys.sorted() {
                take(piece, allowDuplicates: true)
                if picked.count >= count { break }
            }
        }
        return picked
    }

    private mutating func claimBlocks(_ piece: Int, limit: Int, exclude: Set<BlockRange>,
                                      allowDuplicates: Bool) -> [BlockRange] {
        let index = lengths.piece(piece)!
        var state = partial[piece] ?? Partial(blocks: [BlockState](repeating: .open, count: lengths.blockCount(index)),
                                              requesters: [UInt8](repeating: 0, count: lengths.blockCount(index)))
        var out: [BlockRange] = []
        for pass in 0..<(allowDuplicates ? 2 : 1) {
            for block in 0..<state.blocks.count where out.count < limit {
                let wanted = pass == 0 ? state.blocks[block] == .open
                    : state.blocks[block] == .requested && Int(state.requesters[block]) < PiecePicker.maxDuplicates
                guard wanted, let range = lengths.block(index, index: block), !exclude.contains(range),
                      !out.contains(range) else { continue }
                if state.blocks[block] == .open { state.requested += 1 }
                state.blocks[block] = .requested
                state.requesters[block] += 1
                out.append(range)
            }
        }
        if !out.isEmpty || partial[piece] != nil { partial[piece] = state }
        return out
    }

    /// A request was cancelled, rejected or timed out, or its peer went away.
    public mutating func requestDropped(_ block: BlockRange) {
        guard var state = partial[block.piece.value] else { return }
        let index = block.blockIndex
        guard state.blocks[index] == .requested else { return }
        state.requesters[index] -= 1
        if state.requesters[index] == 0 {
            state.blocks[index] = .open
            state.requested -= 1
        }
        if state.requested == 0 && state.received == 0 {
            partial[block.piece.value] = nil
        } else {
            partial[block.piece.value] = state
        }
    }

    public enum BlockOutcome: Equatable, Sendable {
        /// Not requested or already received: drop it.
        case unexpected
        case stored
        /// The last block: the piece goes to the hash check.
        case pieceComplete
    }

    /// A block arrived. Returns what to do with it.
    public mutating func blockReceived(_ block: BlockRange) -> BlockOutcome {
        guard var state = partial[block.piece.value] else { return .unexpected }
        let index = block.blockIndex
        guard state.blocks[index] == .requested else { return .unexpected }
        state.blocks[index] = .received
        state.requesters[index] = 0
        state.requested -= 1
        state.received += 1
        if state.received == state.blocks.count {
            partial[block.piece.value] = nil
            hashing.insert(block.piece.value)
            return .pieceComplete
        }
        partial[block.piece.value] = state
        return .stored
    }

    /// Whether the block was received already (duplicates in endgame are cancelled).
    public func isReceived(_ block: BlockRange) -> Bool {
        if have[block.piece.value] || hashing.contains(block.piece.value) { return true }
        return partial[block.piece.value]?.blocks[block.blockIndex] == .received
    }

    /// The hash check passed.
    public mutating func pieceVerified(_ piece: PieceIndex) {
        hashing.remove(piece.value)
        partial[piece.value] = nil
        have[piece.value] = true
        // A deadline is met once the piece is here; it no longer counts as wanted.
        deadline[piece.value] = nil
        deadlinePieces.removeAll { $0 == piece.value }
        orderDirty = true
    }

    /// A verified piece is gone (its bytes on disk no longer match its hash): wanted again
    /// like any missing piece.
    public mutating func pieceLost(_ piece: PieceIndex) {
        have[piece.value] = false
        partial[piece.value] = nil
        hashing.remove(piece.value)
        orderDirty = true
    }

    /// The hash check failed: every block is open again.
    public mutating func pieceFailed(_ piece: PieceIndex) {
        hashing.remove(piece.value)
        partial[piece.value] = nil
    }

    /// Whether some block of the piece is requested or received and the piece is not
    /// verified yet.
    public func isInProgress(_ piece: Int) -> Bool { partial[piece] != nil || hashing.contains(piece) }

    /// Pieces currently being downloaded (for status and tests).
    public var inProgress: [PieceIndex] { partial.keys.sorted().map { lengths.piece($0)! } }

    private mutating func rebuildOrder() {
        var candidates = (0..<lengths.pieceCount).filter { !have[$0] && priority[$0] != PiecePicker.skip }
        if sequential {
            candidates.sort { (priority[$0], -$0) > (priority[$1], -$1) }
        } else {
            // A per-piece pseudo-random tie break spreads peers over equally rare pieces.
            let salt = seed
            candidates.sort { a, b in
                if priority[a] != priority[b] { return priority[a] > priority[b] }
                if availability[a] != availability[b] { return availability[a] < availability[b] }
                return PiecePicker.mix(UInt64(a) ^ salt) < PiecePicker.mix(UInt64(b) ^ salt)
            }
        }
        order = candidates
        orderDirty = false
    }

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
