/// Who needs which piece by when. Several holders (a waiting read, a reader's readahead)
/// may hold the same piece; the piece's deadline is the nearest of theirs. The table
/// reports only the changes the engine has not seen yet, in the order they were decided.
/// A value: time comes in as deadlines, nothing here reads a clock.
struct DeadlineTable: Sendable {
    /// A change to send to the engine: a piece's new nearest deadline, or nil (none holds it).
    typealias Change = (piece: Int, deadline: Int64?)

    /// Piece → holder → deadline.
    private var holds: [Int: [UInt64: Int64]] = [:]
    /// Deadline last reported per piece.
    private var reported: [Int: Int64] = [:]

    /// Holder's deadline on a piece, if it holds it.
    func deadline(of holder: UInt64, on piece: Int) -> Int64? { holds[piece]?[holder] }

    /// Pieces with at least one holder.
    var heldPieces: Set<Int> { Set(holds.keys) }

    mutating func hold(_ piece: Int, by holder: UInt64, until deadline: Int64, changes: inout [Change]) {
        holds[piece, default: [:]][holder] = deadline
        report(piece, changes: &changes)
    }

    mutating func release(_ piece: Int, by holder: UInt64, changes: inout [Change]) {
        guard holds[piece]?.removeValue(forKey: holder) != nil else { return }
        if holds[piece]?.isEmpty == true { holds[piece] = nil }
        report(piece, changes: &changes)
    }

    /// The piece arrived: every hold on it ends, and the engine already knows it is done.
    mutating func pieceArrived(_ piece: Int) {
        holds[piece] = nil
        reported[piece] = nil
    }

    private mutating func report(_ piece: Int, changes: inout [Change]) {
        let nearest = holds[piece]?.values.min()
        guard reported[piece] != nearest else { return }
        reported[piece] = nearest
        changes.append((piece, nearest))
    }
}
