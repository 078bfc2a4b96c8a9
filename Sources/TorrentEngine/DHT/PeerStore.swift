import BitTorrent

/// The peers others announced to us (BEP 5 `announce_peer`), bounded in torrents and in
/// peers per torrent; announcements expire after 30 minutes.
struct PeerStore {
    static let maxTorrents = 2000
    static let maxPeersPerTorrent = 200
    /// An announcement is kept this long (libtorrent and BEP 5 implementations: 30 minutes).
    static let lifetime: Int64 = 30 * 60 * 1_000_000_000

    private var torrents: [InfoHash: [CompactPeer: Int64]] = [:]

    var torrentCount: Int { torrents.count }
    var peerCount: Int { torrents.values.reduce(0) { $0 + $1.count } }

    /// Stores `peer`; a full store refuses new torrents, a full torrent drops its oldest peer.
    mutating func announce(_ infoHash: InfoHash, peer: CompactPeer, now: Int64) {
        if torrents[infoHash] == nil {
            guard torrents.count < Self.maxTorrents else { return }
            torrents[infoHash] = [:]
        }
        torrents[infoHash]![peer] = now
        if torrents[infoHash]!.count > Self.maxPeersPerTorrent,
           let oldest = torrents[infoHash]!.min(by: { $0.value < $1.value })?.key {
            torrents[infoHash]![oldest] = nil
        }
    }

    /// Up to `limit` live peers of the family asked for, in random order.
    func peers(_ infoHash: InfoHash, ipv6: Bool, limit: Int, now: Int64,
               using random: inout some RandomNumberGenerator) -> [CompactPeer] {
        guard let peers = torrents[infoHash] else { return [] }
        let live = peers.filter { now - $0.value < Self.lifetime && ($0.key.address.count == 16) == ipv6 }.map(\.key)
        return Array(live.shuffled(using: &random).prefix(limit))
    }

    mutating func expire(now: Int64) {
        for (infoHash, peers) in torrents {
            let live = peers.filter { now - $0.value < Self.lifetime }
            torrents[infoHash] = live.isEmpty ? nil : live
        }
    }
}
