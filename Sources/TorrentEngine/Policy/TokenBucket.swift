/// A rate limit: `rate` bytes per second with a burst of `burst` bytes. A value; time is
/// passed in (nanoseconds).
public struct TokenBucket: Sendable {
    /// Bytes per second; nil means unlimited.
    public var rate: Int?
    public var burst: Int
    private var tokens: Double
    private var last: Int64

    public init(rate: Int?, now: Int64, burst: Int? = nil) {
        self.rate = rate
        self.burst = burst ?? max(16 * 1024, (rate ?? 0) / 4)
        tokens = Double(self.burst)
        last = now
    }

    private mutating func refill(now: Int64) {
        guard let rate else { return }
        let elapsed = Double(max(0, now - last)) / 1e9
        last = now
        tokens = min(Double(burst), tokens + elapsed * Double(rate))
    }

    /// Takes `bytes` if available now; unlimited buckets always succeed.
    public mutating func take(_ bytes: Int, now: Int64) -> Bool {
        guard rate != nil else { return true }
        refill(now: now)
        guard tokens >= Double(bytes) else { return false }
        tokens -= Double(bytes)
        return true
    }

    /// How many whole units of `size` bytes can be taken now (and takes them), at most `limit`.
    public mutating func takeUnits(of size: Int, upTo limit: Int, now: Int64) -> Int {
        guard rate != nil else { return limit }
        refill(now: now)
        let units = min(limit, Int(tokens / Double(size)))
        tokens -= Double(units * size)
        return max(0, units)
    }

    /// Nanoseconds until `bytes` will be available.
    public func delay(for bytes: Int) -> Int64 {
        guard let rate, rate > 0 else { return 0 }
        let missing = Double(bytes) - tokens
        return missing <= 0 ? 0 : Int64(missing / Double(rate) * 1e9)
    }
}

/// Bytes per second over a sliding window, for rates in stats and choking.
public struct RateMeter: Sendable {
    /// Width of the averaging window.
    public static let window: Int64 = 5_000_000_000
    private var samples: [(time: Int64, bytes: Int)] = []
    private var sum = 0
    public private(set) var total: Int64 = 0

    public init() {}

    public mutating func add(_ bytes: Int, now: Int64) {
        total += Int64(bytes)
        if let last = samples.last, now - last.time < 100_000_000 {
            samples[samples.count - 1].bytes += bytes
        } else {
            samples.append((now, bytes))
        }
        sum += bytes
        trim(now: now)
    }

    private mutating func trim(now: Int64) {
        var drop = 0
        while drop < samples.count && now - samples[drop].time > RateMeter.window {
            sum -= samples[drop].bytes
            drop += 1
        }
        if drop > 0 { samples.removeFirst(drop) }
    }

    /// Bytes per second over the window ending at `now`.
    public mutating func rate(now: Int64) -> Double {
        trim(now: now)
        guard let first = samples.first else { return 0 }
        let span = max(Double(now - first.time), 1e9) / 1e9
        return Double(sum) / min(span, Double(RateMeter.window) / 1e9)
    }
}
