import BitTorrent
import NIOCore

/// Local service discovery and port mapping: started once the listen port is known,
/// stopped at shutdown (port mappings deleted on the gateway).
extension Engine {
    func startDiscovery() -> EventLoopFuture<Void> {
        loop.assertInEventLoop()
        if configuration.natPMP || configuration.upnp {
            portMapper = PortMapper.start(loop: loop, logger: logger, listenPort: listenPort,
                                          gatewayAddress: configuration.portMappingGateway,
                                          lease: configuration.portMappingLease, natpmp: configuration.natPMP,
                                          upnp: configuration.upnp ? httpClient : nil)
        }
        guard configuration.localDiscovery else { return loop.makeSucceededVoidFuture() }
        let owner = WeakEngine(self)
        return LSDService.start(loop: loop, listenPort: listenPort, logger: logger, torrents: {
            owner.engine?.lsdTorrents() ?? []
        }, found: { found in
            for item in found { owner.engine?.torrents[item.infoHash]?.addCandidates([item.peer], source: .lsd) }
        }).map { [self] service in lsd = service }
    }

    /// The torrents LSD announces and takes peers for: those running (private ones are
    /// left out by the announcer).
    private func lsdTorrents() -> [(infoHash: InfoHash, isPrivate: Bool)] {
        torrents.values.filter { !$0.isStopped && $0.error == nil }.map { ($0.infoHash, $0.isPrivate) }
    }

    /// The TCP port trackers are told: the gateway's external port once mapped (a NAT-PMP
    /// gateway may grant another than the one asked), the listen port otherwise. Trackers
    /// take the external address from the announce's source.
    var announcedPort: Int { portMapper?.status.tcpPort ?? listenPort }

    /// Closes the LSD sockets and deletes the port mappings.
    func stopDiscovery() -> [EventLoopFuture<Void>] {
        let futures = [lsd?.close(), portMapper?.stop()].compactMap { $0 }
        lsd = nil
        return futures
    }
}

/// The engine as the discovery callbacks see it (they outlive nothing, but must not keep it).
private final class WeakEngine: @unchecked Sendable {
    weak var engine: Engine?
    init(_ engine: Engine) { self.engine = engine }
}
