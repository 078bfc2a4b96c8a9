import BitTorrent
import Testing
@testable import TorrentEngine

private let second: Int64 = 1_000_000_000

private func be32(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}

private func be64(_ value: UInt64) -> [UInt8] { be32(UInt32(value >> 32)) + be32(UInt32(value & 0xFFFF_FFFF)) }

private func read32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
}

private func read64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
    UInt64(read32(bytes, offset)) << 32 | UInt64(read32(bytes, offset + 4))
}

/// What a client sent, decoded enough to answer it.
private enum Sent: Equatable {
    case connect(transaction: UInt32)
    case announce(connection: UInt64, transaction: UInt32)

    var transaction: UInt32 {
        switch self {
        case .connect(let t), .announce(_, let t): return t
        }
    }
}

/// The single packet in `actions`, decoded; records an issue otherwise.
private func sent(_ actions: [UDPTrackerClient.Action], sourceLocation: SourceLocation = #_sourceLocation) -> Sent? {
    guard actions.count == 1, case .send(let bytes) = actions[0] else {
        Issue.record("expected one packet, got \(actions)", sourceLocation: sourceLocation)
        return nil
    }
    if bytes.count == 16 && read64(bytes, 0) == UDPTrackerPacket.protocolID && read32(bytes, 8) == 0 {
        return .connect(transaction: read32(bytes, 12))
    }
    if bytes.count == 98 && read32(bytes, 8) == 1 {
        return .announce(connection: read64(bytes, 0), transaction: read32(bytes, 12))
    }
    Issue.record("unrecognized packet \(bytes)", sourceLocation: sourceLocation)
    return nil
}

private func connectResponse(_ transaction: UInt32, connection: UInt64) -> [UInt8] {
    be32(0) + be32(transaction) + be64(connection)
}

private func announceResponse(_ transaction: UInt32, peers: [UInt8] = [10, 0, 0, 1, 0x1A, 0xE1]) -> [UInt8] {
    be32(1) + be32(transaction) + be32(900) + be32(2) + be32(5) + peers
}

private let request = AnnounceRequest(infoHash: InfoHash([UInt8](repeating: 0xAB, count: 20))!,
                                      peerID: PeerID(Array("-TF0100-000000000000".utf8))!, port: 6881, left: 1000,
                                      event: .started)

private let expectedAnswer = AnnounceResponse(interval: 900, seeders: 5, leechers: 2,
                                              peers: [PeerAddress(host: "10.0.0.1", port: 6881)])

@Suite("UDP tracker client (BEP 15)")
struct UDPTrackerClientTests {
    @Test("connect, then announce with the connection id, then the answer")
    func happyPath() throws {
        var client = UDPTrackerClient(transactionSeed: 42)
        #expect(client.awaitedTransaction == nil)
        let connect = try #require(sent(client.announce(request, now: 0)))
        guard case .connect(let t1) = connect else { Issue.record("expected connect, got \(connect)"); return }
        #expect(client.awaitedTransaction == t1)
        let announce = try #require(sent(client.received(connectResponse(t1, connection: 0x1234_5678_9ABC_DEF0), now: second)))
        guard case .announce(let connection, let t2) = announce else { Issue.record("expected announce"); return }
        #expect(connection == 0x1234_5678_9ABC_DEF0)
        #expect(t2 != t1)
        #expect(client.awaitedTransaction == t2)
        #expect(client.received(announceResponse(t2), now: 2 * second) == [.announced(expectedAnswer)])
        #expect(client.awaitedTransaction == nil)
        // Nothing left to retransmit.
        #expect(client.tick(now: 1000 * second).isEmpty)
    }

    @Test("the announce packet carries the request's fields")
    func announceFields() throws {
        var client = UDPTrackerClient(transactionSeed: 1)
        guard case .connect(let t1)? = sent(client.announce(request, now: 0)) else { return }
        let actions = client.received(connectResponse(t1, connection: 77), now: 0)
        guard case .send(let bytes)? = actions.first else { Issue.record("no packet"); return }
        #expect(bytes == UDPTrackerPacket.announceRequest(connection: 77, transaction: read32(bytes, 12), request))
    }

    @Test("responses with a wrong transaction id are ignored")
    func wrongTransaction() throws {
        var client = UDPTrackerClient(transactionSeed: 7)
        guard case .connect(let t1)? = sent(client.announce(request, now: 0)) else { return }
        #expect(client.received(connectResponse(t1 &+ 1, connection: 9), now: 0).isEmpty)
        #expect(client.received(be32(3) + be32(t1 ^ 0xFFFF) + Array("nope".utf8), now: 0).isEmpty)
        #expect(client.received(announceResponse(t1 &- 1), now: 0).isEmpty)
        #expect(client.awaitedTransaction == t1)
        guard case .announce(_, let t2)? = sent(client.received(connectResponse(t1, connection: 9), now: 0)) else { return }
        // The old transaction no longer counts either.
        #expect(client.received(announceResponse(t1), now: 0).isEmpty)
        #expect(client.received(announceResponse(t2 &+ 1), now: 0).isEmpty)
        #expect(client.received(announceResponse(t2), now: 0) == [.announced(expectedAnswer)])
    }

    @Test("malformed or mismatched datagrams are ignored")
    func garbage() throws {
        var client = UDPTrackerClient(transactionSeed: 3)
        guard case .connect(let t1)? = sent(client.announce(request, now: 0)) else { return }
        #expect(client.received([], now: 0).isEmpty)
        #expect(client.received([1, 2, 3], now: 0).isEmpty)
        #expect(client.received(be32(0) + be32(t1), now: 0).isEmpty)  // short connect response
        // An announce answer while we are connecting is out of order.
        #expect(client.received(announceResponse(t1), now: 0).isEmpty)
        #expect(client.awaitedTransaction == t1)
        // Before any announce, nothing is awaited.
        var idle = UDPTrackerClient(transactionSeed: 3)
        #expect(idle.received(connectResponse(t1, connection: 1), now: 0).isEmpty)
    }

    @Test("retransmits at 15, 30, 60 s (15·2ⁿ) then fails after maxAttempts")
    func retransmission() throws {
        #expect(UDPTrackerClient.baseTimeout == 15 * second)
        #expect(UDPTrackerClient.maxAttempts == 4)
        var client = UDPTrackerClient(transactionSeed: 11)
        var transactions: [UInt32] = []
        guard let first = sent(client.announce(request, now: 0)) else { return }
        transactions.append(first.transaction)
        // Send times: 0, 15, 45, 105; give up at 105 + 120 = 225 s.
        var sentAt: Int64 = 0
        for attempt in 0..<(UDPTrackerClient.maxAttempts - 1) {
            let timeout = (15 * second) << Int64(attempt)
            #expect(client.tick(now: sentAt + timeout - 1).isEmpty, "attempt \(attempt): too early")
            sentAt += timeout
            guard let packet = sent(client.tick(now: sentAt)) else { return }
            guard case .connect(let t) = packet else { Issue.record("expected a connect retry"); return }
            transactions.append(t)
        }
        #expect(sentAt == 105 * second)
        #expect(Set(transactions).count == transactions.count, "each try has its own transaction id")
        #expect(client.tick(now: sentAt + 120 * second - 1).isEmpty)
        #expect(client.tick(now: sentAt + 120 * second) == [.failed(TrackerError(.timeout))])
        #expect(client.awaitedTransaction == nil)
        #expect(client.tick(now: sentAt + 1000 * second).isEmpty)
    }

    @Test("a lost announce is retried with the same connection id while it is fresh")
    func announceRetry() throws {
        var client = UDPTrackerClient(transactionSeed: 5)
        guard case .connect(let t1)? = sent(client.announce(request, now: 0)) else { return }
        guard case .announce(5555, _)? = sent(client.received(connectResponse(t1, connection: 5555), now: 10 * second)) else {
            Issue.record("expected an announce on connection 5555")
            return
        }
        // 15 s later the connection id (received at 10 s) is 15 s old: reused.
        guard case .announce(5555, let t3)? = sent(client.tick(now: 25 * second)) else {
            Issue.record("expected an announce retry on connection 5555")
            return
        }
        // 30 s after that it is 45 s old: still reused.
        guard case .announce(5555, _)? = sent(client.tick(now: 55 * second)) else {
            Issue.record("expected a second announce retry on connection 5555")
            return
        }
        #expect(client.received(announceResponse(t3), now: 56 * second).isEmpty, "superseded transaction")
        // 60 s after that it is 105 s old: expired, so reconnect.
        guard case .connect? = sent(client.tick(now: 115 * second)) else {
            Issue.record("expected a reconnect once the connection id expired")
            return
        }
    }

    @Test("connection id is reused within 60 s and renewed after", arguments: [
        (Int64(0), true), (30 * second, true), (60 * second - 1, true), (60 * second, false), (3600 * second, false),
    ])
    func connectionLifetime(age: Int64, reused: Bool) throws {
        var client = UDPTrackerClient(transactionSeed: 99)
        guard case .connect(let t1)? = sent(client.announce(request, now: 0)) else { return }
        let connectedAt: Int64 = 2 * second
        guard case .announce(_, let t2)? = sent(client.received(connectResponse(t1, connection: 0xC0FFEE), now: connectedAt)) else {
            return
        }
        #expect(client.received(announceResponse(t2), now: connectedAt + 1) == [.announced(expectedAnswer)])
        let next = sent(client.announce(request, now: connectedAt + age))
        if reused {
            #expect(next == .announce(connection: 0xC0FFEE, transaction: client.awaitedTransaction ?? 0))
        } else {
            guard case .connect? = next else { Issue.record("expected a fresh connect, got \(String(describing: next))"); return }
        }
    }

    @Test("an error action fails the announce and forgets the connection")
    func errorAction() throws {
        var client = UDPTrackerClient(transactionSeed: 8)
        guard case .connect(let t1)? = sent(client.announce(request, now: 0)) else { return }
        guard case .announce(_, let t2)? = sent(client.received(connectResponse(t1, connection: 4), now: 0)) else { return }
        let error = be32(3) + be32(t2) + Array("torrent not registered".utf8)
        #expect(client.received(error, now: second) == [.failed(TrackerError(.failure("torrent not registered")))])
        #expect(client.awaitedTransaction == nil)
        #expect(client.tick(now: 1000 * second).isEmpty)
        // The connection id is not trusted any more: the next announce connects first.
        guard case .connect? = sent(client.announce(request, now: 2 * second)) else {
            Issue.record("expected a connect after an error")
            return
        }
    }

    @Test("an error while connecting fails too")
    func errorWhileConnecting() throws {
        var client = UDPTrackerClient(transactionSeed: 8)
        guard case .connect(let t1)? = sent(client.announce(request, now: 0)) else { return }
        #expect(client.received(be32(3) + be32(t1) + Array("go away".utf8), now: 0) == [.failed(TrackerError(.failure("go away")))])
    }

    @Test("transaction ids differ between clients with different seeds")
    func seeds() throws {
        var a = UDPTrackerClient(transactionSeed: 1)
        var b = UDPTrackerClient(transactionSeed: 2)
        let ta = try #require(sent(a.announce(request, now: 0))).transaction
        let tb = try #require(sent(b.announce(request, now: 0))).transaction
        #expect(ta != tb)
    }

    @Test("IPv6 trackers' answers are read with 18-byte peers")
    func ipv6() throws {
        var client = UDPTrackerClient(transactionSeed: 6, ipv6: true)
        guard case .connect(let t1)? = sent(client.announce(request, now: 0)) else { return }
        guard case .announce(_, let t2)? = sent(client.received(connectResponse(t1, connection: 1), now: 0)) else { return }
        let peer: [UInt8] = [0x20, 0x01] + [UInt8](repeating: 0, count: 13) + [9, 0, 80]
        let actions = client.received(announceResponse(t2, peers: peer), now: 0)
        guard case .announced(let answer)? = actions.first else { Issue.record("no answer: \(actions)"); return }
        #expect(answer.peers == [PeerAddress(host: "2001:0:0:0:0:0:0:9", port: 80)])
    }

    @Test("scrape: connect, then a scrape packet for the hash, then its counts")
    func scrape() throws {
        var client = UDPTrackerClient(transactionSeed: 9)
        let connect = try #require(sent(client.scrape(request.infoHash, now: 0)))
        let actions = client.received(connectResponse(connect.transaction, connection: 77), now: second)
        guard actions.count == 1, case .send(let packet) = actions[0] else { Issue.record("no scrape: \(actions)"); return }
        #expect(packet.count == 16 + 20)
        #expect(read64(packet, 0) == 77 && read32(packet, 8) == 2)
        #expect(Array(packet[16...]) == request.infoHash.bytes)
        let t = read32(packet, 12)
        // An announce answer to a scrape is not taken for it.
        #expect(client.received(announceResponse(t), now: second).isEmpty)
        #expect(client.received(be32(2) + be32(t) + be32(4) + be32(40) + be32(3), now: 2 * second)
            == [.scraped(UDPTrackerPacket.ScrapeEntry(seeders: 4, completed: 40, leechers: 3))])
        #expect(client.awaitedTransaction == nil)
        // No second request while one is under way; a timed-out scrape fails as a scrape.
        _ = client.announce(request, now: 3 * second)
        #expect(client.scrape(request.infoHash, now: 3 * second).isEmpty)
        var lonely = UDPTrackerClient(transactionSeed: 3)
        _ = lonely.scrape(request.infoHash, now: 0)
        var last: [UDPTrackerClient.Action] = []
        for step in 1...20 { last = lonely.tick(now: Int64(step) * 60 * second); if lonely.awaitedTransaction == nil { break } }
        #expect(last == [.scrapeFailed(TrackerError(.timeout))])
    }
}
