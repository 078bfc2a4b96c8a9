import BitTorrent
import TestSupport
import Testing

@Suite("Lengths")
struct LengthsTests {
    struct Geometry: Sendable, CustomTestStringConvertible {
        var total: Int64
        var pieceLength: Int
        var pieceCount: Int
        var lastPieceSize: Int
        var lastPieceBlocks: Int
        var lastBlockLength: Int

        var testDescription: String { "\(total) bytes in \(pieceLength)-byte pieces" }
    }

    static let geometries: [Geometry] = [
        Geometry(total: 1, pieceLength: 16384, pieceCount: 1, lastPieceSize: 1, lastPieceBlocks: 1, lastBlockLength: 1),
        Geometry(total: 16384, pieceLength: 16384, pieceCount: 1, lastPieceSize: 16384, lastPieceBlocks: 1,
                 lastBlockLength: 16384),
        Geometry(total: 16385, pieceLength: 16384, pieceCount: 2, lastPieceSize: 1, lastPieceBlocks: 1, lastBlockLength: 1),
        Geometry(total: 40000, pieceLength: 16384, pieceCount: 3, lastPieceSize: 7232, lastPieceBlocks: 1,
                 lastBlockLength: 7232),
        Geometry(total: 1 << 20, pieceLength: 262_144, pieceCount: 4, lastPieceSize: 262_144, lastPieceBlocks: 16,
                 lastBlockLength: 16384),
        Geometry(total: 1_000_000, pieceLength: 262_144, pieceCount: 4, lastPieceSize: 213_568, lastPieceBlocks: 14,
                 lastBlockLength: 576),
        Geometry(total: (5 << 30) + 1, pieceLength: 4 << 20, pieceCount: 1281, lastPieceSize: 1, lastPieceBlocks: 1,
                 lastBlockLength: 1),
        Geometry(total: 50000, pieceLength: 20000, pieceCount: 3, lastPieceSize: 10000, lastPieceBlocks: 1,
                 lastBlockLength: 10000),
        Geometry(total: 1 << 40, pieceLength: 16 << 20, pieceCount: 65536, lastPieceSize: 16 << 20, lastPieceBlocks: 1024,
                 lastBlockLength: 16384),
    ]

    @Test("piece count, last piece size and its blocks", arguments: geometries)
    func geometry(_ g: Geometry) throws {
        let lengths = try #require(Lengths(totalLength: g.total, pieceLength: g.pieceLength))
        #expect(lengths.pieceCount == g.pieceCount)
        #expect(lengths.lastPiece.value == g.pieceCount - 1)
        #expect(lengths.lastPieceSize == g.lastPieceSize)
        #expect(lengths.pieceSize(lengths.lastPiece) == g.lastPieceSize)
        #expect(lengths.blockCount(lengths.lastPiece) == g.lastPieceBlocks)
        let blocks = lengths.blocks(lengths.lastPiece)
        #expect(blocks.count == g.lastPieceBlocks)
        #expect(blocks.last?.length == g.lastBlockLength)
        #expect(blocks.last?.begin == (g.lastPieceBlocks - 1) * 16384)
        #expect(lengths.byteRange(lengths.lastPiece).upperBound == g.total)
        if g.pieceCount > 1 {
            let first = try #require(lengths.piece(0))
            #expect(lengths.pieceSize(first) == g.pieceLength)
        }
    }

    @Test("invalid totals and piece lengths", arguments: [(0, 16384), (-1, 16384), (100, 0), (100, -16384)] as [(Int64, Int)])
    func invalid(total: Int64, pieceLength: Int) {
        #expect(Lengths(totalLength: total, pieceLength: pieceLength) == nil)
    }

    @Test("blocks of a piece whose length is not a multiple of 16 KiB")
    func oddPieceBlocks() throws {
        let lengths = try #require(Lengths(totalLength: 50000, pieceLength: 20000))
        let piece = try #require(lengths.piece(1))
        #expect(lengths.blocks(piece).map { [$0.begin, $0.length] } == [[0, 16384], [16384, 3616]])
        #expect(lengths.block(piece, index: 1)?.length == 3616)
        #expect(lengths.block(piece, index: 1)?.blockIndex == 1)
        #expect(lengths.block(piece, index: 2) == nil)
        #expect(lengths.block(piece, index: -1) == nil)
        #expect(lengths.pieceOffset(piece) == 20000)
        #expect(lengths.byteRange(piece) == 20000..<40000)
    }

    @Test("piece(_:) accepts exactly 0..<pieceCount", arguments: [(-1, false), (0, true), (2, true), (3, false), (Int.max, false)])
    func pieceIndex(index: Int, valid: Bool) throws {
        let lengths = try #require(Lengths(totalLength: 40000, pieceLength: 16384))
        #expect((lengths.piece(index) != nil) == valid)
        #expect(lengths.piece(index)?.value == (valid ? index : nil))
    }

    struct RangeCase: Sendable, CustomTestStringConvertible {
        var piece: Int
        var begin: Int
        var length: Int
        var maxLength = Lengths.blockSize
        var valid: Bool
        var testDescription: String { "piece \(piece) begin \(begin) length \(length) max \(maxLength) → \(valid)" }
    }

    /// 40000 bytes in 32 KiB pieces: piece 0 is 32768 bytes, piece 1 is 7232.
    static let ranges: [RangeCase] = [
        RangeCase(piece: 0, begin: 0, length: 16384, valid: true),
        RangeCase(piece: 0, begin: 16384, length: 16384, valid: true),
        RangeCase(piece: 0, begin: 32767, length: 1, valid: true),
        RangeCase(piece: 0, begin: 100, length: 16384, valid: true),
        RangeCase(piece: 1, begin: 0, length: 7232, valid: true),
        RangeCase(piece: 1, begin: 7231, length: 1, valid: true),
        RangeCase(piece: 0, begin: 0, length: 32768, maxLength: 32768, valid: true),
        RangeCase(piece: 0, begin: 16385, length: 16384, valid: false),  // ends past the piece
        RangeCase(piece: 0, begin: 32768, length: 1, valid: false),  // begins at the piece end
        RangeCase(piece: 1, begin: 0, length: 7233, valid: false),  // past the short last piece
        RangeCase(piece: 1, begin: 7232, length: 1, valid: false),
        RangeCase(piece: 0, begin: 0, length: 16385, valid: false),  // over 16 KiB
        RangeCase(piece: 0, begin: 0, length: 0, valid: false),
        RangeCase(piece: 0, begin: 0, length: -5, valid: false),
        RangeCase(piece: 0, begin: -1, length: 10, valid: false),
        RangeCase(piece: 2, begin: 0, length: 1, valid: false),  // index out of range
        RangeCase(piece: -1, begin: 0, length: 1, valid: false),
        RangeCase(piece: 0, begin: Int.max, length: 1, valid: false),
        RangeCase(piece: 0, begin: 1, length: Int.max, maxLength: Int.max, valid: false),
        RangeCase(piece: 0, begin: Int.min, length: 1, valid: false),
    ]

    @Test("range validation", arguments: ranges)
    func rangeValidation(_ c: RangeCase) throws {
        let lengths = try #require(Lengths(totalLength: 40000, pieceLength: 32768))
        let range = lengths.range(piece: c.piece, begin: c.begin, length: c.length, maxLength: c.maxLength)
        #expect((range != nil) == c.valid)
        if let range {
            #expect(range.piece.value == c.piece)
            #expect(range.begin == c.begin)
            #expect(range.length == c.length)
        }
    }

    /// 100000 bytes in 16 KiB pieces: 7 pieces, the last 1696 bytes.
    static let coverings: [(Range<Int64>, ClosedRange<Int>?)] = [
        (0..<1, 0...0),
        (0..<16384, 0...0),
        (0..<16385, 0...1),
        (16383..<16385, 0...1),
        (16384..<32768, 1...1),
        (16384..<32769, 1...2),
        (5..<5, nil),
        (16384..<16384, nil),
        (99999..<100000, 6...6),
        (98304..<100000, 6...6),
        (98303..<100000, 5...6),
        (90000..<200000, 5...6),
        (100000..<100010, nil),
        (-10..<1, 0...0),
        (-10..<0, nil),
        (0..<100000, 0...6),
        (Int64.min..<Int64.max, 0...6),
    ]

    @Test("pieces(covering:) at piece boundaries and for empty ranges", arguments: coverings)
    func covering(range: Range<Int64>, expected: ClosedRange<Int>?) throws {
        let lengths = try #require(Lengths(totalLength: 100_000, pieceLength: 16384))
        let covered = lengths.pieces(covering: range)
        #expect(covered.map { $0.lowerBound.value...$0.upperBound.value } == expected)
    }

    @Test("piece(containing:)", arguments: [
        (0, 0), (16383, 0), (16384, 1), (32767, 1), (98304, 6), (99999, 6), (100_000, nil), (-1, nil), (Int64.max, nil),
    ] as [(Int64, Int?)])
    func containing(offset: Int64, expected: Int?) throws {
        let lengths = try #require(Lengths(totalLength: 100_000, pieceLength: 16384))
        #expect(lengths.piece(containing: offset)?.value == expected)
    }

    @Test("random geometries: pieces and blocks tile the torrent exactly")
    func randomTiling() throws {
        var generator = SplitMix64(seed: 0x1E46)
        for _ in 0..<200 {
            let pieceLength = 16384 << Int.random(in: 0...4, using: &generator) + Int.random(in: -1...1, using: &generator)
            let total = Int64.random(in: 1...Int64(pieceLength) * 40, using: &generator)
            let lengths = try #require(Lengths(totalLength: total, pieceLength: pieceLength))
            var next: Int64 = 0
            for piece in lengths.pieces {
                let range = lengths.byteRange(piece)
                #expect(range.lowerBound == next)
                #expect(lengths.piece(containing: range.lowerBound) == piece)
                #expect(lengths.piece(containing: range.upperBound - 1) == piece)
                var begin = 0
                for block in lengths.blocks(piece) {
                    #expect(block.begin == begin)
                    #expect(block.length > 0 && block.length <= Lengths.blockSize)
                    #expect(lengths.range(piece: piece.value, begin: block.begin, length: block.length) == block)
                    begin += block.length
                }
                #expect(begin == lengths.pieceSize(piece))
                next = range.upperBound
            }
            #expect(next == total)
        }
    }
}
