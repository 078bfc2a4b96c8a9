import BitTorrent

/// How many block requests to keep outstanding with one peer. A new connection starts in
/// slow start: the depth doubles every round trip for as long as the peer's rate keeps
/// growing (a fast peer fills its pipe within a few round trips, before a rate meter could
/// notice it). After that, the depth covers `queueSeconds` of the measured rate (libtorrent's
/// request queue time). Always within `minimum`…`maximum` and the peer's own `reqq`. A
/// value: rate and time come in as arguments.
struct RequestDepth: Sendable, Equatable {
    /// Fewest requests kept outstanding (and the slow-start beginning).
    static let minimum = 16
    /// Most requests kept outstanding with one peer.
    static let maximum = 500
    /// Outstanding requests assumed allowed when the peer announces no `reqq`.
    static let defaultPeerLimit = 250
    /// Seconds of data at the peer's rate kept requested after slow start.
    static let queueSeconds = 3.0
    /// Slow start ends when a round trip raised the rate by less than this factor.
    static let growthToContinue = 1.25

    private(set) var depth = RequestDepth.minimum
    private(set) var slowStart = true
    private var roundStart: Int64?
    private var rateAtRoundStart = 0.0

    /// The depth after a block arrived at `now`, `rate` being the peer's measured rate and
    /// `roundTrip` the time its last request took to be answered; `peerLimit` is its `reqq`.
    mutating func blockArrived(rate: Double, roundTrip: Int64, now: Int64, peerLimit: Int?) -> Int {
        let cap = Self.cap(peerLimit)
        if slowStart {
            guard let start = roundStart else {
                roundStart = now
                rateAtRoundStart = rate
                return depth
            }
            if now - start >= max(roundTrip, 1) {
                if rate >= rateAtRoundStart * Self.growthToContinue || rateAtRoundStart == 0 {
                    depth = min(cap, depth * 2)
                    if depth == cap { slowStart = false }
                } else {
                    slowStart = false
                }
                roundStart = now
                rateAtRoundStart = rate
            }
            if slowStart { return depth }
        }
        depth = Self.steady(rate: rate, cap: cap)
        return depth
    }

    /// The depth to use now (between blocks: after an unchoke, a have, a tick).
    func current(rate: Double, peerLimit: Int?) -> Int {
        slowStart ? min(depth, Self.cap(peerLimit)) : Self.steady(rate: rate, cap: Self.cap(peerLimit))
    }

    static func steady(rate: Double, cap: Int) -> Int {
        let blocks = rate * queueSeconds / Double(Lengths.blockSize)
        guard !blocks.isNaN else { return minimum }
        return min(cap, max(minimum, Int(min(blocks, Double(maximum)))))
    }

    static func cap(_ peerLimit: Int?) -> Int {
        min(maximum, max(minimum, peerLimit ?? defaultPeerLimit))
    }
}
