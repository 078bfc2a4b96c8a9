import Foundation
import TestSupport
import Testing

@testable import BitTorrent

@Suite("uTP packets")
struct UTPPacketTests {
    /// A STATE with a selective ack, written out by hand from BEP 29's layout.
    static let stateWithSack: [UInt8] = [
        0x21, 0x01, 0x12, 0x34,  // type 2 (STATE) | version 1, first extension 1 (SACK), connection id 0x1234
        0x00, 0x0F, 0x42, 0x40,  // timestamp 1_000_000 µs
        0x00, 0x00, 0x03, 0xE8,  // timestamp difference 1000 µs
        0x00, 0x10, 0x00, 0x00,  // window 1 MiB
        0xFF, 0xFE, 0x00, 0x07,  // seq 0xFFFE, ack 7
        0x00, 0x04, 0x05, 0x00, 0x00, 0x80,  // last extension, 4 bytes: packets 9, 11 and 40
    ]

    @Test("golden bytes decode and encode back")
    func golden() throws {
        let packet = try UTPPacket.decode(Self.stateWithSack)
        #expect(packet.kind == .state && packet.connectionID == 0x1234)
        #expect(packet.timestamp == 1_000_000 && packet.timestampDifference == 1000 && packet.window == 1 << 20)
        #expect(packet.seq == 0xFFFE && packet.ack == 7)
        #expect(packet.selectiveAck == [0x05, 0x00, 0x00, 0x80])
        #expect(packet.payload.isEmpty && packet.datagramSize == nil)
        #expect(packet.encoded == Self.stateWithSack)
    }

    @Test("DATA with both extensions round-trips; the payload is what follows the chain")
    func roundTrip() throws {
        let packet = UTPPacket(kind: .data, connectionID: 9, timestamp: 5, timestampDifference: 6, window: 7,
                               seq: 8, ack: 9, selectiveAck: [1, 0, 0, 0], datagramSize: 65507,
                               payload: [1, 2, 3][...])
        let bytes = packet.encoded
        #expect(bytes.count == 20 + 6 + 6 + 3)
        #expect(bytes[0] == 0x01 && bytes[1] == 1)
        #expect(Array(bytes[20..<22]) == [0x7A, 4] && Array(bytes[26..<28]) == [0, 4])
        #expect(try UTPPacket.decode(bytes) == packet)
    }

    @Test("a SYN's datagram-size extension never comes first: libutp (transmission) reads a first extension type of 3 or more as its version 0")
    func synExtensionOrder() throws {
        let syn = UTPPacket(kind: .syn, connectionID: 9, seq: 1, datagramSize: 65507)
        let bytes = syn.encoded
        #expect(bytes[1] == UTPPacket.extensionBitsExtension && bytes[1] < 3)
        #expect(Array(bytes[20..<22]) == [0x7A, 8] && Array(bytes[22..<30]) == [UInt8](repeating: 0, count: 8))
        #expect(Array(bytes[30..<32]) == [0, 4] && bytes.count == 20 + 10 + 6 && bytes.count == syn.overhead)
        #expect(try UTPPacket.decode(bytes) == syn)
    }

    @Test("a selective ack of a length that is not whole words (libtorrent sends those) is taken")
    func oddSelectiveAck() throws {
        var bytes = UTPPacket(kind: .state, connectionID: 1, seq: 1, ack: 5).encoded
        bytes[1] = 1
        bytes += [0, 3, 0x01, 0x00, 0x80]
        let packet = try UTPPacket.decode(bytes)
        #expect(packet.selectiveAck == [0x01, 0x00, 0x80])
    }

    @Test("unknown extensions are skipped")
    func unknownExtension() throws {
        var bytes = UTPPacket(kind: .syn, connectionID: 1, seq: 1).encoded
        bytes[1] = 0x33
        bytes += [0, 3, 9, 9, 9]
        let packet = try UTPPacket.decode(bytes)
        #expect(packet.kind == .syn && packet.payload.isEmpty)
    }

    @Test("malformed datagrams are refused with the reason", arguments: [
        ([UInt8](repeating: 0x01, count: 19), UTPError.tooShort(19)),
        ([0x02] + [UInt8](repeating: 0, count: 19), .badVersion(2)),
        ([0x51] + [UInt8](repeating: 0, count: 19), .badType(5)),
        ([0x21, 0x01] + [UInt8](repeating: 0, count: 18) + [0, 0], .badSelectiveAck(length: 0)),
        ([0x21, 0x01] + [UInt8](repeating: 0, count: 18) + [0, 8, 1], .extensionTruncated(offset: 22)),
        ([0x21, 0x01] + [UInt8](repeating: 0, count: 18) + [0], .extensionTruncated(offset: 20)),
        ([0x21, 0x01] + [UInt8](repeating: 0, count: 18) + [1, 4, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0],
         .duplicateExtension(1)),
        ([0x21, 0x00] + [UInt8](repeating: 0, count: 18) + [1], .payloadNotAllowed(.state)),
    ])
    func malformed(_ bytes: [UInt8], _ error: UTPError) {
        #expect(throws: error) { try UTPPacket.decode(bytes) }
    }

    @Test("a datagram that filled the receive buffer may be truncated and is refused")
    func truncation() throws {
        let packet = UTPPacket(kind: .data, connectionID: 1, payload: ArraySlice(repeating: 7, count: 1480))
        #expect(throws: UTPError.truncated(1500)) { try UTPPacket.decode(packet.encoded, bufferSize: 1500) }
        #expect(try UTPPacket.decode(packet.encoded, bufferSize: 1501).payload.count == 1480)
        let huge = [UInt8](repeating: 0x01, count: UTPPacket.maxDatagram + 1)
        #expect(throws: UTPError.tooLong(UTPPacket.maxDatagram + 1)) { try UTPPacket.decode(huge, bufferSize: 1 << 17) }
    }

    @Test("the extension chain is bounded")
    func extensionCount() {
        var bytes = [0x21, 0x40] + [UInt8](repeating: 0, count: 18)
        for _ in 0..<UTPPacket.maxExtensions { bytes += [0x40, 0] }
        bytes += [0, 0]
        #expect(throws: UTPError.tooManyExtensions) { try UTPPacket.decode(bytes) }
    }

    @Test("sequence numbers compare across the wrap")
    func sequence() {
        #expect(UTPSequence.isAfter(2, 0xFFFF))
        #expect(!UTPSequence.isAfter(0xFFFF, 2))
        #expect(!UTPSequence.isAfter(5, 5))
        #expect(UTPSequence.distance(from: 0xFFFE, to: 3) == 5)
        #expect(UTPSequence.distance(from: 3, to: 0xFFFE) == -5)
    }
}

@Suite("uTP fuzz corpus")
struct UTPFuzzCorpusTests {
    @Test("corpus datagrams that decode encode back to the same packet", arguments: FuzzInputs.files("utp"))
    func replay(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        guard let packet = try? UTPPacket.decode(bytes) else { return }
        #expect(try UTPPacket.decode(packet.encoded) == packet)
        // Our encoding may add libutp's extension bits before a leading datagram-size
        // extension; `overhead` says exactly what ours takes.
        #expect(packet.encoded.count == packet.overhead + packet.payload.count)
    }
}
