import BitTorrent
import Testing
@testable import TorrentEngine

@Suite("Piece assembly and smart ban")
struct PieceAssemblyTests {
    /// Two pieces of two 16 KiB blocks each.
    static let lengths = Lengths(totalLength: 4 * 16384, pieceLength: 32768)!
    static func sender(_ id: Int) -> BlockSender { BlockSender(connection: id, address: PeerAddress(host: "10.0.0.\(id)", port: 1)) }
    static func block(_ piece: Int, _ index: Int) -> BlockRange { lengths.block(lengths.piece(piece)!, index: index)! }
    static func bytes(_ value: UInt8) -> [UInt8] { [UInt8](repeating: value, count: 16384) }

    static func add(_ assembly: inout PieceAssembly, _ piece: Int, _ index: Int, _ value: UInt8, from id: Int,
                    complete: Bool) -> PieceAssembly.Attempt? {
        bytes(value).withUnsafeBytes { assembly.add(block(piece, index), $0, from: sender(id), lengths: lengths, complete: complete) }
    }

    @Test("blocks land at their offsets; the piece leaves assembly when complete")
    func assemble() throws {
        var assembly = PieceAssembly()
        #expect(Self.add(&assembly, 1, 1, 0xBB, from: 2, complete: false) == nil)
        #expect(assembly.piecesInProgress == 1)
        let piece = try #require(Self.add(&assembly, 1, 0, 0xAA, from: 1, complete: true))
        #expect(piece.bytes == Self.bytes(0xAA) + Self.bytes(0xBB))
        #expect(piece.senders == [Self.sender(1), Self.sender(2)])
        #expect(assembly.piecesInProgress == 0)
    }

    @Test("a bad piece from one peer names it at once")
    func soleSender() throws {
        var assembly = PieceAssembly()
        _ = Self.add(&assembly, 0, 0, 1, from: 7, complete: false)
        let attempt = try #require(Self.add(&assembly, 0, 1, 2, from: 7, complete: true))
        #expect(assembly.failed(0, attempt) == Self.sender(7))
        #expect(assembly.rememberedFailures == 0)
    }

    @Test("a bad piece from two peers blames nobody until the good data shows whose block differed")
    func smartBan() throws {
        var assembly = PieceAssembly()
        _ = Self.add(&assembly, 0, 0, 0x11, from: 1, complete: false)      // honest
        let bad = try #require(Self.add(&assembly, 0, 1, 0x66, from: 2, complete: true))  // liar
        #expect(assembly.failed(0, bad) == nil)
        #expect(assembly.rememberedFailures == 1)
        // The piece passes later with 0x11 | 0x22: block 1 differed, sent by peer 2.
        #expect(assembly.passed(0, good: Self.bytes(0x11) + Self.bytes(0x22)) == [Self.sender(2)])
        #expect(assembly.rememberedFailures == 0)
        // A piece that passes with no failure on record blames nobody.
        #expect(assembly.passed(1, good: Self.bytes(0) + Self.bytes(0)).isEmpty)
    }

    @Test("a banned connection's unfinished pieces start over; failures are remembered up to a bound")
    func dropAndBound() {
        var assembly = PieceAssembly()
        _ = Self.add(&assembly, 0, 0, 1, from: 1, complete: false)
        _ = Self.add(&assembly, 1, 0, 1, from: 2, complete: false)
        _ = Self.add(&assembly, 1, 1, 1, from: 1, complete: false)
        #expect(assembly.dropPieces(from: 1) == [0, 1])
        #expect(assembly.piecesInProgress == 0)
        let shared = PieceAssembly.Attempt(bytes: Self.bytes(0) + Self.bytes(0), senders: [Self.sender(1), Self.sender(2)])
        for piece in 0..<(PieceAssembly.maxRememberedFailures + 5) { _ = assembly.failed(piece, shared) }
        #expect(assembly.rememberedFailures == PieceAssembly.maxRememberedFailures)
        #expect(assembly.passed(0, good: Self.bytes(9) + Self.bytes(9)).isEmpty, "the oldest was forgotten")
    }
}
