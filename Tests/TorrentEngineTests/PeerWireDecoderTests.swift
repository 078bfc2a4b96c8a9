import BitTorrent
import NIOCore
import NIOEmbedded
import Testing
@testable import TorrentEngine

/// The peer wire decoder in a real NIO pipeline (EmbeddedChannel): every frame comes out
/// the same whether the bytes arrive all at once or one at a time, and malformed input
/// fails with the codec's error.
@Suite("Peer wire decoder")
struct PeerWireDecoderTests {
    static let handshake = Handshake(infoHash: InfoHash(Array(repeating: 1, count: 20))!,
                                     peerID: PeerID(Array(repeating: 2, count: 20))!)
    static let block = (0..<16384).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    static let messages: [PeerMessage] = [
        .keepAlive, .choke, .unchoke, .interested, .notInterested, .have(piece: 9), .bitfield([0xF0, 0x01]),
        .request(piece: 1, begin: 16384, length: 16384), .cancel(piece: 1, begin: 0, length: 16384), .port(6881),
        .suggest(piece: 3), .haveAll, .haveNone, .reject(piece: 2, begin: 0, length: 16384), .allowedFast(piece: 4),
        .extended(id: 0, payload: Array("d1:md11:ut_metadatai1eee".utf8)),
        .piece(piece: 5, begin: 32768, block: block), .piece(piece: 0, begin: 0, block: []),
    ]

    /// What the decoder should say for `message`: PIECE as a block slice.
    static func expected(_ message: PeerMessage) -> String {
        if case .piece(let piece, let begin, let block) = message { return "block \(piece) \(begin) \(block.hashValue)" }
        return "\(message)"
    }

    static func render(_ inbound: PeerWireDecoder.Inbound) -> String {
        switch inbound {
        case .handshake(let handshake): return "handshake \(handshake.infoHash.hex)"
        case .message(let message): return "\(message)"
        case .block(let piece, let begin, let bytes): return "block \(piece) \(begin) \(Array(bytes.readableBytesView).hashValue)"
        }
    }

    /// Feeds `bytes` in chunks of `chunk` and returns everything decoded.
    static func feed(_ bytes: [UInt8], chunk: Int) throws -> [String] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerWireDecoder()))
        defer { _ = try? channel.finish() }
        var out: [String] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes[offset..<end]))
            while let inbound = try channel.readInbound(as: PeerWireDecoder.Inbound.self) { out.append(render(inbound)) }
            offset = end
        }
        return out
    }

    @Test("a handshake and every message decode alike in any chunking", arguments: [1, 7, 68, 1000, 1 << 20])
    func chunking(chunk: Int) throws {
        let wire = Self.handshake.encoded + Self.messages.flatMap(\.encoded)
        let want = ["handshake \(Self.handshake.infoHash.hex)"] + Self.messages.map(Self.expected)
        #expect(try Self.feed(wire, chunk: chunk) == want)
    }

    @Test("malformed input fails with the codec's error", arguments: [
        // (what, bytes after a good handshake, or a bad handshake itself)
        ("handshake with a wrong length byte", [18] + Array("BitTorrent protocol".utf8), false),
        ("handshake with a wrong protocol string", [19] + Array("BitTorrent protocoX".utf8), false),
        ("message longer than the limit", [0x00, 0x20, 0x00, 0x00, 7], true),
        ("HAVE of the wrong length", [0, 0, 0, 4, 4, 0, 0, 0], true),
        ("REQUEST of the wrong length", [0, 0, 0, 12, 6] + [UInt8](repeating: 0, count: 11), true),
        ("unknown message id", [0, 0, 0, 1, 99], true),
        ("extended message without its id", [0, 0, 0, 1, 20], true),
        ("PIECE shorter than its header", [0, 0, 0, 5, 7, 0, 0, 0, 1], true),
    ] as [(String, [UInt8], Bool)])
    func malformed(what: String, bytes: [UInt8], afterHandshake: Bool) {
        let wire = (afterHandshake ? Self.handshake.encoded : []) + bytes
        for chunk in [1, wire.count] {
            #expect(throws: WireError.self, "\(what), chunk \(chunk)") { try Self.feed(wire, chunk: chunk) }
        }
    }

    @Test("an oversized length is refused from its four bytes alone, before the body arrives")
    func earlyRefusal() {
        let wire = Self.handshake.encoded + [0x7F, 0xFF, 0xFF, 0xFF]
        #expect(throws: WireError.self) { try Self.feed(wire, chunk: wire.count) }
    }
}
