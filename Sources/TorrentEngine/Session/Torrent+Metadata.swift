import BitTorrent
import Crypto
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Metadata (BEP 9): fetching it for a magnet, serving it to others.
extension Torrent {
    // MARK: Metadata (BEP 9)

    func requestMetadata(from peer: PeerConnection, now: Int64) {
        guard metainfo == nil, let id = peer.session?.remoteID("ut_metadata") else { return }
        if metadataOneSource {
            if metadataSource == nil {
                // Everyone had a turn: start another round.
                if peers.values.allSatisfy({ metadataTried.contains($0.id) || $0.session?.remoteID("ut_metadata") == nil }) {
                    metadataTried = []
                }
                guard !metadataTried.contains(peer.id) else { return }
                metadataSource = peer.id
                metadataTried.insert(peer.id)
                metadata.discardPieces()
            }
            guard metadataSource == peer.id else { return }
        }
        while peer.metadataRequests < 4, let piece = metadata.nextRequest(now: now) {
            peer.metadataRequests += 1
            peer.send(.extended(id: id, payload: MetadataMessage.request(piece: piece).payload))
        }
        peer.flush()
    }

    func metadataMessage(_ message: MetadataMessage, from peer: PeerConnection, now: Int64) {
        guard let id = peer.session?.remoteID("ut_metadata") else { return }
        switch message {
        case .request(let piece):
            guard let metainfo, piece * MetadataMessage.pieceSize < metainfo.infoBytes.count else {
                peer.send(.extended(id: id, payload: MetadataMessage.reject(piece: piece).payload))
                return
            }
            let start = piece * MetadataMessage.pieceSize
            let end = min(start + MetadataMessage.pieceSize, metainfo.infoBytes.count)
            peer.send(.extended(id: id, payload: MetadataMessage.data(piece: piece, totalSize: metainfo.infoBytes.count,
                                                                       data: Array(metainfo.infoBytes[start..<end])).payload))
        case .reject(let piece):
            peer.metadataRequests = max(0, peer.metadataRequests - 1)
            metadata.rejected(piece: piece)
            // A single source that will not serve every piece hands its turn on.
            if metadataSource == peer.id { metadataSource = nil }
        case .data(let piece, let totalSize, let data):
            // Only answers to our requests count, and only from the single source once one is chosen.
            guard metainfo == nil, peer.metadataRequests > 0 else { return }
            peer.metadataRequests -= 1
            if metadataOneSource && metadataSource != peer.id { return }
            switch metadata.received(piece: piece, totalSize: totalSize, data: data, from: peer.id) {
            case .incomplete:
                requestMetadata(from: peer, now: now)
            case .invalid:
                peer.close(.protocolViolation("bad ut_metadata piece"))
            case .hashMismatch(let senders):
                logger.warning("metadata does not match the info hash", metadata: ["peers": "\(senders.count)"])
                if senders.count == 1, let liar = peers[senders[0]] {
                    ban(liar, reason: .wrongMetadata)
                } else {
                    metadataOneSource = true
                }
                metadataSource = nil
            case .complete(let metainfo):
                for liar in metadata.liars(in: metainfo.infoBytes) { if let peer = peers[liar] { ban(peer, reason: .wrongMetadata) } }
                metadataArrived(metainfo)
            }
        }
    }

    /// The .torrent of a torrent added by magnet and still without metadata: used as if
    /// fetched from peers, its trackers merged with the magnet's.
    func metadataProvided(_ provided: Metainfo) {
        guard metainfo == nil, provided.infoHash == infoHash, !isStopped else { return }
        metadataArrived(provided)
        addTrackers(provided.trackerTiers)
    }

    func metadataArrived(_ fetched: Metainfo) {
        var metainfo = fetched
        if metainfo.info.isPrivate { peerList.becamePrivate() }
        metainfo.announceList = trackerTiers
        metainfo.webSeeds = magnet?.webSeeds ?? []
        self.metainfo = metainfo
        logger.info("metadata received", metadata: ["size": "\(metainfo.infoBytes.count)"])
        let waiters = metadataWaiters
        metadataWaiters = []
        waiters.forEach { $0.succeed(metainfo) }
        for observer in engine.observers.values { observer.metadataReceived(infoHash, metainfo: metainfo) }
        for peer in peers.values {
            guard var session = peer.session else { continue }
            let events = session.metadataKnown(metainfo.info.lengths)
            peer.session = session
            // Availability is counted by `checked` once the picker exists.
            for event in events { if case .disconnect(let reason) = event { peer.close(reason) } }
        }
        start()
    }
}
