/// A uTP connection's round-trip estimate, retransmission timeout, LEDBAT congestion window
/// and pacing rate (BEP 29). Times in nanoseconds.
///
/// - RTT: `rtt_var += (|rtt − sample| − rtt_var)/4`, `rtt += (sample − rtt)/8`, timeout
///   `rtt + 4·rtt_var`, doubled on each expiry. BEP 29 floors the timeout at 500 ms; here
///   the floor is `minimumTimeout` (100 ms): losses inside a window are found from
///   selective acks and the RTT (`UTPSocket`), and a tail loss on a LAN or loopback
///   should not cost half a second.
/// - LEDBAT: the queuing delay is the peer's `timestamp_difference` minus its minimum
///   over the last two minutes; each ack moves the window by
///   `gain · (target − delay)/target · acked/window` (target 100 ms, gain 3000 bytes per
///   RTT), so the window shrinks while delay exceeds the target and uTP yields to TCP.
///   A loss halves the window (at most once per RTT); a timeout sets it to one packet.
///   Before the first loss or before the delay reaches half the target, the window grows
///   by the acked bytes (slow start).
/// - Pacing: packets leave at `window / rtt` (×2 in slow start, ×1.25 after), in bursts
///   of at most `burstPackets`, so a receiver's small socket buffer is not overrun.
public struct UTPCongestion: Sendable {
    public static let target: Int64 = 100_000_000
    public static let gain = 3000.0
    public static let initialTimeout: Int64 = 1_000_000_000
    public static let minimumTimeout: Int64 = 100_000_000
    public static let maximumTimeout: Int64 = 30_000_000_000
    public static let burstPackets = 16
    /// The base delay is the minimum over this many one-minute buckets.
    static let delayBuckets = 2
    static let bucketLength: Int64 = 60_000_000_000

    public private(set) var window: Int
    public private(set) var rtt: Int64 = 0
    public private(set) var rttVariance: Int64 = 0
    public private(set) var timeout: Int64 = initialTimeout
    public private(set) var slowStart = true
    /// The last queuing-delay estimate (ns).
    public private(set) var queuingDelay: Int64 = 0
    public let maxWindow: Int
    var packetSize: Int
    var hasRTT = false
    private var lastCut: Int64 = .min
    private var delayMinimums: [UInt32] = []
    private var bucketStart: Int64 = .min

    public init(packetSize: Int, maxWindow: Int) {
        self.packetSize = packetSize
        self.maxWindow = maxWindow
        window = min(maxWindow, 4 * packetSize)
    }

    /// A round-trip sample from a packet sent once.
    public mutating func rttSample(_ sample: Int64) {
        let sample = max(sample, 1000)
        if hasRTT {
            let delta = abs(rtt - sample)
            rttVariance += (delta - rttVariance) / 4
            rtt += (sample - rtt) / 8
        } else {
            rtt = sample
            rttVariance = sample / 2
            hasRTT = true
        }
        timeout = min(Self.maximumTimeout, max(Self.minimumTimeout, rtt + 4 * rttVariance))
    }

    /// Larger packets were agreed: the initial window is four of them.
    mutating func resize(packetSize: Int) {
        if slowStart { window = min(maxWindow, max(window, 4 * packetSize)) }
        self.packetSize = packetSize
    }

    /// A one-way delay sample (the peer's `timestamp_difference`, µs with an unknown clock offset).
    public mutating func delaySample(_ micros: UInt32, now: Int64) {
        if bucketStart == .min || now - bucketStart >= Self.bucketLength {
            delayMinimums.append(micros)
            if delayMinimums.count > Self.delayBuckets { delayMinimums.removeFirst() }
            bucketStart = now
        } else if Self.before(micros, delayMinimums[delayMinimums.count - 1]) {
            delayMinimums[delayMinimums.count - 1] = micros
        }
        var base = delayMinimums[0]
        for value in delayMinimums.dropFirst() where Self.before(value, base) { base = value }
        queuingDelay = Int64(micros &- base) * 1000
    }

    /// Bytes newly acknowledged; `flight` is what was outstanding before them.
    public mutating func acked(_ bytes: Int, flight: Int) {
        guard bytes > 0 else { return }
        if slowStart {
            if queuingDelay > Self.target / 2 {
                slowStart = false
            } else {
                window = min(maxWindow, window + bytes)
                return
            }
        }
        // Only a window in use grows (an application-limited sender does not).
        guard flight + bytes >= window / 2 || queuingDelay > Self.target else { return }
        let delayFactor = Double(Self.target - queuingDelay) / Double(Self.target)
        let windowFactor = Double(min(bytes, window)) / Double(max(window, 1))
        let change = Self.gain * delayFactor * windowFactor
        window = min(maxWindow, max(packetSize, window + Int(change.rounded())))
    }

    /// A packet was lost: halve the window, once per round trip.
    public mutating func lost(now: Int64) {
        slowStart = false
        guard lastCut == .min || now - lastCut >= max(rtt, 1_000_000) else { return }
        lastCut = now
        window = max(packetSize, window / 2)
    }

    /// The retransmission timer expired: one packet of window, the timeout doubled.
    public mutating func timedOut(now: Int64) {
        slowStart = false
        lastCut = now
        window = packetSize
        timeout = min(Self.maximumTimeout, timeout * 2)
    }

    /// Bytes per second the sender may pace at; nil before an RTT is known (no pacing).
    public var pacingRate: Double? {
        guard hasRTT else { return nil }
        let factor = slowStart ? 2.0 : 1.25
        return Double(window) * factor * 1e9 / Double(max(rtt, 10_000))
    }

    /// The most a pacing credit may hold.
    public var burst: Int { Self.burstPackets * packetSize }

    /// `a` is earlier than `b` on the 32-bit microsecond clock.
    static func before(_ a: UInt32, _ b: UInt32) -> Bool { a != b && b &- a < 0x8000_0000 }
}
