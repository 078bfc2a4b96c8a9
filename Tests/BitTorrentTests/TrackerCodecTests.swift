@testable import BitTorrent
import Testing

/// The reason `parseAnnounce` refuses `body`, or nil when it parses.
private func announceError(_ body: [UInt8]) -> TrackerError.Reason? {
    do {
        _ = try HTTPTrackerProtocol.parseAnnounce(body)
        return nil
    } catch {
        return error.reason
    }
}

private func udpError(_ bytes: [UInt8], ipv6: Bool = false) -> TrackerError.Reason? {
    do {
        _ = try UDPTrackerPacket.parse(bytes, ipv6: ipv6)
        return nil
    } catch {
        return error.reason
    }
}

private func isMalformed(_ reason: TrackerError.Reason?) -> Bool {
    if case .malformed? = reason { return true }
    return false
}

private func be32(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}

private func be64(_ value: UInt64) -> [UInt8] { be32(UInt32(value >> 32)) + be32(UInt32(value & 0xFFFF_FFFF)) }

private func readBE(_ bytes: [UInt8], _ offset: Int, _ count: Int) -> UInt64 {
    bytes[offset..<(offset + count)].reduce(0) { $0 << 8 | UInt64($1) }
}

/// Info hash and peer id bytes chosen to need escaping: every class of byte appears.
private let trickyHash = InfoHash([0x00, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF1, 0x23,
                                   0x41, 0x7A, 0x2E, 0x2D, 0x5F, 0x7E, 0x20, 0x25, 0x2B, 0xFF])!
private let asciiPeer = PeerID(Array("-TF0100-a.b~c_d-e f+".utf8))!

private func request(event: AnnounceRequest.Event = .none, trackerID: String? = nil) -> AnnounceRequest {
    AnnounceRequest(infoHash: trickyHash, peerID: asciiPeer, port: 6881, uploaded: 1, downloaded: 2, left: 3,
                    event: event, numWant: 80, key: 0xBEEF, trackerID: trackerID)
}

@Suite("HTTP tracker announce URL")
struct AnnounceURLTests {
    @Test("info_hash and peer_id are raw bytes, percent-encoded (unreserved kept)")
    func escaping() {
        let url = HTTPTrackerProtocol.announceURL("http://tracker.example/announce", request())
        let expectedHash = "%00%124Vx%9A%BC%DE%F1%23Az.-_~%20%25%2B%FF"
        let expectedPeer = "-TF0100-a.b~c_d-e%20f%2B"
        #expect(url == "http://tracker.example/announce?info_hash=\(expectedHash)&peer_id=\(expectedPeer)"
            + "&port=6881&uploaded=1&downloaded=2&left=3&compact=1&numwant=80&key=beef")
    }

    @Test("every byte value escapes to something that decodes back to it")
    func everyByte() {
        var all = [UInt8](0...255)
        all += [UInt8](repeating: 0, count: 20 - all.count % 20)
        for start in stride(from: 0, to: all.count, by: 20) {
            let hash = InfoHash(all[start..<(start + 20)])!
            let url = HTTPTrackerProtocol.announceURL("http://t/a", AnnounceRequest(infoHash: hash, peerID: asciiPeer,
                                                                                    port: 1, left: 0))
            let query = url.split(separator: "?")[1].split(separator: "&")
            let field = query.first { $0.hasPrefix("info_hash=") }!.dropFirst("info_hash=".count)
            #expect(percentDecode(String(field)) == hash.bytes)
        }
    }

    private func percentDecode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let first = utf8.first {
            if first == UInt8(ascii: "%") {
                guard utf8.count >= 3, let value = UInt8(String(decoding: utf8.dropFirst().prefix(2), as: UTF8.self), radix: 16)
                else { return nil }
                out.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                // Only unreserved characters may appear unescaped.
                let unreserved = (first >= 0x30 && first <= 0x39) || (first >= 0x41 && first <= 0x5A)
                    || (first >= 0x61 && first <= 0x7A) || first == 0x2D || first == 0x2E || first == 0x5F || first == 0x7E
                guard unreserved else { return nil }
                out.append(first)
                utf8 = utf8.dropFirst()
            }
        }
        return out
    }

    @Test("event is sent except for none", arguments: [
        (AnnounceRequest.Event.none, nil as String?), (.started, "started"), (.completed, "completed"), (.stopped, "stopped"),
    ])
    func event(event: AnnounceRequest.Event, text: String?) {
        let url = HTTPTrackerProtocol.announceURL("http://t/announce", request(event: event))
        let events: [String] = url.split(separator: "&").filter { $0.hasPrefix("event=") }.map(String.init)
        let expected: [String] = text.map { ["event=" + $0] } ?? []
        #expect(events == expected)
    }

    @Test("trackerid is echoed, escaped")
    func trackerID() {
        let url = HTTPTrackerProtocol.announceURL("http://t/announce", request(trackerID: "a b&c"))
        #expect(url.hasSuffix("&trackerid=a%20b%26c"))
        #expect(!HTTPTrackerProtocol.announceURL("http://t/announce", request()).contains("trackerid"))
    }

    @Test("an announce URL with a query string gets & not a second ?")
    func existingQuery() {
        let url = HTTPTrackerProtocol.announceURL("http://t/announce.php?passkey=abc", request())
        #expect(url.hasPrefix("http://t/announce.php?passkey=abc&info_hash="))
        #expect(url.filter { $0 == "?" }.count == 1)
    }
}

@Suite("HTTP tracker responses")
struct AnnounceParseTests {
    @Test("compact peers, with all the optional fields")
    func compact() throws {
        let body = Bencode.encode([
            "interval": 1800, "min interval": 900, "tracker id": "xyz", "complete": 12, "incomplete": 34,
            "warning message": "be nice",
            "peers": .bytes([1, 2, 3, 4, 0x1A, 0xE1, 255, 255, 255, 255, 0xFF, 0xFF]),
        ])
        let response = try HTTPTrackerProtocol.parseAnnounce(body)
        #expect(response == AnnounceResponse(interval: 1800, minInterval: 900, trackerID: "xyz", seeders: 12, leechers: 34,
                                             peers: [PeerAddress(host: "1.2.3.4", port: 6881),
                                                     PeerAddress(host: "255.255.255.255", port: 65535)],
                                             warning: "be nice"))
    }

    @Test("dictionary peers; bad entries are skipped, not fatal")
    func dictionaryPeers() throws {
        let body = Bencode.encode([
            "interval": 60,
            "peers": [
                ["ip": "10.0.0.1", "port": 6881, "peer id": .bytes([UInt8](repeating: 7, count: 20))],
                ["ip": "tracker-host.example", "port": 1],
                ["ip": "10.0.0.2", "port": 0],
                ["ip": "10.0.0.3", "port": 65536],
                ["ip": "10.0.0.4", "port": -1],
                ["ip": "10.0.0.5"],
                ["port": 5],
                ["ip": "", "port": 5],
                ["ip": 5, "port": 5],
                "not a dictionary",
                ["ip": "2001:db8::1", "port": 65535],
            ],
        ])
        let response = try HTTPTrackerProtocol.parseAnnounce(body)
        #expect(response.peers == [PeerAddress(host: "10.0.0.1", port: 6881),
                                   PeerAddress(host: "tracker-host.example", port: 1),
                                   PeerAddress(host: "2001:db8::1", port: 65535)])
        #expect(response.interval == 60)
    }

    @Test("peers6 are appended to compact peers")
    func peers6() throws {
        let v6: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1, 0, 80]
        let body = Bencode.encode(["interval": 100, "peers": .bytes([9, 8, 7, 6, 0, 1]), "peers6": .bytes(v6)])
        let response = try HTTPTrackerProtocol.parseAnnounce(body)
        #expect(response.peers == [PeerAddress(host: "9.8.7.6", port: 1), PeerAddress(host: "2001:db8:0:0:0:0:0:1", port: 80)])
        // peers6 alone, no peers key.
        let only6 = try HTTPTrackerProtocol.parseAnnounce(Bencode.encode(["peers6": .bytes(v6)]))
        #expect(only6.peers.count == 1)
    }

    @Test("compact entries with port 0 are dropped")
    func compactPortZero() throws {
        let body = Bencode.encode(["peers": .bytes([1, 1, 1, 1, 0, 0, 2, 2, 2, 2, 0, 2])])
        #expect(try HTTPTrackerProtocol.parseAnnounce(body).peers == [PeerAddress(host: "2.2.2.2", port: 2)])
    }

    @Test("failure reason wins over everything else")
    func failure() {
        #expect(announceError(Bencode.encode(["failure reason": "unregistered torrent"])) == .failure("unregistered torrent"))
        #expect(announceError(Bencode.encode(["failure reason": "no", "peers": .bytes([1, 2, 3]), "interval": 5])) == .failure("no"))
        #expect(announceError(Bencode.encode(["failure reason": .bytes([0xFF])])) == .failure("(unreadable reason)"))
    }

    @Test("interval: missing or below the minimum becomes the default", arguments: [
        (nil as Int64?, 1800), (0, 1800), (29, 1800), (-5, 1800), (30, 30), (3600, 3600),
    ])
    func interval(given: Int64?, expected: Int) throws {
        var root = BDictionary()
        root["peers"] = .bytes([])
        if let given { root["interval"] = .integer(given) }
        #expect(try HTTPTrackerProtocol.parseAnnounce(Bencode.encode(.dictionary(root))).interval == expected)
    }

    @Test("a minimal response has no optional fields")
    func minimal() throws {
        let response = try HTTPTrackerProtocol.parseAnnounce(Array("d8:intervali900e5:peers0:e".utf8))
        #expect(response == AnnounceResponse(interval: 900, peers: []))
    }

    @Test("malformed bodies are refused with a malformed reason", arguments: [
        ("compact peers of 5 bytes", Bencode.encode(["peers": .bytes([1, 2, 3, 4, 5])])),
        ("compact peers of 7 bytes", Bencode.encode(["peers": .bytes([1, 2, 3, 4, 5, 6, 7])])),
        ("compact peers of 13 bytes", Bencode.encode(["peers": .bytes([UInt8](repeating: 1, count: 13))])),
        ("peers6 of 17 bytes", Bencode.encode(["peers6": .bytes([UInt8](repeating: 1, count: 17))])),
        ("peers6 of 19 bytes", Bencode.encode(["peers6": .bytes([UInt8](repeating: 1, count: 19))])),
        ("peers6 of 6 bytes", Bencode.encode(["peers6": .bytes([UInt8](repeating: 1, count: 6))])),
        ("peers an integer", Bencode.encode(["peers": 5])),
        ("peers a dictionary", Bencode.encode(["peers": ["ip": "1.2.3.4"]])),
        ("not bencode", Array("<html>502 Bad Gateway</html>".utf8)),
        ("empty body", []),
        ("truncated", Array("d8:intervali900e5:peers6:ab".utf8)),
        ("a list", Array("l5:peerse".utf8)),
        ("trailing garbage", Array("d8:intervali900eeXYZ".utf8)),
    ] as [(String, [UInt8])])
    func malformed(name: String, body: [UInt8]) {
        #expect(isMalformed(announceError(body)), "\(name): \(String(describing: announceError(body)))")
    }

    @Test("a body over 1 MiB is refused by size, before decoding")
    func tooLarge() {
        let limit = HTTPTrackerProtocol.maxResponseSize
        #expect(limit == 1 << 20)
        // A valid-looking body just over the limit: rejected by size alone.
        let padding = [UInt8](repeating: UInt8(ascii: "a"), count: limit)
        let body = Array("d3:pad\(limit):".utf8) + padding + Array("e".utf8)
        #expect(announceError(body) == .tooLarge(size: body.count, limit: limit))
        // Exactly at the limit is decoded (and here malformed only because it is garbage).
        let atLimit = [UInt8](repeating: UInt8(ascii: "x"), count: limit)
        #expect(isMalformed(announceError(atLimit)))
    }

    @Test("scrape URL convention (BEP 48)", arguments: [
        ("http://t.example/announce", "http://t.example/scrape" as String?),
        ("http://t.example/x/announce.php", "http://t.example/x/scrape.php"),
        ("http://t.example/announce?passkey=1", "http://t.example/scrape?passkey=1"),
        ("http://t.example:8080/a/announce", "http://t.example:8080/a/scrape"),
        ("http://t.example/a", nil),
        ("http://t.example/announce/x", nil),
        ("http://t.example/xannounce", nil),
        ("announce", nil),
    ])
    func scrapeURL(announce: String, expected: String?) {
        #expect(HTTPTrackerProtocol.scrapeURL(announce) == expected)
    }

    @Test("scrape request URL carries the raw info hash, percent-encoded")
    func scrapeRequestURL() {
        #expect(HTTPTrackerProtocol.scrapeRequestURL("http://t/scrape", trickyHash)
            == "http://t/scrape?info_hash=%00%124Vx%9A%BC%DE%F1%23Az.-_~%20%25%2B%FF")
        #expect(HTTPTrackerProtocol.scrapeRequestURL("http://t/scrape?passkey=1", trickyHash).hasPrefix("http://t/scrape?passkey=1&info_hash=%00"))
    }

    @Test("scrape response: the torrent's complete, downloaded, incomplete")
    func scrapeResponse() throws {
        let other = InfoHash([UInt8](repeating: 0x11, count: 20))!
        func body(_ entries: [(InfoHash, String)]) -> [UInt8] {
            var out = Array("d5:filesd".utf8)
            for (hash, entry) in entries { out += Array("20:".utf8) + hash.bytes + Array(entry.utf8) }
            return out + Array("ee".utf8)
        }
        let good = body([(other, "d8:completei1e10:downloadedi2e10:incompletei3ee"),
                         (trickyHash, "d8:completei5e10:downloadedi50e10:incompletei10ee")])
        #expect(try HTTPTrackerProtocol.parseScrape(good, infoHash: trickyHash)
            == UDPTrackerPacket.ScrapeEntry(seeders: 5, completed: 50, leechers: 10))
        let failures: [([UInt8], String)] = [
            (body([(other, "d8:completei1e10:downloadedi2e10:incompletei3ee")]), "unknown torrent"),
            (body([(trickyHash, "d8:completei5e10:incompletei10ee")]), "missing downloaded"),
            (body([(trickyHash, "d8:completei-5e10:downloadedi1e10:incompletei10ee")]), "negative count"),
            (Array("d14:failure reason4:nopee".utf8), "failure reason"),
            (Array("le".utf8), "not a dictionary"),
            (Array("d5:filesi3ee".utf8), "files not a dictionary"),
            (Array("d5:files".utf8), "truncated"),
        ]
        for (bytes, what) in failures {
            #expect(throws: TrackerError.self, "\(what)") { try HTTPTrackerProtocol.parseScrape(bytes, infoHash: trickyHash) }
        }
    }
}

@Suite("UDP tracker packets (BEP 15)")
struct UDPTrackerPacketTests {
    @Test("connect request: protocol id, action 0, transaction")
    func connectRequest() {
        #expect(UDPTrackerPacket.protocolID == 0x41727101980)
        #expect(UDPTrackerPacket.connectRequest(transaction: 0xDEAD_BEEF)
            == [0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF])
    }

    @Test("announce request: 98 bytes, fields at BEP 15 offsets")
    func announceRequest() {
        let request = AnnounceRequest(infoHash: trickyHash, peerID: asciiPeer, port: 0xC8D5, uploaded: 0x0102_0304_0506,
                                      downloaded: 0x0A0B_0C0D, left: 0x7FFF_FFFF_FFFF_FFFF, event: .started, numWant: 200,
                                      key: 0xCAFE_F00D)
        let packet = UDPTrackerPacket.announceRequest(connection: 0x1122_3344_5566_7788, transaction: 0x99AA_BBCC, request)
        #expect(packet.count == 98)
        guard packet.count == 98 else { return }
        #expect(readBE(packet, 0, 8) == 0x1122_3344_5566_7788)  // connection id
        #expect(readBE(packet, 8, 4) == 1)  // action: announce
        #expect(readBE(packet, 12, 4) == 0x99AA_BBCC)  // transaction
        #expect(Array(packet[16..<36]) == trickyHash.bytes)
        #expect(Array(packet[36..<56]) == asciiPeer.bytes)
        #expect(readBE(packet, 56, 8) == 0x0A0B_0C0D)  // downloaded
        #expect(readBE(packet, 64, 8) == 0x7FFF_FFFF_FFFF_FFFF)  // left
        #expect(readBE(packet, 72, 8) == 0x0102_0304_0506)  // uploaded
        #expect(readBE(packet, 80, 4) == 2)  // event: started
        #expect(readBE(packet, 84, 4) == 0)  // IP: default
        #expect(readBE(packet, 88, 4) == 0xCAFE_F00D)  // key
        #expect(readBE(packet, 92, 4) == 200)  // num_want
        #expect(readBE(packet, 96, 2) == 0xC8D5)  // port
    }

    @Test("event numbering and a default num_want of -1", arguments: [
        (AnnounceRequest.Event.none, UInt32(0)), (.completed, 1), (.started, 2), (.stopped, 3),
    ])
    func events(event: AnnounceRequest.Event, value: UInt32) {
        #expect(event.udpValue == value)
        let request = AnnounceRequest(infoHash: trickyHash, peerID: asciiPeer, port: 1, left: -5, event: event, numWant: -1)
        let packet = UDPTrackerPacket.announceRequest(connection: 1, transaction: 2, request)
        #expect(readBE(packet, 80, 4) == UInt64(value))
        #expect(readBE(packet, 92, 4) == 0xFFFF_FFFF)
        #expect(readBE(packet, 64, 8) == 0)  // negative left is sent as 0
    }

    @Test("scrape request: header then up to 74 hashes")
    func scrapeRequest() {
        let packet = UDPTrackerPacket.scrapeRequest(connection: 5, transaction: 6, infoHashes: [trickyHash, trickyHash])
        #expect(packet == be64(5) + be32(2) + be32(6) + trickyHash.bytes + trickyHash.bytes)
        let many = UDPTrackerPacket.scrapeRequest(connection: 5, transaction: 6,
                                                  infoHashes: [InfoHash](repeating: trickyHash, count: 100))
        #expect(many.count == 16 + 74 * 20)
    }

    @Test("connect response")
    func connectResponse() throws {
        let packet = be32(0) + be32(77) + be64(0xFEDC_BA98_7654_3210)
        #expect(try UDPTrackerPacket.parse(packet) == .connected(transaction: 77, connection: 0xFEDC_BA98_7654_3210))
        #expect(isMalformed(udpError(Array(packet.prefix(15)))))
    }

    @Test("announce response: interval, leechers, seeders in that order, then peers")
    func announceResponse() throws {
        let packet = be32(1) + be32(9) + be32(1200) + be32(3) + be32(4) + [10, 0, 0, 1, 0x1A, 0xE1] + [10, 0, 0, 2, 0, 0]
        let parsed = try UDPTrackerPacket.parse(packet)
        #expect(parsed == .announced(transaction: 9, AnnounceResponse(
            interval: 1200, seeders: 4, leechers: 3, peers: [PeerAddress(host: "10.0.0.1", port: 6881)])))
        #expect(parsed.transaction == 9)
        // No peers at all is fine.
        let empty = try UDPTrackerPacket.parse(be32(1) + be32(9) + be32(10) + be32(0) + be32(0))
        guard case .announced(_, let response) = empty else {
            Issue.record("expected an announce response, got \(empty)")
            return
        }
        #expect(response.peers.isEmpty)
        #expect(response.interval == HTTPTrackerProtocol.defaultInterval)  // 10 s is below the minimum
    }

    @Test("IPv6 announce response uses 18-byte entries")
    func announceResponse6() throws {
        let entry: [UInt8] = [0xFE, 0x80] + [UInt8](repeating: 0, count: 13) + [1, 0, 2]
        let packet = be32(1) + be32(1) + be32(60) + be32(0) + be32(0) + entry
        #expect(try UDPTrackerPacket.parse(packet, ipv6: true)
            == .announced(transaction: 1, AnnounceResponse(interval: 60, seeders: 0, leechers: 0,
                                                           peers: [PeerAddress(host: "fe80:0:0:0:0:0:0:1", port: 2)])))
        // One byte more or less is not a whole entry.
        #expect(isMalformed(udpError(packet + [0], ipv6: true)))
        #expect(isMalformed(udpError(Array(packet.dropLast()), ipv6: true)))
    }

    @Test("announce peers not a multiple of the entry size are refused", arguments: [1, 5, 7, 11, 17])
    func announceOdd(extra: Int) {
        let packet = be32(1) + be32(1) + be32(60) + be32(0) + be32(0) + [UInt8](repeating: 1, count: extra)
        #expect(isMalformed(udpError(packet)))
    }

    @Test("scrape response: one entry per 12 bytes")
    func scrapeResponse() throws {
        let packet = be32(2) + be32(5) + be32(10) + be32(20) + be32(30) + be32(1) + be32(2) + be32(3)
        #expect(try UDPTrackerPacket.parse(packet) == .scraped(transaction: 5, [
            UDPTrackerPacket.ScrapeEntry(seeders: 10, completed: 20, leechers: 30),
            UDPTrackerPacket.ScrapeEntry(seeders: 1, completed: 2, leechers: 3),
        ]))
    }

    @Test("error response carries the message")
    func errorResponse() throws {
        let packet = be32(3) + be32(0x0102_0304) + Array("torrent not registered".utf8)
        #expect(try UDPTrackerPacket.parse(packet) == .error(transaction: 0x0102_0304, message: "torrent not registered"))
        #expect(try UDPTrackerPacket.parse(be32(3) + be32(1)) == .error(transaction: 1, message: ""))
    }

    @Test("short packets and unknown actions are refused", arguments: [
        [], [0, 0, 0], be32(0) + [0, 0, 0], be32(0) + be32(1) + [1, 2, 3],
        be32(1) + be32(1) + be32(60) + be32(0), be32(1) + be32(1) + be32(60) + be32(0) + [0, 0, 0],
        be32(4) + be32(1), be32(0xFFFF_FFFF) + be32(1) + be64(0),
    ] as [[UInt8]])
    func shortPackets(packet: [UInt8]) {
        #expect(isMalformed(udpError(packet)))
    }

    @Test("every truncation of every response is refused or parsed, never a crash")
    func truncations() {
        let responses: [[UInt8]] = [
            be32(0) + be32(1) + be64(2),
            be32(1) + be32(1) + be32(60) + be32(1) + be32(2) + [1, 2, 3, 4, 5, 6],
            be32(2) + be32(1) + be32(1) + be32(2) + be32(3),
            be32(3) + be32(1) + Array("x".utf8),
        ]
        for packet in responses {
            for length in 0...packet.count {
                _ = udpError(Array(packet.prefix(length)))
                _ = udpError(Array(packet.prefix(length)), ipv6: true)
            }
        }
        // Reaching here is the assertion; spot-check one short form.
        #expect(isMalformed(udpError(Array(responses[1].prefix(19)))))
    }
}
