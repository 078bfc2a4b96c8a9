import BitTorrent
import Crypto
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Messages from peers: events of their sessions turned into picker, request, upload and metadata work.
extension Torrent {
    func messageReceived(_ peer: PeerConnection, _ message: PeerMessage) {
        // Taken out, so its tables are mutated in place rather than copied (copy-on-write).
        guard var session = peer.session.take() else { return }
        let now = Engine.now()
        let events = session.received(message, now: now)
        peer.session = session
        handle(events, from: peer, now: now)
    }

    /// A PIECE message, its block still in the socket buffer.
    func blockArrived(_ peer: PeerConnection, piece: Int, begin: Int, bytes: UnsafeRawBufferPointer) {
        guard var session = peer.session.take() else { return }
        let now = Engine.now()
        let verdict = session.receivedBlock(piece: piece, begin: begin, length: bytes.count, now: now)
        peer.session = session
        switch verdict {
        case .accept(let range, let requestedAt):
            blockReceived(range, bytes, from: peer, now: now)
            _ = peer.requestDepth.blockArrived(rate: peer.downloadMeter.rate(now: now), roundTrip: now - requestedAt,
                                               now: now, peerLimit: session.remoteExtensions?.requestQueueDepth)
            fillRequests(peer, now: now)
        case .drop:
            break
        case .violation(let events):
            handle(events, from: peer, now: now)
        }
    }

    func handle(_ events: [PeerEvent], from peer: PeerConnection, now: Int64) {
        var needRequests = false
        for event in events {
            switch event {
            case .bitfield(let bits):
                picker?.peerAdded(bits)
                updateInterest(peer)
                needRequests = true
            case .have(let piece):
                picker?.peerHas(piece)
                updateInterest(peer)
                needRequests = true
            case .block(let range, let data):
                data.withUnsafeBytes { blockReceived(range, $0, from: peer, now: now) }
                needRequests = true
            case .requestsDropped(let blocks):
                for block in blocks { picker?.requestDropped(block) }
                needRequests = true
            case .uploadRequested(let block):
                upload(block, to: peer)
            case .unchoked:
                needRequests = true
            case .choked:
                break
            case .interestChanged(let interested):
                if interested { offerFreeSlot(to: peer) }
            case .extensionHandshake(let handshake):
                peer.client = handshake.client
                if let ip = handshake.yourIP { engine.dht?.externalAddressReported(ip, by: peer.address.host) }
                if peer.incoming, let port = handshake.listenPort {
                    peer.listenAddress = PeerAddress(host: peer.address.host, port: port)
                }
                if metainfo == nil, let size = handshake.metadataSize, peer.session?.remoteID("ut_metadata") != nil {
                    if metadata.sizeAnnounced(size) { requestMetadata(from: peer, now: now) }
                }
            case .metadata(let message):
                metadataMessage(message, from: peer, now: now)
            case .pex(let message):
                guard !isPrivate else { break }
                addCandidates(message.added.map { PeerAddress(host: $0.host, port: $0.port) }, source: .pex)
            case .suggest:
                break
            case .send(let message):
                peer.send(message)
            case .disconnect(let reason):
                peer.close(reason)
                return
            }
        }
        if needRequests { fillRequests(peer, now: now) }
    }

    func updateInterest(_ peer: PeerConnection) {
        guard var session = peer.session, let picker, let bits = session.peerHas else { return }
        let interested = picker.isInteresting(bits)
        for message in session.setInterested(interested) { peer.send(message) }
        peer.session = session
    }
}
