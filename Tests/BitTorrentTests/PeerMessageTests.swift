import BitTorrent
import TestSupport
import Testing

/// The error `body` throws, or nil when it returns.
private func wireError<T>(_ body: () throws(WireError) -> T) -> WireError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

/// Decodes every complete message of `bytes`, in chunks of `chunk` bytes (0: all at once),
/// the way the NIO wrapper does: append, then decode until it needs more.
private func decodeAll(_ bytes: [UInt8], chunk: Int, decoder: PeerMessageDecoder = PeerMessageDecoder())
    throws(WireError) -> (messages: [PeerMessage], leftover: Int)
{
    var buffer: [UInt8] = []
    var messages: [PeerMessage] = []
    var position = 0
    while position < bytes.count {
        let end = chunk == 0 ? bytes.count : min(bytes.count, position + chunk)
        buffer += bytes[position..<end]
        position = end
        while let (message, consumed) = try decoder.decode(buffer[...]) {
            messages.append(message)
            buffer.removeFirst(consumed)
        }
    }
    return (messages, buffer.count)
}

private let sampleHash = InfoHash((0..<20).map { UInt8($0 * 7) })!
private let samplePeer = PeerID(Array("-TF0100-abcdefghijkl".utf8))!

@Suite("Peer wire messages")
struct PeerMessageTests {
    /// One of every message, with values that exercise all four bytes of each integer.
    static let everyMessage: [PeerMessage] = [
        .keepAlive, .choke, .unchoke, .interested, .notInterested,
        .have(piece: 0x0102_0304),
        .bitfield([0xFF, 0x00, 0xA5]),
        .bitfield([]),
        .request(piece: 7, begin: 0x4000, length: 0x4000),
        .piece(piece: 3, begin: 0x8000, block: [1, 2, 3, 4, 5]),
        .piece(piece: 0, begin: 0, block: []),
        .cancel(piece: 0x7FFF_FFFF, begin: 16, length: 1),
        .port(6881),
        .port(0xFFFF),
        .suggest(piece: 12),
        .haveAll, .haveNone,
        .reject(piece: 1, begin: 2, length: 3),
        .allowedFast(piece: 99),
        .extended(id: 0, payload: Array("d1:md11:ut_metadatai1eee".utf8)),
        .extended(id: 3, payload: []),
    ]

    @Test("every message round-trips through encode and decode", arguments: everyMessage)
    func roundTrip(message: PeerMessage) throws {
        let wire = message.encoded
        let decoded = try PeerMessageDecoder().decode(wire[...])
        #expect(decoded?.message == message)
        #expect(decoded?.consumed == wire.count)
        // One byte short is "need more", never an error or a partial message.
        #expect(try PeerMessageDecoder().decode(wire.dropLast()) == nil)
    }

    /// Golden bytes from BEP 3 / BEP 6 / BEP 10.
    @Test("wire forms match the specification byte for byte")
    func goldenBytes() {
        let cases: [(PeerMessage, [UInt8])] = [
            (.keepAlive, [0, 0, 0, 0]),
            (.choke, [0, 0, 0, 1, 0]),
            (.unchoke, [0, 0, 0, 1, 1]),
            (.interested, [0, 0, 0, 1, 2]),
            (.notInterested, [0, 0, 0, 1, 3]),
            (.have(piece: 0x0102_0304), [0, 0, 0, 5, 4, 1, 2, 3, 4]),
            (.bitfield([0xC0]), [0, 0, 0, 2, 5, 0xC0]),
            (.request(piece: 1, begin: 0x4000, length: 0x4000), [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0]),
            (.piece(piece: 2, begin: 3, block: [0xAA]), [0, 0, 0, 10, 7, 0, 0, 0, 2, 0, 0, 0, 3, 0xAA]),
            (.cancel(piece: 1, begin: 2, length: 3), [0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]),
            (.port(0x1AE1), [0, 0, 0, 3, 9, 0x1A, 0xE1]),
            (.suggest(piece: 5), [0, 0, 0, 5, 0x0D, 0, 0, 0, 5]),
            (.haveAll, [0, 0, 0, 1, 0x0E]),
            (.haveNone, [0, 0, 0, 1, 0x0F]),
            (.reject(piece: 1, begin: 2, length: 3), [0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]),
            (.allowedFast(piece: 6), [0, 0, 0, 5, 0x11, 0, 0, 0, 6]),
            (.extended(id: 2, payload: [0x64, 0x65]), [0, 0, 0, 4, 20, 2, 0x64, 0x65]),
        ]
        for (message, bytes) in cases {
            #expect(message.encoded == bytes, "\(message)")
        }
    }

    @Test("byte by byte, in odd chunks and all at once give the same messages")
    func chunking() throws {
        var stream: [UInt8] = []
        for message in Self.everyMessage { message.encode(into: &stream) }
        var generator = SplitMix64(seed: 0xB17E)
        let big = PeerMessage.piece(piece: 9, begin: 0, block: generator.bytes(16384))
        big.encode(into: &stream)
        let expected = Self.everyMessage + [big]
        for chunk in [0, 1, 2, 3, 5, 7, 13, 64, 1000] {
            let (messages, leftover) = try decodeAll(stream, chunk: chunk)
            #expect(messages == expected, "chunk \(chunk)")
            #expect(leftover == 0, "chunk \(chunk)")
        }
    }

    @Test("an incomplete tail stays in the buffer")
    func partialTail() throws {
        let stream = PeerMessage.unchoke.encoded + Array(PeerMessage.have(piece: 1).encoded.prefix(6))
        let (messages, leftover) = try decodeAll(stream, chunk: 1)
        #expect(messages == [.unchoke])
        #expect(leftover == 6)
    }

    @Test("a length over the limit is refused from the 4-byte prefix alone")
    func tooLong() {
        let limit = PeerMessageDecoder.defaultMaxLength
        #expect(limit >= 16384 + 13)
        #expect(limit <= (1 << 20) + 13)
        // Only the prefix: no body has arrived, yet the claim is refused.
        for claimed in [limit + 1, 0x7FFF_FFFF, 0xFFFF_FFFF] {
            let prefix: [UInt8] = [UInt8(truncatingIfNeeded: claimed >> 24), UInt8(truncatingIfNeeded: claimed >> 16),
                                   UInt8(truncatingIfNeeded: claimed >> 8), UInt8(truncatingIfNeeded: claimed)]
            let error = wireError { () throws(WireError) in try PeerMessageDecoder().decode(prefix[...]) }
            #expect(error?.reason == .messageTooLong(length: claimed, limit: limit), "claimed \(claimed)")
        }
        // The limit itself is allowed: it waits for the body.
        let atLimit: [UInt8] = [UInt8(limit >> 24), UInt8((limit >> 16) & 0xFF), UInt8((limit >> 8) & 0xFF), UInt8(limit & 0xFF), 7]
        #expect(wireError { () throws(WireError) in try PeerMessageDecoder().decode(atLimit[...]) } == nil)
        // A custom limit is honored.
        let small = PeerMessageDecoder(maxLength: 100)
        let error = wireError { () throws(WireError) in try small.decode(PeerMessage.bitfield([UInt8](repeating: 0, count: 100)).encoded[...]) }
        #expect(error?.reason == .messageTooLong(length: 101, limit: 100))
    }

    @Test("fixed-size messages with the wrong length are refused")
    func wrongLengths() {
        // (id, body length); the body is id followed by zeros.
        let cases: [(UInt8, Int)] = [
            (0, 2), (1, 5), (2, 2), (3, 9),
            (4, 1), (4, 4), (4, 6),
            (6, 12), (6, 14), (6, 1),
            (7, 8), (7, 1),
            (8, 12), (8, 17),
            (9, 2), (9, 4),
            (0x0D, 4), (0x0E, 2), (0x0F, 5),
            (0x10, 9), (0x11, 1),
            (20, 1),
        ]
        for (id, length) in cases {
            let wire: [UInt8] = [0, 0, UInt8(length >> 8), UInt8(length & 0xFF), id] + [UInt8](repeating: 0, count: length - 1)
            let error = wireError { () throws(WireError) in try PeerMessageDecoder().decode(wire[...]) }
            #expect(error?.reason == .wrongLength(id: id, length: length), "id \(id) length \(length)")
        }
    }

    @Test("unknown message ids are refused", arguments: [10, 11, 12, 0x12, 19, 21, 0xFF] as [UInt8])
    func unknownID(id: UInt8) {
        let wire: [UInt8] = [0, 0, 0, 1, id]
        let error = wireError { () throws(WireError) in try PeerMessageDecoder().decode(wire[...]) }
        #expect(error?.reason == .unknownMessage(id: id))
    }

    @Test("a message after the end of the first is not read into it")
    func boundaries() throws {
        let stream = PeerMessage.have(piece: 1).encoded + PeerMessage.have(piece: 2).encoded
        let first = try #require(try PeerMessageDecoder().decode(stream[...]))
        #expect(first.message == .have(piece: 1))
        let second = try PeerMessageDecoder().decode(stream[first.consumed...])
        #expect(second?.message == .have(piece: 2))
    }
}

@Suite("Handshake")
struct HandshakeTests {
    @Test("encodes to 68 bytes in BEP 3 layout and decodes back")
    func roundTrip() throws {
        let handshake = Handshake(infoHash: sampleHash, peerID: samplePeer, extensions: true, fast: true, dht: true)
        let wire = handshake.encoded
        #expect(wire.count == Handshake.length)
        #expect(wire[0] == 19)
        #expect(Array(wire[1..<20]) == Array("BitTorrent protocol".utf8))
        #expect(Array(wire[20..<28]) == [0, 0, 0, 0, 0, 0x10, 0, 0x05])
        #expect(Array(wire[28..<48]) == sampleHash.bytes)
        #expect(Array(wire[48..<68]) == samplePeer.bytes)
        #expect(try Handshake.decode(wire[...]) == handshake)
        // Trailing bytes (the first message) are left alone.
        #expect(try Handshake.decode((wire + [0, 0, 0, 1, 1])[...]) == handshake)
    }

    @Test("reserved bits", arguments: [
        (false, false, false, [0, 0, 0, 0, 0, 0, 0, 0] as [UInt8]),
        (true, false, false, [0, 0, 0, 0, 0, 0x10, 0, 0]),
        (false, true, false, [0, 0, 0, 0, 0, 0, 0, 0x04]),
        (false, false, true, [0, 0, 0, 0, 0, 0, 0, 0x01]),
    ])
    func reservedBits(extensions: Bool, fast: Bool, dht: Bool, reserved: [UInt8]) throws {
        let handshake = Handshake(infoHash: sampleHash, peerID: samplePeer, extensions: extensions, fast: fast, dht: dht)
        #expect(handshake.reserved == reserved)
        let decoded = try #require(try Handshake.decode(handshake.encoded[...]))
        #expect(decoded.supportsExtensions == extensions)
        #expect(decoded.supportsFast == fast)
        #expect(decoded.supportsDHT == dht)
    }

    @Test("unknown reserved bits are kept and ignored")
    func foreignReservedBits() throws {
        var wire = Handshake(infoHash: sampleHash, peerID: samplePeer, extensions: false, fast: false).encoded
        wire[20] = 0x80  // e.g. Azureus messaging
        wire[25] = 0xEF  // every bit of byte 5 but the extension bit
        wire[27] = 0xFA  // every bit of byte 7 but fast (0x04) and DHT (0x01)
        let decoded = try #require(try Handshake.decode(wire[...]))
        #expect(decoded.reserved == [0x80, 0, 0, 0, 0, 0xEF, 0, 0xFA])
        #expect(!decoded.supportsExtensions)
        #expect(!decoded.supportsFast)
        #expect(!decoded.supportsDHT)
    }

    @Test("fewer than 68 good bytes is need-more, at every length")
    func needMore() throws {
        let wire = Handshake(infoHash: sampleHash, peerID: samplePeer).encoded
        for length in 0..<Handshake.length {
            #expect(try Handshake.decode(wire.prefix(length)) == nil, "length \(length)")
        }
    }

    @Test("a wrong protocol string is rejected as soon as the bad byte is visible")
    func wrongProtocol() {
        let good = Handshake(infoHash: sampleHash, peerID: samplePeer).encoded
        // Wrong length byte: refused from the first byte.
        var badLength = good
        badLength[0] = 18
        #expect(wireError { () throws(WireError) in try Handshake.decode(badLength.prefix(1)) } == WireError(.badHandshake, offset: 0))
        // A wrong character at position p (1...19) is refused once p + 1 bytes are in,
        // and not before.
        for position in 1...19 {
            var bad = good
            bad[position] ^= 0x20
            for visible in 1...Handshake.length {
                let error = wireError { () throws(WireError) in try Handshake.decode(bad.prefix(visible)) }
                if visible <= position {
                    #expect(error == nil, "byte \(position) changed, \(visible) visible")
                } else {
                    #expect(error?.reason == .badHandshake, "byte \(position) changed, \(visible) visible")
                }
            }
        }
        // An HTTP request on the peer port.
        let http = Array("GET / HTTP/1.1\r\n".utf8)
        #expect(wireError { () throws(WireError) in try Handshake.decode(http[...]) }?.reason == .badHandshake)
    }

    @Test("decodes from a slice that does not start at index 0")
    func sliceOffsets() throws {
        let handshake = Handshake(infoHash: sampleHash, peerID: samplePeer)
        let buffer: [UInt8] = [9, 9, 9] + handshake.encoded
        #expect(try Handshake.decode(buffer[3...]) == handshake)
    }
}

@Suite("Allowed fast set (BEP 6)")
struct AllowedFastTests {
    @Test("the BEP's example: 80.4.4.200, info hash of 0xAA bytes, 1313 pieces")
    func specVector() {
        let hash = InfoHash([UInt8](repeating: 0xAA, count: 20))!
        #expect(AllowedFast.set(ipv4: [80, 4, 4, 200], infoHash: hash, pieceCount: 1313, count: 7)
            == [1059, 431, 808, 1217, 287, 376, 1188])
        #expect(AllowedFast.set(ipv4: [80, 4, 4, 200], infoHash: hash, pieceCount: 1313, count: 9)
            == [1059, 431, 808, 1217, 287, 376, 1188, 353, 508])
        // Only the /24 counts.
        #expect(AllowedFast.set(ipv4: [80, 4, 4, 1], infoHash: hash, pieceCount: 1313, count: 9)
            == AllowedFast.set(ipv4: [80, 4, 4, 200], infoHash: hash, pieceCount: 1313, count: 9))
    }

    @Test("small torrents get every piece at most once; bad input gives nothing")
    func edges() {
        let hash = InfoHash([UInt8](repeating: 1, count: 20))!
        #expect(Set(AllowedFast.set(ipv4: [10, 0, 0, 1], infoHash: hash, pieceCount: 3)) == [0, 1, 2])
        #expect(AllowedFast.set(ipv4: [10, 0, 0], infoHash: hash, pieceCount: 30).isEmpty)
        #expect(AllowedFast.set(ipv4: [10, 0, 0, 1], infoHash: hash, pieceCount: 0).isEmpty)
    }
}
