import BitTorrent
import TestSupport
import Testing

/// A compact IPv4 peer: address bytes then big-endian port.
private func compact4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) -> [UInt8] {
    [a, b, c, d, UInt8(port >> 8), UInt8(port & 0xFF)]
}

private func compact6(_ last: UInt8, port: UInt16) -> [UInt8] {
    [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [last, UInt8(port >> 8), UInt8(port & 0xFF)]
}

@Suite("BEP 10 extension handshake")
struct ExtensionHandshakeTests {
    @Test("every field decodes")
    func fields() throws {
        let payload = Bencode.encode([
            "m": ["ut_metadata": 3, "ut_pex": 1, "lt_donthave": 0],
            "v": "qBittorrent/4.6.0",
            "p": 51413,
            "reqq": 250,
            "yourip": .bytes([10, 0, 0, 7]),
            "metadata_size": 31235,
        ])
        let handshake = try ExtensionHandshake(payload: payload)
        #expect(handshake.messages == ["ut_metadata": 3, "ut_pex": 1, "lt_donthave": 0])
        #expect(handshake.client == "qBittorrent/4.6.0")
        #expect(handshake.listenPort == 51413)
        #expect(handshake.requestQueueDepth == 250)
        #expect(handshake.yourIP == [10, 0, 0, 7])
        #expect(handshake.metadataSize == 31235)
    }

    @Test("encode then decode is identity")
    func roundTrip() throws {
        let original = ExtensionHandshake(messages: ["ut_metadata": 1, "ut_pex": 2], client: "torrentfs 0.1",
                                          listenPort: 6881, requestQueueDepth: 500,
                                          yourIP: Array(repeating: 0xFE, count: 16), metadataSize: 1 << 20)
        #expect(try ExtensionHandshake(payload: original.payload) == original)
        let empty = ExtensionHandshake()
        #expect(try ExtensionHandshake(payload: empty.payload) == empty)
    }

    @Test("an empty dictionary has no fields")
    func emptyDictionary() throws {
        #expect(try ExtensionHandshake(payload: Array("de".utf8)) == ExtensionHandshake())
    }

    /// Each field ill-typed or out of range is dropped; the rest of the handshake stands.
    @Test("ill-typed and out-of-range fields are dropped", arguments: [
        ("p", BValue.integer(0)), ("p", 65536), ("p", -1), ("p", "6881"),
        ("reqq", 0), ("reqq", -5), ("reqq", "250"),
        ("yourip", .bytes([1, 2, 3])), ("yourip", .bytes([1, 2, 3, 4, 5])), ("yourip", 16),
        ("metadata_size", 0), ("metadata_size", -1), ("metadata_size", .integer(Int64(Int32.max) + 1)),
        ("metadata_size", "100"),
        ("v", 7), ("v", .bytes([0xFF, 0xFE])),
        ("m", "ut_metadata"), ("m", [1, 2]),
    ] as [(String, BValue)])
    func illTyped(key: String, value: BValue) throws {
        var root = BDictionary()
        root["m"] = ["ut_pex": 2]
        root["v"] = "client"
        root["p"] = 6881
        root["reqq"] = 100
        root["yourip"] = .bytes([127, 0, 0, 1])
        root["metadata_size"] = 1000
        root[key] = value
        let handshake = try ExtensionHandshake(payload: Bencode.encode(.dictionary(root)))
        #expect(handshake.messages == (key == "m" ? [:] : ["ut_pex": 2]))
        #expect(handshake.client == (key == "v" ? nil : "client"))
        #expect(handshake.listenPort == (key == "p" ? nil : 6881))
        #expect(handshake.requestQueueDepth == (key == "reqq" ? nil : 100))
        #expect(handshake.yourIP == (key == "yourip" ? nil : [127, 0, 0, 1]))
        #expect(handshake.metadataSize == (key == "metadata_size" ? nil : 1000))
    }

    @Test("entries of m with bad ids or names are dropped one by one")
    func badMessageEntries() throws {
        var m = BDictionary()
        m["good"] = 4
        m["negative"] = -1
        m["big"] = 256
        m["text"] = "1"
        m[[0xFF, 0xFE]] = 5  // not UTF-8
        let handshake = try ExtensionHandshake(payload: Bencode.encode(["m": .dictionary(m)]))
        #expect(handshake.messages == ["good": 4])
    }

    @Test("a huge reqq is clamped")
    func reqqClamp() throws {
        let handshake = try ExtensionHandshake(payload: Bencode.encode(["reqq": 1_000_000_000]))
        #expect(handshake.requestQueueDepth == 100_000)
    }

    @Test("unsorted keys are tolerated (clients send them)")
    func unsortedKeys() throws {
        let handshake = try ExtensionHandshake(payload: Array("d1:v3:abc1:md6:ut_pexi2eee".utf8))
        #expect(handshake.client == "abc")
        #expect(handshake.messages == ["ut_pex": 2])
    }

    @Test("payloads that are not a bencoded dictionary throw", arguments: [
        "", "i5e", "le", "4:spam", "d1:m", "x", "d1:mi1ee trailing",
    ])
    func notADictionary(text: String) {
        #expect(throws: BencodeError.self) { try ExtensionHandshake(payload: Array(text.utf8)) }
    }
}

@Suite("BEP 9 ut_metadata messages")
struct MetadataMessageTests {
    @Test("request, data and reject round-trip", arguments: [
        MetadataMessage.request(piece: 0), .request(piece: 1023),
        .reject(piece: 5),
        .data(piece: 2, totalSize: 40000, data: [1, 2, 3]),
        .data(piece: 0, totalSize: 1, data: [0x64]),
    ])
    func roundTrip(message: MetadataMessage) throws {
        #expect(try MetadataMessage(payload: message.payload) == message)
    }

    @Test("golden payloads")
    func golden() {
        #expect(MetadataMessage.request(piece: 0).payload == Array("d8:msg_typei0e5:piecei0ee".utf8))
        #expect(MetadataMessage.reject(piece: 3).payload == Array("d8:msg_typei2e5:piecei3ee".utf8))
        #expect(MetadataMessage.data(piece: 1, totalSize: 16390, data: [0xAA, 0xBB]).payload
            == Array("d8:msg_typei1e5:piecei1e10:total_sizei16390ee".utf8) + [0xAA, 0xBB])
    }

    @Test("data carries exactly the bytes after the dictionary")
    func trailingBytes() throws {
        // The raw data may itself look like bencode (it is an info dictionary).
        let raw = Array("d4:name3:abce".utf8) + [0, 0xFF]
        let payload = Array("d8:msg_typei1e5:piecei0e10:total_sizei15ee".utf8) + raw
        #expect(try MetadataMessage(payload: payload) == .data(piece: 0, totalSize: 15, data: raw))
        var generator = SplitMix64(seed: 9)
        let block = generator.bytes(MetadataMessage.pieceSize)
        let full = MetadataMessage.data(piece: 7, totalSize: 8 * MetadataMessage.pieceSize, data: block)
        #expect(try MetadataMessage(payload: full.payload) == full)
    }

    @Test("total_size out of bounds is refused", arguments: [
        Int64(0), -1, -16384, Int64(MetadataMessage.maxMetadataSize) + 1, Int64(Int32.max), Int64.max,
    ])
    func badTotalSize(total: Int64) {
        let payload = Bencode.encode(["msg_type": 1, "piece": 0, "total_size": .integer(total)])
        #expect(throws: BencodeError.self) { try MetadataMessage(payload: payload) }
    }

    @Test("total_size at the limit is accepted")
    func totalSizeAtLimit() throws {
        let payload = Bencode.encode(["msg_type": 1, "piece": 0, "total_size": .integer(Int64(MetadataMessage.maxMetadataSize))])
        #expect(try MetadataMessage(payload: payload) == .data(piece: 0, totalSize: MetadataMessage.maxMetadataSize, data: []))
        #expect(MetadataMessage.maxMetadataSize >= 16 << 20)
        #expect(MetadataMessage.maxMetadataSize <= 30 << 20)
    }

    @Test("malformed messages are refused", arguments: [
        // piece out of range: negative, or past the last piece of the largest metadata
        ("negative piece", ["msg_type": 0, "piece": -1]),
        ("piece past the limit", ["msg_type": 0, "piece": .integer(Int64(MetadataMessage.maxMetadataSize / MetadataMessage.pieceSize))]),
        ("huge piece", ["msg_type": 2, "piece": .integer(Int64.max)]),
        ("no piece", ["msg_type": 0]),
        ("no type", ["piece": 0]),
        ("unknown type", ["msg_type": 3, "piece": 0]),
        ("type as text", ["msg_type": "0", "piece": 0]),
        ("data without total_size", ["msg_type": 1, "piece": 0]),
        ("not a dictionary", ["msg_type", 0]),
    ] as [(String, BValue)])
    func malformed(name: String, value: BValue) {
        #expect(throws: BencodeError.self, "\(name)") { try MetadataMessage(payload: Bencode.encode(value)) }
    }

    @Test("garbage payloads throw", arguments: ["", "x", "d8:msg_typei0e", "i0e"])
    func garbage(text: String) {
        #expect(throws: BencodeError.self) { try MetadataMessage(payload: Array(text.utf8)) }
    }
}

@Suite("BEP 11 PEX and BEP 23 compact peers")
struct PEXMessageTests {
    @Test("added, added6 and dropped decode")
    func decode() throws {
        let payload = Bencode.encode([
            "added": .bytes(compact4(1, 2, 3, 4, port: 6881) + compact4(5, 6, 7, 8, port: 80)),
            "added.f": .bytes([0x10, 0x02]),
            "added6": .bytes(compact6(1, port: 443)),
            "dropped": .bytes(compact4(9, 9, 9, 9, port: 1)),
            "dropped6": .bytes(compact6(2, port: 2)),
        ])
        let message = try PEXMessage(payload: payload)
        #expect(message.added.map(\.description) == ["1.2.3.4:6881", "5.6.7.8:80", "[2001:db8:0:0:0:0:0:1]:443"])
        #expect(message.dropped.map(\.description) == ["9.9.9.9:1", "[2001:db8:0:0:0:0:0:2]:2"])
    }

    @Test("encode then decode is identity")
    func roundTrip() throws {
        let added = [CompactPeer(address: [10, 0, 0, 1], port: 1000)!, CompactPeer(address: [10, 0, 0, 2], port: 65535)!,
                     CompactPeer(address: Array(repeating: 0xAB, count: 16), port: 7)!]
        let dropped = [CompactPeer(address: [192, 168, 1, 1], port: 5)!]
        let message = PEXMessage(added: added, dropped: dropped)
        #expect(try PEXMessage(payload: message.payload) == message)
        let empty = PEXMessage(added: [], dropped: [])
        #expect(try PEXMessage(payload: empty.payload) == empty)
    }

    @Test("more than 50 added peers are cut to the first 50")
    func truncated() throws {
        let many = (0..<80).flatMap { compact4(10, 0, UInt8($0 >> 8), UInt8($0 & 0xFF), port: 6881) }
        let message = try PEXMessage(payload: Bencode.encode(["added": .bytes(many)]))
        #expect(PEXMessage.maxAddedPeers == 50)
        #expect(message.added.count == 50)
        #expect(message.added.first?.host == "10.0.0.0")
        #expect(message.added.last?.host == "10.0.0.49")
        // IPv6 peers count towards the same limit.
        let mixed = try PEXMessage(payload: Bencode.encode([
            "added": .bytes(Array(many.prefix(45 * 6))),
            "added6": .bytes((0..<10).flatMap { compact6(UInt8($0), port: 1) }),
        ]))
        #expect(mixed.added.count == 50)
        #expect(mixed.added.filter { $0.address.count == 16 }.count == 5)
    }

    @Test("odd-length compact strings keep whole entries only")
    func oddLengths() throws {
        let payload = Bencode.encode([
            "added": .bytes(compact4(1, 1, 1, 1, port: 1) + [2, 2, 2]),
            "added6": .bytes(compact6(3, port: 3) + Array(compact6(4, port: 4).prefix(17))),
            "dropped": .bytes(compact4(5, 5, 5, 5, port: 5) + compact4(6, 6, 6, 6, port: 6) + [7]),
        ])
        let message = try PEXMessage(payload: payload)
        #expect(message.added.map(\.description) == ["1.1.1.1:1", "[2001:db8:0:0:0:0:0:3]:3"])
        #expect(message.dropped.map(\.description) == ["5.5.5.5:5", "6.6.6.6:6"])
    }

    @Test("entries with port 0 are dropped")
    func portZero() throws {
        let payload = Bencode.encode(["added": .bytes(compact4(1, 1, 1, 1, port: 0) + compact4(2, 2, 2, 2, port: 2))])
        #expect(try PEXMessage(payload: payload).added.map(\.description) == ["2.2.2.2:2"])
    }

    @Test("wrongly typed fields count as empty; non-bencode throws")
    func wrongTypes() throws {
        let message = try PEXMessage(payload: Bencode.encode(["added": 5, "dropped": ["x"]]))
        #expect(message.added.isEmpty)
        #expect(message.dropped.isEmpty)
        #expect(throws: BencodeError.self) { try PEXMessage(payload: Array("d5:added".utf8)) }
    }

    @Test("CompactPeer: address sizes, port 0, text forms")
    func compactPeer() {
        #expect(CompactPeer(address: [1, 2, 3], port: 1) == nil)
        #expect(CompactPeer(address: [1, 2, 3, 4, 5], port: 1) == nil)
        #expect(CompactPeer(address: [1, 2, 3, 4], port: 0) == nil)
        let v4 = CompactPeer(address: [192, 168, 0, 255], port: 0x1AE1)!
        #expect(v4.compact == [192, 168, 0, 255, 0x1A, 0xE1])
        #expect(v4.host == "192.168.0.255")
        #expect(v4.description == "192.168.0.255:6881")
        let v6 = CompactPeer(address: [0xFE, 0x80] + [UInt8](repeating: 0, count: 12) + [0x12, 0x34], port: 1)!
        #expect(v6.host == "fe80:0:0:0:0:0:0:1234")
        #expect(v6.description == "[fe80:0:0:0:0:0:0:1234]:1")
        #expect(v6.compact.count == 18)
    }

    @Test("decodeStrict refuses partial entries, decodeList ignores them", arguments: [
        (0, false, true), (6, false, true), (12, false, true), (5, false, false), (7, false, false), (13, false, false),
        (18, true, true), (36, true, true), (6, true, false), (17, true, false), (19, true, false),
    ])
    func strict(length: Int, ipv6: Bool, accepted: Bool) {
        let bytes = (0..<length).map { _ in UInt8(1) }
        let strict = CompactPeer.decodeStrict(bytes, ipv6: ipv6)
        #expect((strict != nil) == accepted)
        #expect(CompactPeer.decodeList(bytes, ipv6: ipv6).count == length / (ipv6 ? 18 : 6))
        if let strict { #expect(strict == CompactPeer.decodeList(bytes, ipv6: ipv6)) }
    }
}
