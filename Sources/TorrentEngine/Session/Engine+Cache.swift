import BitTorrent

/// The bounded cache (`SessionConfiguration.cacheLimit`): verified data on disk across
/// every torrent stays under the limit. The least recently read pieces go first; pieces
/// under a read, inside a reader's window, or being uploaded stay.
extension Engine {
    /// Verified bytes of every torrent, and those being written: what the cache holds.
    var cachedBytes: Int64 { torrents.values.reduce(0) { $0 + $1.verifiedBytes + $1.pendingWrites } }

    /// Evicts until the verified data fits the limit (or nothing more may go). Each evicted
    /// piece is unverified in the read coordinator, the picker and the resume data before
    /// its bytes are released (`Torrent.evict`).
    func enforceCacheLimit() {
        guard let limit = configuration.cacheLimit else { return }
        evict(cachedBytes - limit)
    }

    /// The disk is full before the cache is: with a bounded cache, evicts `bytes` more so a
    /// failed write finds room once the release is done (without one, it waits for space).
    /// Returns whether anything was evicted.
    func makeRoom(_ bytes: Int64) -> Bool {
        guard configuration.cacheLimit != nil else { return false }
        return evict(bytes) > 0
    }

    @discardableResult
    private func evict(_ over: Int64) -> Int {
        guard over > 0 else { return 0 }
        var protected: [InfoHash: Set<Int>] = [:]
        for (hash, torrent) in torrents where !torrent.uploading.isEmpty { protected[hash] = Set(torrent.uploading.keys) }
        let chosen = reads.evict(bytes: over, protected: protected)
        for (hash, pieces) in chosen {
            guard let torrent = torrents[hash] else { continue }
            torrent.evict(pieces)
            cacheEvictions += pieces.count
        }
        return chosen.values.reduce(0) { $0 + $1.count }
    }

    /// Runs `write` once no eviction's release job is under way (at once without a limit):
    /// a piece is written only after the room made for it is really free.
    func afterReleases(_ write: @escaping () -> Void) {
        guard configuration.cacheLimit != nil, torrents.values.contains(where: \.releasing) else { return write() }
        writesAfterRelease.append(write)
    }

    /// A release job ended: the writes waiting for it go once none is left.
    func releaseEnded() {
        guard !torrents.values.contains(where: \.releasing) else { return }
        let writes = writesAfterRelease
        writesAfterRelease = []
        for write in writes { write() }
    }

    /// `.status`'s cache fields; nil without a limit.
    var cacheStatus: CacheStatus? {
        configuration.cacheLimit.map { CacheStatus(size: cachedBytes, limit: $0, evictions: cacheEvictions) }
    }
}

/// The bounded cache in the status document.
public struct CacheStatus: Sendable, Codable, Hashable {
    /// Verified bytes kept on disk across all torrents.
    public var size: Int64
    /// `cache_size`.
    public var limit: Int64
    /// Pieces evicted since the session started.
    public var evictions: Int
}
