import BitTorrent

/// Something blocks can be requested from: a peer connection today, a web seed next. The
/// torrent's request scheduling (`Torrent.fillRequests`) sees only this.
protocol BlockSource: AnyObject {
    /// What to ask it for now: the pieces it has and lets us request (for a peer that
    /// chokes us, its allowed-fast pieces); nil when it cannot be asked at all.
    var requestablePieces: Bitfield? { get }
    /// Requests sent and not answered yet.
    var outstandingBlocks: [BlockRange: Int64] { get }
    /// How many requests to keep outstanding with it now.
    func queueDepth(now: Int64) -> Int
    /// Its measured download rate, bytes per second.
    func downloadRate(now: Int64) -> Double
    /// Sends the requests (and records them as outstanding).
    func request(_ blocks: [BlockRange], now: Int64)
    /// Whether fresh pieces should come in runs of consecutive pieces (a web seed asks
    /// for byte ranges: runs make few, large requests).
    var prefersRuns: Bool { get }
}

extension PeerConnection: BlockSource {
    var requestablePieces: Bitfield? {
        guard let session, let bits = session.peerHas, session.amInterested else { return nil }
        guard session.peerChoking else { return bits }
        guard !session.allowedFast.isEmpty else { return nil }
        var allowed = Bitfield(count: bits.count)
        for piece in session.allowedFast where piece < bits.count && bits[piece] { allowed[piece] = true }
        return allowed
    }

    var outstandingBlocks: [BlockRange: Int64] { session?.outstanding ?? [:] }

    var prefersRuns: Bool { false }

    func queueDepth(now: Int64) -> Int {
        guard let session else { return 0 }
        // Snubbed (nothing received for a minute while requests were out): one at a time.
        if !session.outstanding.isEmpty, now - max(lastBlockAt, connectedAt) > PeerConnection.snubTimeout { return 1 }
        return requestDepth.current(rate: downloadRate(now: now), peerLimit: session.remoteExtensions?.requestQueueDepth)
    }

    func downloadRate(now: Int64) -> Double { downloadMeter.rate(now: now) }

    func request(_ blocks: [BlockRange], now: Int64) {
        // Taken out, so its request table is mutated in place (no copy-on-write).
        guard !blocks.isEmpty, var session = session.take() else { return }
        for block in blocks {
            session.sentRequest(block, now: now)
            send(.request(piece: block.piece.value, begin: block.begin, length: block.length))
        }
        self.session = session
        flush()
    }
}
