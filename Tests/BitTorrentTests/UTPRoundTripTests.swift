import Testing

@testable import BitTorrent

/// The round-trip estimate when acks are held back by a loss: a sender fed hand-made
/// acks (as a receiver with a small selective-ack reach, or none, sends them).
@Suite("uTP round-trip samples")
struct UTPRoundTripTests {
    static let ms: Int64 = 1_000_000
    static let rtt = 10 * ms

    /// A connected sender (our SYN was seq 1, data starts at 2) that sent `packets` DATA,
    /// one a millisecond from `now`; returns their sequence numbers and the time after.
    static func sender(packets: Int, now: Int64) -> (UTPSocket, [UInt16], Int64) {
        let socket = UTPSocket.connect(recvID: 10, now: now - rtt)
        _ = socket.takeDatagrams()
        socket.receive(UTPPacket(kind: .state, connectionID: 10, window: 1 << 24, seq: 500, ack: 1), now: now)
        var seqs: [UInt16] = []
        var time = now
        for _ in 0..<packets {
            socket.write([UInt8](repeating: 7, count: socket.payloadSize))
            socket.flush(now: time)
            seqs += socket.takeDatagrams().compactMap { try? UTPPacket.decode($0) }.filter { $0.kind == .data }.map(\.seq)
            time += ms
        }
        return (socket, seqs, time)
    }

    static func ack(_ ack: UInt16, sacked: [UInt16] = []) -> UTPPacket {
        var mask: [UInt8]?
        if !sacked.isEmpty {
            var bits = [UInt8](repeating: 0, count: 4)
            for seq in sacked {
                let bit = Int(seq &- ack &- 2)
                bits[bit / 8] |= 1 << UInt8(bit % 8)
            }
            mask = bits
        }
        return UTPPacket(kind: .state, connectionID: 10, window: 1 << 24, seq: 501, ack: ack, selectiveAck: mask)
    }

    @Test("packets received before a loss and acked only after its repair give no sample")
    func heldBackAcks() {
        var (socket, seqs, now) = Self.sender(packets: 4, now: 1_000 * Self.ms)
        #expect(seqs == Array(2...5))
        #expect(socket.congestion.rtt == Self.rtt)
        // 2 is lost; 3...9 arrive, but the receiver's acks say nothing of them (no
        // selective ack, or beyond its reach) until 2 is repaired, seconds later.
        now += 2_000 * Self.ms
        socket.tick(now: now)  // the retransmission timeout: 2 goes out again
        #expect(socket.timeouts == 1 && socket.retransmissions > 0)
        now += Self.rtt
        socket.receive(Self.ack(5), now: now)
        #expect(socket.congestion.rtt < 2 * Self.rtt, "\(socket.congestion.rtt / Self.ms) ms")
    }

    @Test("a selectively acked packet sent before the last retransmission gives no sample; a later one does")
    func lateSelectiveAcks() {
        var (socket, seqs, now) = Self.sender(packets: 4, now: 1_000 * Self.ms)
        #expect(seqs == Array(2...5))
        now += Self.rtt
        socket.receive(Self.ack(2), now: now)
        #expect(Self.send(socket, packets: 2, now: &now) == [6, 7])
        // 3 lost: 4, 5 and 6 selectively acked; 3 declared lost and sent again.
        now += Self.rtt
        socket.receive(Self.ack(2, sacked: [4, 5, 6]), now: now)
        #expect(socket.retransmissions == 1)
        let before = socket.congestion.rtt
        #expect(before < 2 * Self.rtt)
        // Seconds later, 7 (sent before that retransmission) is selectively acked: old news,
        // not a round trip of seconds.
        now += 3_000 * Self.ms
        socket.receive(Self.ack(2, sacked: [4, 5, 6, 7]), now: now)
        #expect(socket.congestion.rtt == before, "\(socket.congestion.rtt / Self.ms) ms")
        // A packet sent after the retransmission is sampled.
        let fresh = Self.send(socket, packets: 1, now: &now)
        now += 2 * Self.ms
        #expect(fresh.last == 8)  // (after the retransmission of 3, still in the output)
        socket.receive(Self.ack(8), now: now)
        #expect(socket.congestion.rtt < before)
    }

    /// Sends `packets` more DATA, one a millisecond; their sequence numbers.
    static func send(_ socket: UTPSocket, packets: Int, now: inout Int64) -> [UInt16] {
        var seqs: [UInt16] = []
        for _ in 0..<packets {
            now += ms
            socket.write([UInt8](repeating: 1, count: socket.payloadSize))
            socket.flush(now: now)
            seqs += socket.takeDatagrams().compactMap { try? UTPPacket.decode($0) }.filter { $0.kind == .data }.map(\.seq)
        }
        return seqs
    }
}
