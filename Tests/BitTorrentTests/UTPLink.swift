import BitTorrent
import TestSupport

/// Two uTP endpoints ("a" and "b") joined by a simulated link on a virtual clock: each
/// datagram is lost with probability `loss`, delayed by `delay` plus up to `jitter`
/// (so datagrams overtake each other), and the receiving side drains after each batch.
final class UTPLink {
    struct InFlight {
        var at: Int64
        var order: Int
        var to: String
        var from: String
        var bytes: [UInt8]
    }

    var now: Int64 = 1_000_000_000
    var loss = 0.0
    var delay: Int64 = 10_000_000
    var jitter: Int64 = 0
    /// Arrivals rounded up to multiples of this (datagrams read in batches), when set.
    var batchInterval: Int64 = 0
    var random: SplitMix64
    let a: UTPEndpoint<String>
    let b: UTPEndpoint<String>
    var queue: [InFlight] = []
    var order = 0
    /// Bytes each side's connections delivered, and their events, by endpoint name.
    var received: [String: [UInt8]] = ["a": [], "b": []]
    var events: [String: [UTPSocket.Event]] = ["a": [], "b": []]
    var keys: [String: UTPEndpoint<String>.Key] = [:]
    /// Drops datagrams from the named side (a peer that stops sending/acking).
    var silenced: Set<String> = []
    var sentDatagrams = 0
    /// Datagrams put on the link by each side, by packet type; the largest one.
    var kinds: [String: [UTPPacket.Kind: Int]] = [:]
    var largest = 0

    /// `scriptA`/`scriptB`: the first numbers each endpoint draws (a: connection id, then
    /// its first seq; b: its first seq), to place sequence numbers near the wrap.
    init(seed: UInt64, configuration: UTPSocket.Configuration = .init(), scriptA: [UInt16] = [],
         scriptB: [UInt16] = []) {
        self.random = SplitMix64(seed: seed)
        a = UTPEndpoint(random: Self.numbers(seed: seed ^ 0xA, script: scriptA), configure: { _ in configuration })
        b = UTPEndpoint(random: Self.numbers(seed: seed ^ 0xB, script: scriptB), configure: { _ in configuration })
    }

    static func numbers(seed: UInt64, script: [UInt16]) -> () -> UInt16 {
        var generator = SplitMix64(seed: seed)
        var script = script[...]
        return {
            if let first = script.popFirst() { return first }
            return UInt16.random(in: 0...UInt16.max, using: &generator)
        }
    }

    func endpoint(_ name: String) -> UTPEndpoint<String> { name == "a" ? a : b }

    /// "a" dials "b".
    func connect() {
        keys["a"] = a.connect(to: "b", now: now)
        collect("a")
    }

    func socket(_ name: String) -> UTPSocket? { keys[name].flatMap { endpoint(name).socket($0) } }

    /// Moves each side's output onto the link.
    func collect(_ name: String) {
        let other = name == "a" ? "b" : "a"
        let endpoint = endpoint(name)
        for (_, bytes) in endpoint.takeReplies() { put(bytes, from: name, to: other) }
        guard let key = keys[name], let socket = endpoint.socket(key) else { return }
        for datagram in socket.takeDatagrams() { put(datagram, from: name, to: other) }
        received[name]! += socket.takeDelivered().joined()
        for event in socket.takeEvents() {
            events[name]!.append(event)
            if case .closed = event { endpoint.remove(key) }
        }
    }

    private func put(_ bytes: [UInt8], from: String, to: String) {
        sentDatagrams += 1
        largest = max(largest, bytes.count)
        if let packet = try? UTPPacket.decode(bytes) { kinds[from, default: [:]][packet.kind, default: 0] += 1 }
        if silenced.contains(from) { return }
        if loss > 0, Double.random(in: 0..<1, using: &random) < loss { return }
        let extra = jitter > 0 ? Int64.random(in: 0...jitter, using: &random) : 0
        order += 1
        var at = now + delay + extra
        if batchInterval > 0 { at = (at + batchInterval - 1) / batchInterval * batchInterval }
        queue.append(InFlight(at: at, order: order, to: to, from: from, bytes: bytes))
    }

    /// Runs the link until `until` (virtual ns) or until `done` holds.
    func run(until limit: Int64, done: () -> Bool = { false }) {
        while now < limit, !done() {
            let nextDatagram = queue.map(\.at).min()
            let nextTimer = [a.deadline, b.deadline].compactMap { $0 }.min()
            guard let next = [nextDatagram, nextTimer].compactMap({ $0 }).min() else { return }
            now = max(now, min(next, limit))
            if now >= limit, next > limit { return }
            let due = queue.filter { $0.at <= now }.sorted { ($0.at, $0.order) < ($1.at, $1.order) }
            queue.removeAll { $0.at <= now }
            var touched = Set<String>()
            for datagram in due {
                let endpoint = endpoint(datagram.to)
                switch endpoint.receive(datagram.bytes, from: datagram.from, bufferSize: 65536, now: now) {
                case .accepted(let key):
                    keys[datagram.to] = key
                case .connection, .dropped:
                    break
                }
                touched.insert(datagram.to)
            }
            for name in touched.sorted() {
                if let key = keys[name], let socket = endpoint(name).socket(key) { socket.drained(now: now) }
                collect(name)
            }
            for name in ["a", "b"] {
                _ = endpoint(name).tick(now: now)
                collect(name)
            }
        }
    }
}
