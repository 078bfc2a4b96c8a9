import Testing
@testable import TorrentEngine

@Suite("Request depth")
struct RequestDepthTests {
    static let ms: Int64 = 1_000_000
    static let mb = 1_000_000.0

    @Test("steady state: rate × 3 s in blocks, clamped to 16…500 and the peer's reqq", arguments: [
        (0.0, nil, 16), (100_000.0, nil, 18), (1 * mb, nil, 183), (10 * mb, nil, 250), (10 * mb, 2000, 500),
        (10 * mb, 100, 100), (10 * mb, 4, 16), (.infinity, nil, 250), (.nan, 300, 16),
    ] as [(Double, Int?, Int)])
    func steady(rate: Double, reqq: Int?, expected: Int) {
        #expect(RequestDepth.steady(rate: rate, cap: RequestDepth.cap(reqq)) == expected)
    }

    @Test("slow start doubles the depth each round trip while the rate grows, then follows the rate")
    func slowStart() {
        var depth = RequestDepth()
        var now: Int64 = 0
        var rate = 1 * Self.mb
        // The first block starts the first round; 10 ms round trips.
        #expect(depth.blockArrived(rate: rate, roundTrip: 10 * Self.ms, now: now, peerLimit: 2000) == 16)
        var seen: [Int] = []
        for _ in 0..<5 {
            now += 10 * Self.ms
            rate *= 2
            seen.append(depth.blockArrived(rate: rate, roundTrip: 10 * Self.ms, now: now, peerLimit: 2000))
        }
        #expect(seen == [32, 64, 128, 256, 500])
        #expect(!depth.slowStart, "the cap ends slow start")
        // From here on: the rate decides.
        #expect(depth.blockArrived(rate: 2 * Self.mb, roundTrip: 10 * Self.ms, now: now + 1, peerLimit: 2000) == 366)
    }

    @Test("slow start ends when a round trip brings less than 25 % more rate")
    func plateau() {
        var depth = RequestDepth()
        _ = depth.blockArrived(rate: 5 * Self.mb, roundTrip: 20 * Self.ms, now: 0, peerLimit: nil)
        // Within the round trip nothing changes.
        #expect(depth.blockArrived(rate: 9 * Self.mb, roundTrip: 20 * Self.ms, now: 10 * Self.ms, peerLimit: nil) == 16)
        #expect(depth.blockArrived(rate: 9 * Self.mb, roundTrip: 20 * Self.ms, now: 20 * Self.ms, peerLimit: nil) == 32)
        #expect(depth.slowStart)
        let after = depth.blockArrived(rate: 10 * Self.mb, roundTrip: 20 * Self.ms, now: 40 * Self.ms, peerLimit: nil)
        #expect(!depth.slowStart && after == 250, "10 MB/s × 3 s is past the default reqq")
        #expect(depth.current(rate: 100_000, peerLimit: nil) == 18)
    }
}
