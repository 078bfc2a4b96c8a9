import BitTorrent

/// Web seeds (BEP 19): `url-list` of the .torrent and `ws=` of the magnet, each a block
/// source next to the peers (`WebSeed`).
extension Torrent {
    /// Once the data is checked: one source per distinct http(s) URL.
    func startWebSeeds() {
        guard webSeeds.isEmpty, let info = metainfo?.info else { return }
        var urls: [String] = []
        for url in (metainfo?.webSeeds ?? []) + (magnet?.webSeeds ?? []) where !urls.contains(url) { urls.append(url) }
        for url in urls {
            guard let seed = WebSeed(url: url, info: info, id: engine.makeID(), torrent: self, client: engine.httpClient,
                                     loop: engine.loop) else {
                logger.warning("web seed ignored: not an http(s) URL", metadata: ["url": "\(url)"])
                continue
            }
            webSeeds[seed.id] = seed
        }
        fillWebSeeds(now: Engine.now())
    }

    func fillWebSeeds(now: Int64) {
        for seed in webSeeds.values where !seed.isDropped { fillRequests(seed, now: now) }
    }

    /// A block of a web seed's answer.
    func webSeedBlock(_ seed: WebSeed, _ block: BlockRange, _ bytes: UnsafeRawBufferPointer, now: Int64) {
        guard !isStopped else { return }
        blockReceived(block, bytes, sender: BlockSender(connection: seed.id, address: seed.address, peerID: nil), now: now)
    }

    /// A request of the seed ended (`dropped`: its blocks that did not come): they are
    /// open again, and the seed is asked for more.
    func webSeedIdle(_ seed: WebSeed, dropped: [BlockRange]) {
        guard !isStopped else { return }
        for block in dropped { picker?.requestDropped(block) }
        if seed.isDropped { webSeeds[seed.id] = nil }
        let now = Engine.now()
        fillWebSeeds(now: now)
        if !dropped.isEmpty {
            for peer in peers.values where peer.session != nil { fillRequests(peer, now: now) }
        }
    }

    /// Data of the seed failed a hash check: backoff, and dropped after a few; its blocks
    /// in unfinished pieces are not trusted.
    func webSeedSentBadData(_ seed: WebSeed) {
        seed.badPieces += 1
        seed.failed("data that failed the hash check")
        if seed.badPieces >= WebSeed.maxBadPieces { seed.drop("\(seed.badPieces) pieces failed the hash check") }
        for piece in assembly.dropPieces(from: seed.id) {
            if let index = metainfo?.info.lengths.piece(piece) { picker?.pieceFailed(index) }
        }
        if seed.isDropped { webSeeds[seed.id] = nil }
    }

    /// Web seeds in the status, as peers over HTTP.
    func webSeedStats(now: Int64) -> [TorrentStats.Peer] {
        webSeeds.values.sorted { $0.id < $1.id }.map { seed in
            TorrentStats.Peer(address: seed.url, transport: "http", source: "webseed", client: nil, incoming: false,
                              downloadRate: seed.downloadRate(now: now), uploadRate: 0,
                              downloaded: seed.downloadMeter.total, uploaded: 0, peerChoking: false, amChoking: true,
                              progress: 1)
        }
    }
}
