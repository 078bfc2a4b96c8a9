import BitTorrent

/// Where a peer's address came from.
public enum PeerSource: String, Codable, Sendable, CaseIterable {
    case tracker, pex, magnet, manual, dht, lsd, incoming

    /// Sources a private torrent (BEP 27) never takes peers from.
    var isPublicDiscovery: Bool { self == .pex || self == .dht || self == .lsd }
}

/// Why a peer is never contacted again in this session.
public enum BanReason: String, Codable, Sendable, CaseIterable {
    /// It sent data that failed the hash check.
    case badData = "bad data"
    /// It broke the wire protocol (oversized or malformed message, bad index, unrequested data).
    case protocolViolation = "protocol violation"
    /// It sent metadata that does not match the info hash.
    case wrongMetadata = "wrong metadata"
    /// Its handshake was for another torrent.
    case wrongTorrent = "wrong torrent"
}

/// Every address known for one torrent: where it came from, whether a dial is under way,
/// how often dialing failed (and so when to try again), and bans with their reasons. A
/// value driven with `now`, no sockets: the torrent asks it whom to dial and reports what
/// happened. The private-torrent rule (no PEX, DHT or LSD peers) is enforced here, and its
/// size is capped.
struct PeerList: Sendable {
    /// Most addresses kept (libtorrent keeps up to 3000 per torrent; we dial 50 at most).
    static let maxAddresses = 2000
    /// Backoff after the n-th failure: 2ⁿ s, at most this many seconds.
    static let maxBackoffSeconds: Int64 = 120

    struct Entry: Sendable {
        var sources: Set<PeerSource>
        var failures = 0
        var retryAt: Int64 = 0
        var dialing = false
        var ban: BanReason?
    }

    private(set) var isPrivate: Bool
    private(set) var entries: [PeerAddress: Entry] = [:]
    /// Dial order: first known, first dialed.
    private var order: [PeerAddress] = []
    private var bannedIDs: [PeerID: BanReason] = [:]
    /// Addresses that turned out to be this session itself (trackers return us too).
    private var ownAddresses = Set<PeerAddress>()

    init(isPrivate: Bool) { self.isPrivate = isPrivate }

    var count: Int { entries.count }

    /// The metadata of a magnet said the torrent is private: addresses known only from
    /// public discovery are forgotten, and no more are taken.
    mutating func becamePrivate() {
        isPrivate = true
        for (address, entry) in entries where entry.ban == nil && entry.sources.allSatisfy(\.isPublicDiscovery) {
            entries[address] = nil
        }
        order.removeAll { entries[$0] == nil }
    }
    var dialingCount: Int { entries.values.filter(\.dialing).count }

    /// Adds an address (or another source for a known one). False when refused: banned, a
    /// public-discovery source for a private torrent, or the list is full.
    @discardableResult
    mutating func add(_ address: PeerAddress, source: PeerSource) -> Bool {
        if isPrivate && source.isPublicDiscovery { return false }
        if ownAddresses.contains(address) { return false }
        if var entry = entries[address] {
            guard entry.ban == nil else { return false }
            entry.sources.insert(source)
            entries[address] = entry
            return true
        }
        if entries.count >= Self.maxAddresses && !evictOne() { return false }
        entries[address] = Entry(sources: [source])
        order.append(address)
        return true
    }

    /// Makes room by forgetting the address that failed most (never one being dialed or banned).
    private mutating func evictOne() -> Bool {
        guard let victim = entries.filter({ !$0.value.dialing && $0.value.ban == nil && $0.value.failures > 0 })
            .max(by: { $0.value.failures < $1.value.failures })?.key else { return false }
        entries[victim] = nil
        order.removeAll { $0 == victim }
        return true
    }

    /// Up to `limit` addresses to dial now, marked as being dialed: not banned, not dialing,
    /// not `connected`, and past their backoff.
    mutating func takeForDialing(limit: Int, now: Int64, connected: Set<PeerAddress>) -> [PeerAddress] {
        guard limit > 0 else { return [] }
        var chosen: [PeerAddress] = []
        for address in order where chosen.count < limit {
            guard let entry = entries[address], entry.ban == nil, !entry.dialing, entry.retryAt <= now,
                  !connected.contains(address) else { continue }
            entries[address]?.dialing = true
            chosen.append(address)
        }
        return chosen
    }

    /// The handshake with a dialed address succeeded: its failures are forgotten.
    mutating func connected(_ address: PeerAddress) {
        entries[address]?.dialing = false
        entries[address]?.failures = 0
        entries[address]?.retryAt = 0
    }

    /// A dial failed, or a connection we made ended (timeouts, closes): try again later,
    /// after 2, 4, 8 … 120 s, then every two minutes.
    mutating func failed(_ address: PeerAddress, now: Int64) {
        guard var entry = entries[address] else { return }
        entry.dialing = false
        entry.failures += 1
        entry.retryAt = now + min(Self.maxBackoffSeconds, 1 << min(entry.failures, 7)) * 1_000_000_000
        entries[address] = entry
    }

    /// A dial reached this session itself: the address is forgotten and never taken again.
    mutating func markAsOurs(_ address: PeerAddress) {
        ownAddresses.insert(address)
        entries[address] = nil
        order.removeAll { $0 == address }
    }

    /// Never dialed or accepted again in this session (`peerID`, when known, is banned too).
    mutating func ban(_ address: PeerAddress, peerID: PeerID?, reason: BanReason) {
        var entry = entries[address] ?? Entry(sources: [])
        if entries[address] == nil { order.append(address) }
        entry.dialing = false
        entry.ban = entry.ban ?? reason
        entries[address] = entry
        if let peerID, bannedIDs[peerID] == nil { bannedIDs[peerID] = reason }
    }

    func isBanned(_ address: PeerAddress) -> Bool { entries[address]?.ban != nil }

    /// The first source of an address, in `PeerSource` order (for status).
    func source(of address: PeerAddress) -> PeerSource? {
        guard let sources = entries[address]?.sources else { return nil }
        return PeerSource.allCases.first { sources.contains($0) }
    }
    func isBanned(_ peerID: PeerID) -> Bool { bannedIDs[peerID] != nil }

    /// Banned addresses by reason (for the status).
    var bansByReason: [BanReason: Int] {
        entries.values.reduce(into: [:]) { counts, entry in if let ban = entry.ban { counts[ban, default: 0] += 1 } }
    }

    /// Known addresses by source; an address with several sources counts for each.
    var addressesBySource: [PeerSource: Int] {
        entries.values.reduce(into: [:]) { counts, entry in for source in entry.sources { counts[source, default: 0] += 1 } }
    }

    var bannedCount: Int { entries.values.filter { $0.ban != nil }.count }
}
