import BitTorrent
import Crypto
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Uploading: serving requests, the one place that decides who is unchoked, and PEX.
extension Torrent {
    // MARK: Uploading

    /// Uploaded at least `seedRatio` times the verified data: seeding stops (nobody is
    /// unchoked, allowed-fast requests are refused).
    var ratioReached: Bool {
        guard let ratio = options.seedRatio else { return false }
        return Double(uploadMeter.total) >= ratio * Double(max(verifiedBytes, 1))
    }

    func upload(_ block: BlockRange, to peer: PeerConnection) {
        guard let picker, picker.have[block.piece.value], let storage, let metainfo, !ratioReached else {
            if var session = peer.session, session.fast {
                _ = session.served(block)
                peer.session = session
                peer.send(.reject(piece: block.piece.value, begin: block.begin, length: block.length))
            }
            return
        }
        let now = Engine.now()
        guard uploadBucket.take(block.length, now: now) else {
            peer.throttledUploads.append(block)
            return
        }
        guard engine.uploadBucket.take(block.length, now: now) else {
            peer.throttledUploads.append(block)
            return
        }
        let offset = metainfo.info.lengths.pieceOffset(block.piece) + Int64(block.begin)
        let piece = block.piece.value
        uploading[piece, default: 0] += 1
        engine.onDisk { try storage.read(at: offset, length: block.length) }.whenComplete { [self] result in
            let left = (uploading[piece] ?? 1) - 1
            uploading[piece] = left > 0 ? left : nil
            guard case .success(let bytes) = result, peer.session?.served(block) == true else { return }
            peer.send(.piece(piece: block.piece.value, begin: block.begin, block: bytes))
            peer.flush()
            let now = Engine.now()
            peer.uploadMeter.add(bytes.count, now: now)
            uploadMeter.add(bytes.count, now: now)
        }
    }

    /// A peer became interested: a free upload slot is given at once instead of at the
    /// next choking round (the same rule as `rechoke`: slots, a picker, the ratio).
    func offerFreeSlot(to peer: PeerConnection) {
        guard picker != nil, !ratioReached, var session = peer.session, session.amChoking,
              peers.values.filter({ $0.session?.amChoking == false }).count < choker.slots else { return }
        for message in session.setChoking(false) { peer.send(message) }
        peer.session = session
    }

    /// Every choking round: tit-for-tat by rate (download rate while leeching, upload rate
    /// while seeding), nobody once the seed ratio is reached.
    func rechoke(now: Int64) {
        let seeding = state == .seeding
        let candidates = peers.values.compactMap { peer -> Choker.Candidate? in
            guard let session = peer.session else { return nil }
            let rate = seeding ? peer.uploadMeter.rate(now: now) : peer.downloadMeter.rate(now: now)
            return Choker.Candidate(key: peer.id, interested: session.peerInterested, rate: rate)
        }
        let unchoke = picker == nil || ratioReached ? [] : choker.choose(candidates)
        for peer in peers.values {
            guard var session = peer.session else { continue }
            for message in session.setChoking(!unchoke.contains(peer.id)) { peer.send(message) }
            peer.session = session
            peer.flush()
        }
    }

    func sendPEX(now: Int64) {
        let addresses = peers.values.compactMap { $0.reachableAddress }
        for peer in peers.values {
            guard let id = peer.session?.remoteID("ut_pex") else { continue }
            if let last = lastPEXSent[peer.id], now - last < Torrent.pexInterval { continue }
            if lastPEXSent[peer.id] == nil {
                // First message a few seconds after connecting, once the swarm view settles.
                lastPEXSent[peer.id] = now - Torrent.pexInterval + 5_000_000_000
                continue
            }
            lastPEXSent[peer.id] = now
            let added = addresses.filter { $0 != peer.reachableAddress }.prefix(PEXMessage.maxAddedPeers).compactMap {
                address -> CompactPeer? in
                guard let bytes = IPAddress.parse(address.host) else { return nil }
                return CompactPeer(address: bytes, port: address.port)
            }
            peer.send(.extended(id: id, payload: PEXMessage(added: Array(added), dropped: []).payload))
            peer.flush()
        }
    }
}
