import BitTorrent

/// Queries answered per source IP: a token bucket per address in a bounded table, so one
/// sender (or a forged one) cannot make us answer at will.
struct QueryRateLimiter {
    /// Queries per second answered for one IP, and the burst allowed.
    static let queriesPerSecond = 20
    static let burst = 40
    /// Addresses tracked; beyond it the table is cleared (everyone starts a fresh bucket).
    static let maxAddresses = 4096

    private var buckets: [[UInt8]: (tokens: Double, at: Int64)] = [:]

    mutating func allow(_ ip: [UInt8], now: Int64) -> Bool {
        if buckets[ip] == nil && buckets.count >= Self.maxAddresses {
            buckets.removeAll(keepingCapacity: true)
        }
        var bucket = buckets[ip] ?? (Double(Self.burst), now)
        let elapsed = Double(max(0, now - bucket.at)) / 1e9
        bucket.tokens = min(Double(Self.burst), bucket.tokens + elapsed * Double(Self.queriesPerSecond))
        bucket.at = now
        let allowed = bucket.tokens >= 1
        if allowed { bucket.tokens -= 1 }
        buckets[ip] = bucket
        return allowed
    }
}
