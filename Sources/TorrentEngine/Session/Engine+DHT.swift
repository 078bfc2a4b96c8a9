import BitTorrent
import Dispatch
import NIOCore

/// The mainline DHT on the session's UDP port: started once the port is bound (the saved
/// table read and the routers resolved on a disk thread), fed `.dht` datagrams, stopped
/// (and its table saved) at shutdown.
extension Engine {
    var dhtStatePath: String { configuration.resolvedStateDirectory + "/" + DHTService.fileName }

    /// Starts the node with the saved table and the routers given as addresses; routers
    /// given by name join once resolved (in the background: DNS may be slow or absent,
    /// and neither start nor shutdown waits for it).
    func startDHT() -> EventLoopFuture<Void> {
        loop.assertInEventLoop()
        guard configuration.dht, let port = udpPort else { return loop.makeSucceededVoidFuture() }
        let path = dhtStatePath, routers = configuration.dhtRouters, ipv6 = port.isIPv6
        return onDisk { DHTService.loadState(path) }.map { [self] saved in
            guard !stopped else { return }
            var node = DHTNode.Configuration()
            node.routers = DHTService.resolve(routers, ipv6: ipv6, names: false)
            node.readOnly = configuration.dhtReadOnly
            node.ipv6 = ipv6
            let owner = DHTEngineReference(self)
            let service = DHTService(
                loop: loop, port: port, logger: logger, configuration: node, saved: saved, statePath: path,
                announcePort: UInt16(clamping: listenPort),
                torrents: { owner.engine?.dhtTorrents() ?? [] },
                found: { infoHash, peers in owner.engine?.torrents[infoHash]?.addCandidates(peers, source: .dht) })
            dht = service
            service.start()
            logger.info("DHT started", metadata: ["saved nodes": "\(saved?.nodes.count ?? 0)"])
            if node.routers.count < routers.count {
                let loop = loop
                DispatchQueue.global().async {
                    let resolved = DHTService.resolve(routers, ipv6: ipv6, names: true)
                    loop.execute { owner.engine?.dht?.addRouters(resolved) }
                }
            }
        }
    }

    /// Public torrents running, and whether each still wants peers (no metadata yet, or
    /// few connections while not seeding). Private torrents (BEP 27) never use the DHT.
    private func dhtTorrents() -> [(infoHash: InfoHash, hungry: Bool)] {
        torrents.values.filter { !$0.isStopped && $0.error == nil && !$0.isPrivate }.map { torrent in
            (torrent.infoHash, torrent.metainfo == nil || (torrent.state != .seeding && torrent.peers.count < DHTService.wantedPeers))
        }
    }

    func stopDHT() {
        dht?.stop()
        dht = nil
    }
}

/// The engine as the DHT's callbacks see it (without keeping it alive).
private final class DHTEngineReference: @unchecked Sendable {
    weak var engine: Engine?
    init(_ engine: Engine) { self.engine = engine }
}
