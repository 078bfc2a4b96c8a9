import BitTorrent
import NIOCore

/// uTP in the engine: the service on the UDP port, accepted uTP connections, and the
/// outgoing strategy.
///
/// Outgoing: uTP first, TCP as a quick fallback. A SYN goes out at once; if the uTP
/// handshake has not completed within `UTPService.dialTimeout` (500 ms), or the peer
/// refuses it (RESET), the peer is dialed over TCP. A peer that speaks both is connected
/// over uTP in one round trip; a TCP-only peer costs at most half a second more; a
/// uTP-only peer is connected over uTP. With `utp` off, TCP only and uTP SYNs unanswered.
extension Engine {
    func startUTP(on port: UDPPort) {
        guard configuration.utp else { return }
        utp = UTPService(engine: self, port: port, accepting: true)
    }

    /// Dials `address` for `torrent`: over uTP first when on, else (or on failure) TCP.
    func connect(_ address: PeerAddress, for torrent: Torrent) {
        loop.assertInEventLoop()
        guard !stopped else { return }
        // uTP carries no MSE yet: with encryption required, TCP only.
        guard let utp, configuration.encryption != .require, let target = try? SocketAddress(ipAddress: address.host, port: Int(address.port)) else {
            connectTCP(address, for: torrent)
            return
        }
        utp.dial(target) { [self] result in
            switch result {
            case .success(let transport):
                guard !stopped, !torrent.isStopped else {
                    transport.close()
                    torrent.connectFailed(address)
                    return
                }
                let connection = PeerConnection(id: makeID(), transport: transport, incoming: false, address: address)
                connection.torrent = torrent
                transport.connection = connection
                channelActive(connection)
                connection.flush()
            case .failure(let error):
                logger.debug("uTP dial failed, trying TCP", metadata: ["peer": "\(address)", "error": "\(error)"])
                guard !stopped else { return }
                connectTCP(address, for: torrent)
            }
        }
    }

    /// A uTP connection a peer opened (its first DATA arrived); false if refused.
    func acceptUTP(_ transport: UTPTransport) -> Bool {
        guard !stopped, configuration.encryption != .require, connections.count < configuration.maxConnections
        else { return false }
        let remote = transport.remoteAddress
        let host = Engine.unmapped(remote?.ipAddress ?? "?")
        if configuration.blocklist.isBlocked(host) { return false }
        let connection = PeerConnection(id: makeID(), transport: transport, incoming: true,
                                        address: PeerAddress(host: host, port: UInt16(remote?.port ?? 0)))
        transport.connection = connection
        channelActive(connection)
        return true
    }
}
