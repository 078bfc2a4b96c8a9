import BitTorrent
import NIOCore

/// uTP in the engine: the service on the UDP port, accepted uTP connections, and the
/// outgoing strategy.
///
/// Outgoing: uTP and TCP raced, uTP with a head start (`DialRace`). A SYN goes out at
/// once; TCP is dialed `DialRace.tcpHeadStart` (25 ms) later, or at once if uTP is
/// refused; the first transport to connect carries the connection and the other is
/// abandoned. A peer that speaks both and answers uTP within the head start is connected
/// over uTP; a TCP-only peer costs 25 ms more than a TCP-only dial; a uTP-only peer is
/// connected over uTP. With `utp` off (the way to prefer TCP), TCP only and uTP SYNs
/// unanswered.
extension Engine {
    func startUTP(on port: UDPPort) {
        guard configuration.utp else { return }
        utp = UTPService(engine: self, port: port, accepting: true)
    }

    /// Dials `address` for `torrent`: uTP and TCP raced when uTP is on, else TCP.
    func connect(_ address: PeerAddress, for torrent: Torrent) {
        loop.assertInEventLoop()
        guard !stopped else { return }
        guard let utp, let target = try? SocketAddress(ipAddress: address.host, port: Int(address.port)) else {
            connectTCP(address, for: torrent)
            return
        }
        let race = DialRace()
        let key = utp.dial(target) { [self] result in
            switch result {
            case .success(let transport):
                guard race.claim(.utp) else {
                    transport.close()
                    return
                }
                let encrypted = encryption.encryptFirst(address, policy: configuration.encryption)
                startOutgoing(transport, to: address, for: torrent, encrypted: encrypted, retry: false)
            case .failure(let error):
                logger.debug("uTP dial failed", metadata: ["peer": "\(address)", "error": "\(error)"])
                if race.fail(.utp) {
                    torrent.connectFailed(address)
                } else if race.startTCP() {
                    connectTCP(address, for: torrent, racing: race)
                }
            }
        }
        if let key { race.cancelUTP = { utp.cancelDial(key) } }
        loop.scheduleTask(in: DialRace.tcpHeadStart) { [self] in
            guard !stopped, race.startTCP() else { return }
            connectTCP(address, for: torrent, racing: race)
        }
    }

    /// Dials `address` over uTP only (a redial after a failed encrypted handshake on uTP).
    func connectUTP(_ address: PeerAddress, for torrent: Torrent, encrypted: Bool) {
        guard let utp, let target = try? SocketAddress(ipAddress: address.host, port: Int(address.port)) else {
            torrent.connectFailed(address)
            return
        }
        utp.dial(target) { [self] result in
            switch result {
            case .success(let transport):
                startOutgoing(transport, to: address, for: torrent, encrypted: encrypted, retry: true)
            case .failure:
                encryption.dialFailed(address)
                torrent.connectFailed(address)
            }
        }
    }

    /// A dialed uTP connection is up: the peer connection on it, encrypted when asked
    /// (`retry`: it follows a failed encrypted attempt).
    private func startOutgoing(_ transport: UTPTransport, to address: PeerAddress, for torrent: Torrent,
                               encrypted: Bool, retry: Bool) {
        guard !stopped, !torrent.isStopped else {
            transport.close()
            torrent.connectFailed(address)
            return
        }
        let connection = PeerConnection(id: makeID(), transport: transport, incoming: false, address: address)
        connection.torrent = torrent
        transport.connection = connection
        encryption.dialing(connection.id, address, encrypted: encrypted, retry: retry)
        if encrypted { transport.encrypt(initiatorFor: torrent.infoHash, policy: configuration.encryption) }
        channelActive(connection)
        connection.flush()
    }

    /// The TCP side of a raced dial: the peer pipeline is built only if TCP connects first.
    private func connectTCP(_ address: PeerAddress, for torrent: Torrent, racing race: DialRace) {
        dialer.dial(address) { [self] channel in
            race.tcpChannel = channel
            let gate = DialGate(race: race, setUp: { [self] channel in
                let encrypted = encryption.encryptFirst(address, policy: configuration.encryption)
                try setUpOutgoing(channel, to: address, for: torrent, encrypted: encrypted, retry: false)
            }, setUpFailed: { _ in torrent.connectFailed(address) })
            try channel.pipeline.syncOperations.addHandler(gate)
        }
        .whenComplete { [self] result in
            guard case .failure(let error) = result else { return }
            logger.debug("connect failed", metadata: ["peer": "\(address)", "error": "\(error)"])
            if race.fail(.tcp) { torrent.connectFailed(address) }
        }
    }

    /// A uTP connection a peer opened (its first DATA arrived); false if refused.
    func acceptUTP(_ transport: UTPTransport) -> Bool {
        guard !stopped, connections.count < configuration.maxConnections else { return false }
        let remote = transport.remoteAddress
        let host = Engine.unmapped(remote?.ipAddress ?? "?")
        if configuration.blocklist.isBlocked(host) { return false }
        let connection = PeerConnection(id: makeID(), transport: transport, incoming: true,
                                        address: PeerAddress(host: host, port: UInt16(remote?.port ?? 0)))
        transport.connection = connection
        transport.detectEncryption(policy: configuration.encryption) { [weak self] in self?.torrent(forMSEKey: $0) }
        channelActive(connection)
        return true
    }
}
