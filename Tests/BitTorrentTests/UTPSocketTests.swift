import TestSupport
import Testing

@testable import BitTorrent

/// Two uTP state machines against each other through `UTPLink` (virtual clock, loss,
/// reordering, delay).
@Suite("uTP sockets")
struct UTPSocketTests {
    static let second: Int64 = 1_000_000_000

    static func payload(_ count: Int, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        return random.bytes(count)
    }

    /// Connects, writes `count` bytes each way, runs until both sides have them.
    static func transfer(_ link: UTPLink, count: Int, seed: UInt64, limit: Int64 = 600 * second) -> ([UInt8], [UInt8]) {
        link.connect()
        return transferConnected(link, count: count, seed: seed, limit: limit)
    }

    /// `transfer` once "a" has dialed.
    static func transferConnected(_ link: UTPLink, count: Int, seed: UInt64,
                                  limit: Int64 = 600 * second) -> ([UInt8], [UInt8]) {
        link.run(until: link.now + 10 * second) { link.events["a"]!.contains(.connected) }
        let fromA = payload(count, seed: seed)
        let fromB = payload(count / 2, seed: seed + 1)
        link.socket("a")!.write(fromA)
        link.socket("a")!.flush(now: link.now)
        link.collect("a")
        link.run(until: link.now + 10 * second) { link.keys["b"] != nil && link.events["b"]!.contains(.connected) }
        link.socket("b")!.write(fromB)
        link.socket("b")!.flush(now: link.now)
        link.collect("b")
        link.run(until: link.now + limit) {
            link.received["b"]!.count >= fromA.count && link.received["a"]!.count >= fromB.count
        }
        return (fromA, fromB)
    }

    @Test("bytes arrive exactly once and in order, both ways", arguments: [0.0, 0.01, 0.05, 0.2])
    func lossyTransfer(loss: Double) {
        let link = UTPLink(seed: UInt64(loss * 1000) + 1)
        link.loss = loss
        link.jitter = 8_000_000  // datagrams overtake each other
        let (fromA, fromB) = Self.transfer(link, count: 600_000, seed: 7)
        #expect(link.received["b"]! == fromA)
        #expect(link.received["a"]! == fromB)
        if loss > 0 { #expect(link.socket("a")!.retransmissions > 0) }
    }

    @Test("sequence numbers wrap around")
    func wrapAround() {
        // a: connection id 100, first seq 0xFFF0; b: first seq 0xFFE0.
        let link = UTPLink(seed: 3, scriptA: [100, 0xFFF0], scriptB: [0xFFE0])
        link.loss = 0.05
        link.jitter = 5_000_000
        let (fromA, fromB) = Self.transfer(link, count: 300_000, seed: 9)
        #expect(link.received["b"]! == fromA && link.received["a"]! == fromB)
        #expect(link.socket("a")!.seqNext < 0xFFF0 && link.socket("b")!.seqNext < 0xFFE0)
    }

    @Test("a sender never has more in flight than the receiver advertised")
    func receiveWindow() {
        var configuration = UTPSocket.Configuration()
        configuration.receiveWindow = 20_000
        let link = UTPLink(seed: 11, configuration: configuration)
        link.loss = 0.05
        link.jitter = 5_000_000
        link.connect()
        link.run(until: link.now + 10 * Self.second) { link.events["a"]!.contains(.connected) }
        let data = Self.payload(400_000, seed: 1)
        let sender = link.socket("a")!
        sender.write(data)
        sender.flush(now: link.now)
        link.collect("a")
        var most = 0
        while link.received["b"]!.count < data.count, link.now < 200 * Self.second {
            link.run(until: link.now + 1_000_000)
            most = max(most, sender.flightBytes)
            if let receiver = link.socket("b") { #expect(receiver.reorder.bytes <= configuration.receiveWindow) }
        }
        #expect(link.received["b"]! == data)
        #expect(most <= configuration.receiveWindow)
        #expect(most > 0)
    }

    @Test("a peer that stops acking: timeouts back off, then the connection closes")
    func stopsAcking() {
        let link = UTPLink(seed: 5)
        link.connect()
        link.run(until: link.now + 10 * Self.second) { link.events["a"]!.contains(.connected) }
        link.silenced = ["b"]
        let sender = link.socket("a")!
        sender.write(Self.payload(50_000, seed: 2))
        sender.flush(now: link.now)
        link.collect("a")
        var expiries: [Int64] = []
        var seen = 0
        while !link.events["a"]!.contains(.closed(.timedOut)), link.now < 300 * Self.second {
            link.run(until: link.now + 1_000_000)
            if sender.timeouts > seen {
                seen = sender.timeouts
                expiries.append(link.now)
            }
        }
        #expect(link.events["a"]!.contains(.closed(.timedOut)))
        // maxTimeouts expiries send everything again; the next one gives up.
        #expect(expiries.count == sender.configuration.maxTimeouts + 1)
        let gaps = zip(expiries.dropFirst(), expiries).map { $0 - $1 }
        for (later, earlier) in zip(gaps.dropFirst(), gaps) { #expect(later >= earlier * 2 - 2_000_000) }
        #expect(link.a.count == 0)
    }

    @Test("a SYN that is never answered fails the dial after three tries")
    func synTimeout() {
        let link = UTPLink(seed: 6)
        link.silenced = ["a"]
        link.connect()
        link.run(until: link.now + 60 * Self.second) { !link.events["a"]!.isEmpty }
        #expect(link.events["a"]! == [.closed(.timedOut)])
        #expect(link.sentDatagrams == UTPSocket.synAttempts)
    }

    @Test("FIN both ways: each side sees the end after every byte, then both close")
    func fin() {
        let link = UTPLink(seed: 8)
        link.loss = 0.1
        let (fromA, _) = Self.transfer(link, count: 100_000, seed: 4)
        link.socket("a")!.close(now: link.now)
        link.collect("a")
        link.run(until: link.now + 60 * Self.second) { link.events["b"]!.contains(.endOfStream) }
        #expect(link.received["b"]! == fromA)
        link.socket("b")!.close(now: link.now)
        link.collect("b")
        link.run(until: link.now + 60 * Self.second) { link.a.count == 0 && link.b.count == 0 }
        #expect(link.events["a"]!.contains(.endOfStream))
        #expect(link.events["a"]!.last == .closed(.local) && link.events["b"]!.last == .closed(.local))
    }

    @Test("RESET closes the peer at once")
    func reset() {
        let link = UTPLink(seed: 9)
        _ = Self.transfer(link, count: 10_000, seed: 1)
        link.socket("b")!.reset(now: link.now)
        link.collect("b")
        link.run(until: link.now + Self.second) { link.events["a"]!.contains(.closed(.reset)) }
        #expect(link.events["a"]!.last == .closed(.reset))
    }

    @Test("acks are delayed: one per two DATA packets, or at the end of a batch")
    func delayedAcks() {
        let link = UTPLink(seed: 10)
        link.batchInterval = 5_000_000
        let (fromA, _) = Self.transfer(link, count: 1_000_000, seed: 3)
        #expect(link.received["b"]! == fromA)
        let data = link.kinds["a", default: [:]][.data, default: 0]
        let acks = link.kinds["b", default: [:]][.state, default: 0]
        #expect(data >= fromA.count / 1452)
        // Every second packet of a batch is acked at once, an odd last one when the batch ends.
        #expect(acks * 10 <= data * 6 && acks * 2 >= data - 10, "\(acks) acks for \(data) packets")
    }

    @Test("datagrams stay within 1472 bytes unless the peer says it reads more and the path carries it")
    func packetSize() {
        let safe = UTPLink(seed: 12)
        _ = Self.transfer(safe, count: 200_000, seed: 5)
        #expect(safe.largest == 1472)
        var large = UTPSocket.Configuration()
        large.pathDatagram = 16_384 + 200
        let link = UTPLink(seed: 13, configuration: large)
        let (fromA, fromB) = Self.transfer(link, count: 400_000, seed: 6)
        #expect(link.received["b"]! == fromA && link.received["a"]! == fromB)
        #expect(link.largest == 16_584)
        #expect(link.socket("a")!.datagramSize == 16_584 && link.socket("b")!.datagramSize == 16_584)
    }
}

@Suite("uTP endpoint")
struct UTPEndpointTests {
    @Test("a SYN flood costs bounded memory and an honest peer still connects")
    func synFlood() {
        let link = UTPLink(seed: 20)
        var random = SplitMix64(seed: 1)
        for index in 0..<20_000 {
            let syn = UTPPacket(kind: .syn, connectionID: UInt16.random(in: 0...0xFFFF, using: &random),
                                seq: UInt16(index & 0xFFFF))
            _ = link.b.receive(syn.encoded, from: "flood\(index % 5000)", bufferSize: 65536, now: link.now)
            #expect(link.b.count <= link.b.limits.maxHalfOpen)
        }
        _ = link.b.takeReplies()
        #expect(link.b.halfOpenCount == link.b.limits.maxHalfOpen)
        #expect(link.b.evictions == 20_000 - link.b.limits.maxHalfOpen)
        // A flood from one address evicts only its own half-open connections.
        link.connect()
        link.run(until: link.now + UTPSocketTests.second) { link.keys["b"] != nil }
        for index in 0..<1000 {
            let syn = UTPPacket(kind: .syn, connectionID: UInt16(index), seq: 1)
            _ = link.b.receive(syn.encoded, from: "flooder", bufferSize: 65536, now: link.now)
        }
        #expect(link.b.socket(link.keys["b"]!) != nil)
        let (fromA, _) = UTPSocketTests.transferConnected(link, count: 50_000, seed: 2)
        #expect(link.received["b"]! == fromA)
        // Half-open connections expire.
        link.run(until: link.now + 11 * UTPSocketTests.second)
        #expect(link.b.halfOpenCount == 0 && link.b.count == 1)
    }

    @Test("a retransmitted SYN gets the same answer; another SYN on a live connection id is refused")
    func synCollision() throws {
        let link = UTPLink(seed: 22)
        _ = UTPSocketTests.transfer(link, count: 5000, seed: 1)
        let socket = try #require(link.socket("b"))
        let syn = UTPPacket(kind: .syn, connectionID: socket.sendID, seq: socket.synSeq)
        #expect(link.b.receive(syn.encoded, from: "a", bufferSize: 65536, now: link.now) == .connection(link.keys["b"]!))
        let answer = try UTPPacket.decode(try #require(socket.takeDatagrams().last))
        #expect(answer.kind == .state && answer.connectionID == socket.sendID)
        let other = UTPPacket(kind: .syn, connectionID: socket.sendID, seq: socket.synSeq &+ 9)
        #expect(link.b.receive(other.encoded, from: "a", bufferSize: 65536, now: link.now) == .dropped(.refusedSyn))
        #expect(socket.takeDatagrams().isEmpty && socket.state == .connected)
        // A dial never picks an id next to one in use with that peer.
        for _ in 0..<200 {
            let key = try #require(link.a.connect(to: "b", now: link.now))
            #expect(abs(Int(key.recvID) - Int(link.keys["a"]!.recvID)) > 1 || key == link.keys["a"]!)
            if key != link.keys["a"]! { link.a.remove(key) }
        }
    }

    @Test("garbage and bogus connection ids are dropped; DATA for no connection gets a RESET")
    func strangers() throws {
        let link = UTPLink(seed: 21)
        _ = UTPSocketTests.transfer(link, count: 20_000, seed: 3)
        var random = SplitMix64(seed: 4)
        for _ in 0..<2000 {
            let bytes = random.bytes(Int.random(in: 0...200, using: &random))
            _ = link.b.receive(bytes, from: "a", bufferSize: 65536, now: link.now)
        }
        let bogus = UTPPacket(kind: .data, connectionID: link.keys["b"]!.recvID &+ 7, seq: 3, payload: [1][...])
        #expect(link.b.receive(bogus.encoded, from: "a", bufferSize: 65536, now: link.now) == .dropped(.unknownConnection))
        let replies = link.b.takeReplies()
        let reset = try UTPPacket.decode(try #require(replies.last).1)
        #expect(reset.kind == .reset && reset.connectionID == bogus.connectionID && reset.ack == 3)
        // The connection is unharmed.
        link.socket("a")!.write([9, 9, 9])
        link.socket("a")!.flush(now: link.now)
        link.collect("a")
        link.run(until: link.now + UTPSocketTests.second) { link.received["b"]!.count == 20_003 }
        #expect(link.received["b"]!.suffix(3) == [9, 9, 9])
    }
}

@Suite("uTP congestion")
struct UTPCongestionTests {
    @Test("LEDBAT: the window grows below the 100 ms target and shrinks above it")
    func ledbat() {
        var congestion = UTPCongestion(packetSize: 1452, maxWindow: 1 << 22)
        congestion.rttSample(50_000_000)
        congestion.delaySample(1000, now: 0)  // base delay
        congestion.lost(now: 1_000_000_000)  // leave slow start
        let start = congestion.window
        for _ in 0..<100 {
            congestion.delaySample(1000 + 20_000, now: 1)  // 20 ms of queuing
            congestion.acked(1452, flight: congestion.window)
        }
        let grown = congestion.window
        #expect(grown > start)
        // Gain 3000 bytes per window acked, times (100 − 20)/100.
        #expect(grown - start <= 3000 * 100 * 1452 / start + 100)
        for _ in 0..<100 {
            congestion.delaySample(1000 + 200_000, now: 2)  // 200 ms: above target
            congestion.acked(1452, flight: congestion.window)
        }
        #expect(congestion.window < grown)
        #expect(congestion.queuingDelay == 200_000_000)
    }

    @Test("RTT and timeout follow BEP 29's estimator with a 100 ms floor; timeouts double")
    func timeout() {
        var congestion = UTPCongestion(packetSize: 1452, maxWindow: 1 << 22)
        #expect(congestion.timeout == 1_000_000_000)
        congestion.rttSample(200_000_000)
        #expect(congestion.rtt == 200_000_000 && congestion.timeout == 600_000_000)
        congestion.rttSample(280_000_000)
        #expect(congestion.rtt == 210_000_000)
        #expect(congestion.rttVariance == 100_000_000 + (80_000_000 - 100_000_000) / 4)
        for _ in 0..<50 { congestion.rttSample(1_000_000) }
        #expect(congestion.timeout == UTPCongestion.minimumTimeout)
        congestion.timedOut(now: 0)
        #expect(congestion.timeout == 2 * UTPCongestion.minimumTimeout && congestion.window == 1452)
    }
}
