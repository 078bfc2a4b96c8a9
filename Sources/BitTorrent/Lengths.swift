/// A piece index known to be inside its torrent. Only `Lengths` makes them, so code that
/// holds one never needs to check it again.
public struct PieceIndex: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let value: Int

    fileprivate init(unchecked value: Int) { self.value = value }

    public static func < (lhs: PieceIndex, rhs: PieceIndex) -> Bool { lhs.value < rhs.value }
    public var description: String { "piece \(value)" }
}

/// One block of a piece: the unit of BEP 3 requests. Made only by `Lengths`.
public struct BlockRange: Hashable, Sendable, CustomStringConvertible {
    public let piece: PieceIndex
    public let begin: Int
    public let length: Int

    fileprivate init(piece: PieceIndex, begin: Int, length: Int) {
        self.piece = piece
        self.begin = begin
        self.length = length
    }

    /// Index of this block within its piece.
    public var blockIndex: Int { begin / Lengths.blockSize }
    public var description: String { "\(piece) [\(begin)..<\(begin + length)]" }
}

/// All offset arithmetic of a torrent: bytes ↔ pieces ↔ blocks ↔ files.
public struct Lengths: Hashable, Sendable {
    /// Request size every client uses (BEP 3 recommends 16 KiB; larger requests are refused by peers).
    public static let blockSize = 16 * 1024

    public let totalLength: Int64
    public let pieceLength: Int
    public let pieceCount: Int

    /// Nil when the total length or the piece length is not positive.
    public init?(totalLength: Int64, pieceLength: Int) {
        guard totalLength > 0, pieceLength > 0 else { return nil }
        self.totalLength = totalLength
        self.pieceLength = pieceLength
        let (quotient, remainder) = totalLength.quotientAndRemainder(dividingBy: Int64(pieceLength))
        guard quotient < Int64(Int.max) else { return nil }
        pieceCount = Int(quotient) + (remainder == 0 ? 0 : 1)
    }

    /// The piece with this index, if the torrent has it.
    public func piece(_ index: Int) -> PieceIndex? {
        index >= 0 && index < pieceCount ? PieceIndex(unchecked: index) : nil
    }

    public var pieces: [PieceIndex] { (0..<pieceCount).map { PieceIndex(unchecked: $0) } }
    public var lastPiece: PieceIndex { PieceIndex(unchecked: pieceCount - 1) }

    public func pieceOffset(_ piece: PieceIndex) -> Int64 { Int64(piece.value) * Int64(pieceLength) }

    public func pieceSize(_ piece: PieceIndex) -> Int {
        piece.value == pieceCount - 1 ? lastPieceSize : pieceLength
    }

    public var lastPieceSize: Int { Int(totalLength - Int64(pieceCount - 1) * Int64(pieceLength)) }

    public func blockCount(_ piece: PieceIndex) -> Int {
        (pieceSize(piece) + Lengths.blockSize - 1) / Lengths.blockSize
    }

    /// The blocks of a piece, the last one possibly short.
    public func blocks(_ piece: PieceIndex) -> [BlockRange] {
        let size = pieceSize(piece)
        return stride(from: 0, to: size, by: Lengths.blockSize).map {
            BlockRange(piece: piece, begin: $0, length: min(Lengths.blockSize, size - $0))
        }
    }

    /// Block `index` of `piece`, if it exists.
    public func block(_ piece: PieceIndex, index: Int) -> BlockRange? {
        guard index >= 0, index < blockCount(piece) else { return nil }
        let begin = index * Lengths.blockSize
        return BlockRange(piece: piece, begin: begin, length: min(Lengths.blockSize, pieceSize(piece) - begin))
    }

    /// Validates a range a peer asked for or sent: inside the piece, 1 to `maxLength` bytes.
    public func range(piece: Int, begin: Int, length: Int, maxLength: Int = Lengths.blockSize) -> BlockRange? {
        guard let index = self.piece(piece), begin >= 0, length > 0, length <= maxLength,
              begin <= pieceSize(index) - length else { return nil }
        return BlockRange(piece: index, begin: begin, length: length)
    }

    /// The piece holding the byte at `offset`.
    public func piece(containing offset: Int64) -> PieceIndex? {
        guard offset >= 0, offset < totalLength else { return nil }
        return PieceIndex(unchecked: Int(offset / Int64(pieceLength)))
    }

    /// Pieces overlapping a byte range of the torrent (empty for an empty range).
    public func pieces(covering range: Range<Int64>) -> ClosedRange<PieceIndex>? {
        let clamped = range.clamped(to: 0..<totalLength)
        guard !clamped.isEmpty, let first = piece(containing: clamped.lowerBound),
              let last = piece(containing: clamped.upperBound - 1) else { return nil }
        return first...last
    }

    /// Byte range of a piece within the torrent.
    public func byteRange(_ piece: PieceIndex) -> Range<Int64> {
        let start = pieceOffset(piece)
        return start..<(start + Int64(pieceSize(piece)))
    }
}
