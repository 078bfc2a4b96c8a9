import Foundation
import TestSupport
import Testing

@testable import BitTorrent

/// The KRPC codec against the examples of BEP 5 (byte for byte), the extension fields of
/// BEP 32, 42 and 43, and its limits.
@Suite("KRPC codec")
struct KRPCTests {
    static let idA = Digest20(Array("abcdefghij0123456789".utf8))!
    static let idB = Digest20(Array("mnopqrstuvwxyz123456".utf8))!

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// BEP 5's example messages and what they mean.
    static let examples: [(String, KRPCMessage)] = [
        ("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
         KRPCMessage(transaction: bytes("aa"), body: .query(KRPCQuery(sender: idA, method: .ping)))),
        ("d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
         KRPCMessage(transaction: bytes("aa"), body: .response(KRPCResponse(sender: idB)))),
        ("d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
         KRPCMessage(transaction: bytes("aa"), body: .query(KRPCQuery(sender: idA, method: .findNode(target: idB))))),
        ("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
         KRPCMessage(transaction: bytes("aa"), body: .query(KRPCQuery(sender: idA, method: .getPeers(infoHash: idB))))),
        ("d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
         KRPCMessage(transaction: bytes("aa"), body: .response(KRPCResponse(
             sender: idA, values: [CompactPeer(address: bytes("axje"), port: 0x2E75)!,
                                   CompactPeer(address: bytes("idht"), port: 0x6E6D)!], token: bytes("aoeusnth"))))),
        ("d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e"
            + "5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
         KRPCMessage(transaction: bytes("aa"), body: .query(KRPCQuery(
             sender: idA, method: .announcePeer(infoHash: idB, port: 6881, impliedPort: true, token: bytes("aoeusnth")))))),
        ("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
         KRPCMessage(transaction: bytes("aa"), body: .error(code: 201, message: "A Generic Error Ocurred"))),
    ]

    @Test("BEP 5 examples decode to their meaning and encode to the same bytes", arguments: examples.indices)
    func bep5Examples(_ index: Int) throws {
        let (text, message) = Self.examples[index]
        #expect(try KRPCMessage(decoding: Self.bytes(text)) == message)
        #expect(message.encoded == Self.bytes(text))
    }

    @Test("nodes, nodes6, want, ip, ro and v survive a round trip")
    func extensionFields() throws {
        let node4 = DHTNodeInfo(id: Self.idA, endpoint: CompactPeer(address: [10, 0, 0, 1], port: 6881)!)
        let node6 = DHTNodeInfo(id: Self.idB, endpoint: CompactPeer(address: [0x20, 0x01] + [UInt8](repeating: 7, count: 14),
                                                                    port: 443)!)
        let response = KRPCMessage(transaction: [1, 2], body: .response(KRPCResponse(sender: Self.idB, nodes: [node4],
                                                                                     nodes6: [node6], token: [9])),
                                   requesterAddress: CompactPeer(address: [1, 2, 3, 4], port: 80), readOnly: true,
                                   version: Self.bytes("TF01"))
        let encoded = response.encoded
        let text = String(decoding: encoded, as: UTF8.self)
        #expect(text.hasPrefix("d2:ip6:") && text.contains("5:nodes26:") && text.contains("6:nodes638:")
                    && text.contains("2:roi1e") && text.contains("1:v4:TF01"))
        #expect(try KRPCMessage(decoding: encoded) == response)
        let query = KRPCMessage(transaction: [7], body: .query(KRPCQuery(sender: Self.idA, method: .findNode(target: Self.idB),
                                                                           want: [.ipv4, .ipv6])))
        #expect(String(decoding: query.encoded, as: UTF8.self).contains("4:wantl2:n42:n6e"))
        #expect(try KRPCMessage(decoding: query.encoded) == query)
    }

    @Test("an unknown method is kept by name so it can be answered with error 204")
    func unknownMethod() throws {
        let text = "d1:ad2:id20:abcdefghij0123456789e1:q6:vote_x1:t1:z1:y1:qe"
        guard case .query(let query) = try KRPCMessage(decoding: Self.bytes(text)).body else {
            Issue.record("not a query")
            return
        }
        #expect(query.method == .unknown(Self.bytes("vote_x")))
    }

    static let refused: [(String, String)] = [
        ("not bencode", "garbage"),
        ("a list", "l1:ae"),
        ("no transaction", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe"),
        ("long transaction", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t17:aaaaaaaaaaaaaaaaa1:y1:qe"),
        ("short id", "d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe"),
        ("find_node without target", "d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe"),
        ("announce with port 0", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti0e"
            + "5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe"),
        ("announce without token", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1e"
            + "e1:q13:announce_peer1:t2:aa1:y1:qe"),
        ("nodes not whole", "d1:rd2:id20:mnopqrstuvwxyz1234565:nodes3:abce1:t2:aa1:y1:re"),
        ("unknown type", "d1:t2:aa1:y1:xe"),
        ("long token", "d1:rd2:id20:mnopqrstuvwxyz1234565:token41:" + String(repeating: "x", count: 41) + "e1:t2:aa1:y1:re"),
    ]

    @Test("malformed datagrams are refused", arguments: refused.indices)
    func refusals(_ index: Int) {
        #expect(throws: KRPCError.self, "\(Self.refused[index].0)") {
            try KRPCMessage(decoding: Self.bytes(Self.refused[index].1))
        }
    }

    @Test("limits: a datagram over the size limit, too many nodes, too deep")
    func limits() {
        let big = "d1:rd2:id20:mnopqrstuvwxyz1234561:x2100:" + String(repeating: "y", count: 2100) + "e1:t2:aa1:y1:re"
        #expect(throws: KRPCError.self) { try KRPCMessage(decoding: Self.bytes(big)) }
        let nodes = [UInt8](repeating: 1, count: 26 * (KRPCLimits.maxNodesPerList + 1))
        let many = Bencode.encode(["t": "aa", "y": "r", "r": ["id": .bytes(Self.idB.bytes), "nodes": .bytes(nodes)]])
        #expect(many.count < KRPCLimits.maxDatagramSize)
        #expect(throws: KRPCError.self) { try KRPCMessage(decoding: many) }
        let deep = "d1:rd2:id20:mnopqrstuvwxyz1234561:x" + String(repeating: "l", count: 9) + String(repeating: "e", count: 9)
            + "e1:t2:aa1:y1:re"
        #expect(throws: KRPCError.self) { try KRPCMessage(decoding: Self.bytes(deep)) }
    }

    @Test("malformed optional fields are ignored: short ip, long v, wrong-size values, unknown want")
    func lenientOptionalFields() throws {
        let text = "d2:ip3:abc1:rd2:id20:mnopqrstuvwxyz1234566:valuesl3:abc6:axje.uee1:t2:aa1:v17:"
            + String(repeating: "v", count: 17) + "1:y1:re"
        let message = try KRPCMessage(decoding: Self.bytes(text))
        #expect(message.requesterAddress == nil && message.version == nil)
        guard case .response(let response) = message.body else { return }
        #expect(response.values == [CompactPeer(address: Self.bytes("axje"), port: 0x2E75)!])
    }

    @Test("fuzz corpus and crashers decode and round-trip", arguments: FuzzInputs.files("krpc"))
    func fuzzInputs(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        guard let message = try? KRPCMessage(decoding: bytes) else { return }
        let again = try KRPCMessage(decoding: message.encoded)
        #expect(again == message)
        #expect(again.encoded == message.encoded)
    }
}
