import BitTorrent

/// Local service discovery (BEP 14) without sockets or clocks: told which torrents run
/// (`update`), it says which info hashes to announce when (`poll`), and turns announces
/// received from the multicast groups into peers for our torrents (`received`).
///
/// Schedule (libtorrent's): a torrent is announced 0, 2 and 6 s after it first shows up,
/// then every 5 minutes while it runs. Limits: announces leave at least `minimumGap`
/// apart, in datagrams of at most `LSDAnnouncement.maxInfoHashes` hashes, at most
/// `maxDatagramsPerSend` of them at once; a periodic announce takes along every torrent
/// due within `coalesceWindow`, so in steady state one datagram covers them all and the
/// group sees about one announce per 5 minutes (BEP 14 asks for at most one a minute).
/// Private torrents (BEP 27) are never announced and never take LSD peers; announces
/// carrying our own cookie are ignored; received announces beyond `receiveBurst` per
/// `receiveWindow` are dropped.
struct LSDAnnouncer: Sendable {
    static let second: Int64 = 1_000_000_000
    /// Delays after a torrent appears at which it is announced, then `interval`.
    static let initialDelays: [Int64] = [0, 2 * second, 6 * second]
    static let interval: Int64 = 300 * second
    static let minimumGap: Int64 = second
    static let coalesceWindow: Int64 = 60 * second
    static let maxDatagramsPerSend = 4
    static let receiveWindow: Int64 = second
    static let receiveBurst = 20

    struct Entry: Sendable {
        var added: Int64
        /// Announces sent so far.
        var sent = 0
        var due: Int64
    }

    /// A peer for one of our torrents, from an announce.
    struct Found: Hashable, Sendable {
        var infoHash: InfoHash
        var peer: PeerAddress
    }

    /// Distinguishes our announces from others' (random, printable).
    let cookie: String
    private(set) var entries: [InfoHash: Entry] = [:]
    private var lastSend: Int64?
    private var windowStart: Int64?
    private var windowCount = 0
    /// Announces dropped by the receive limit, heard back from ourselves, or malformed (for
    /// the status).
    private(set) var dropped = 0
    private(set) var ownIgnored = 0
    private(set) var malformed = 0

    init(cookie: String) { self.cookie = cookie }

    /// The torrents that run now, with whether each is private. New public ones are
    /// scheduled; gone and private ones are forgotten.
    mutating func update(_ torrents: [(infoHash: InfoHash, isPrivate: Bool)], now: Int64) {
        var keep = Set<InfoHash>()
        for (hash, isPrivate) in torrents where !isPrivate {
            keep.insert(hash)
            if entries[hash] == nil { entries[hash] = Entry(added: now, due: now) }
        }
        for hash in entries.keys where !keep.contains(hash) { entries[hash] = nil }
    }

    /// Info hashes to announce now, one array per datagram (empty when nothing is due or
    /// the last send was less than `minimumGap` ago).
    mutating func poll(now: Int64) -> [[InfoHash]] {
        if let lastSend, now - lastSend < Self.minimumGap { return [] }
        guard entries.values.contains(where: { $0.due <= now }) else { return [] }
        // Due ones first (oldest due first), then periodic ones due within the window.
        let candidates = entries.filter { hash, entry in
            entry.due <= now || (entry.sent >= Self.initialDelays.count && entry.due - now <= Self.coalesceWindow)
        }.sorted { ($0.value.due, $0.key) < ($1.value.due, $1.key) }
        let limit = Self.maxDatagramsPerSend * LSDAnnouncement.maxInfoHashes
        let chosen = candidates.prefix(limit).map(\.key)
        for hash in chosen {
            guard var entry = entries[hash] else { continue }
            entry.sent += 1
            entry.due = entry.sent < Self.initialDelays.count
                ? entry.added + Self.initialDelays[entry.sent] : now + Self.interval
            entries[hash] = entry
        }
        lastSend = now
        return stride(from: 0, to: chosen.count, by: LSDAnnouncement.maxInfoHashes).map {
            Array(chosen[$0..<min($0 + LSDAnnouncement.maxInfoHashes, chosen.count)])
        }
    }

    /// When `poll` may next return something (nil: nothing to announce).
    func nextPoll() -> Int64? {
        guard let due = entries.values.map(\.due).min() else { return nil }
        guard let lastSend else { return due }
        return max(due, lastSend + Self.minimumGap)
    }

    /// Peers for our running public torrents from a datagram sent by `host` (its source
    /// address, not anything the datagram says). Nothing for our own announces, malformed
    /// ones, or beyond the receive limit.
    mutating func received(_ datagram: [UInt8], from host: String, now: Int64) -> [Found] {
        if windowStart.map({ now - $0 >= Self.receiveWindow }) ?? true {
            windowStart = now
            windowCount = 0
        }
        guard windowCount < Self.receiveBurst else {
            dropped += 1
            return []
        }
        windowCount += 1
        guard let announce = try? LSDAnnouncement(datagram: datagram) else {
            malformed += 1
            return []
        }
        if announce.cookie == cookie {
            ownIgnored += 1
            return []
        }
        let peer = PeerAddress(host: host, port: announce.port)
        return announce.infoHashes.filter { entries[$0] != nil }.map { Found(infoHash: $0, peer: peer) }
    }

    /// A random cookie: 8 lowercase hex digits.
    static func makeCookie<R: RandomNumberGenerator>(using generator: inout R) -> String {
        let value = UInt32.random(in: .min ... .max, using: &generator)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}
