import BitTorrent
import NIOCore

/// Message stream encryption in the engine: the handler under each TCP connection's
/// pipeline (uTP connections carry the same `MSEStream` in their transport), the redial
/// after a failed encrypted attempt (over the transport that failed), and the outgoing strategy of `EncryptionMemory` (prefer: encrypted first,
/// plaintext at once on failure, remembered per address; require: encrypted only, one
/// retry with a fresh key).
extension Engine {
    /// Puts the MSE handler at the bottom of an accepted connection's pipeline: it tells a
    /// plaintext handshake from an encrypted one and applies the policy.
    func addIncomingEncryption(to channel: Channel) throws {
        let handler = MSEHandler(incoming: configuration.encryption) { [weak self] in self?.torrent(forMSEKey: $0) }
        try channel.pipeline.syncOperations.addHandler(handler)
    }

    /// The running torrent whose HASH('req2', info hash) is `key` (an incoming MSE handshake's).
    func torrent(forMSEKey key: Digest20) -> InfoHash? {
        torrents.first { !$0.value.isStopped && MSEHandshake.torrentKey($0.key) == key }?.key
    }

    /// Builds a dialed TCP connection's pipeline: an MSE initiator at the bottom when
    /// `encrypted`, then the peer wire; `retry`: this dial follows a failed encrypted one.
    func setUpOutgoing(_ channel: Channel, to address: PeerAddress, for torrent: Torrent, encrypted: Bool,
                       retry: Bool) throws {
        let connection = PeerConnection(id: makeID(), transport: ChannelTransport(channel), incoming: false,
                                        address: address)
        connection.torrent = torrent
        encryption.dialing(connection.id, address, encrypted: encrypted, retry: retry)
        if encrypted {
            try channel.pipeline.syncOperations.addHandler(
                MSEHandler(initiatorFor: torrent.infoHash, policy: configuration.encryption))
        }
        try PeerChannelHandler.install(on: channel, engine: self, connection: connection)
    }

    func encryptionFailed(_ connection: PeerConnection, _ failure: MSEFailure) {
        encryption.failed(connection.id, failure)
        logger.debug("MSE handshake failed", metadata: ["peer": "\(connection.address)", "error": "\(failure)"])
        connection.close(.connectionFailed("\(failure)"))
    }

    /// After an outgoing connection closed: dials again at once when its encrypted
    /// handshake failed and the policy says so; true if it did.
    func redialAfterEncryptionFailure(_ connection: PeerConnection) -> Bool {
        guard !connection.incoming, let encrypted = encryption.closed(connection.id, policy: configuration.encryption),
              let torrent = connection.torrent, !stopped, !torrent.isStopped
        else { return false }
        let address = connection.address
        logger.debug("redialing", metadata: ["peer": "\(address)", "encrypted": "\(encrypted)"])
        if connection.transport is UTPTransport {
            connectUTP(address, for: torrent, encrypted: encrypted)
            return true
        }
        dialer.dial(address) { [self] channel in
            try setUpOutgoing(channel, to: address, for: torrent, encrypted: encrypted, retry: true)
        }
        .whenComplete { [self] result in
            if case .failure = result {
                encryption.dialFailed(address)
                torrent.connectFailed(address)
            }
        }
        return true
    }
}
