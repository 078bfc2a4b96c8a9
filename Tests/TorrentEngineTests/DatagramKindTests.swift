import BitTorrent
import NIOCore
import Testing
@testable import TorrentEngine

@Suite("UDP demultiplexing")
struct DatagramKindTests {
    static func utpHeader(type: UInt8, version: UInt8 = 1) -> [UInt8] {
        [type << 4 | version] + [UInt8](repeating: 0, count: 19)
    }

    @Test("each protocol's datagrams go to it, by content")
    func classify() {
        // A KRPC query (BEP 5).
        #expect(DatagramKind.classify(Array("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe".utf8)) == .dht)
        // uTP: every packet type, version 1, a full header.
        for type: UInt8 in 0...4 { #expect(DatagramKind.classify(Self.utpHeader(type: type)) == .utp) }
        // Not uTP: type 5+, version 2, or shorter than a header.
        #expect(DatagramKind.classify(Self.utpHeader(type: 5)) == .tracker)
        #expect(DatagramKind.classify(Self.utpHeader(type: 1, version: 2)) == .tracker)
        #expect(DatagramKind.classify(Array(Self.utpHeader(type: 1).prefix(19))) == .tracker)
        // UDP tracker answers (BEP 15): connect, announce, scrape and error all start with 0.
        let connect = UDPTrackerPacket.connectRequest(transaction: 7)
        #expect(DatagramKind.classify([0, 0, 0, 0] + Array(connect.suffix(12))) == .tracker)
        for action: UInt8 in 0...3 { #expect(DatagramKind.classify([0, 0, 0, action] + [UInt8](repeating: 9, count: 16)) == .tracker) }
        #expect(DatagramKind.classify([]) == .tracker)
    }

    @Test("IPv4 senders on a dual-stack socket compare equal to IPv4 addresses")
    func plainAddresses() throws {
        let mapped = try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 6969)
        #expect(UDPPort.plain(mapped) == (try SocketAddress(ipAddress: "127.0.0.1", port: 6969)))
        let six = try SocketAddress(ipAddress: "::1", port: 6969)
        #expect(UDPPort.plain(six) == six)
    }
}
