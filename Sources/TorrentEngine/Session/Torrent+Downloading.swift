import BitTorrent
import Crypto
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Requests, blocks, piece assembly and verification, storage failures, smart ban and bans.
extension Torrent {
    // MARK: Downloading

    /// Tops up a source's requests to its queue depth (for a peer: `RequestDepth`, slow
    /// start, then ~3 s of its rate), from the picker.
    func fillRequests(_ source: BlockSource, now: Int64) {
        guard picker != nil, error == nil, storageError == nil, !isStopped,
              let available = source.requestablePieces else { return }
        let depth = source.queueDepth(now: now)
        let outstanding = source.outstandingBlocks
        // Top up as the queue drains, in batches of at least an eighth of it, so a fast
        // source never waits for requests and picking cost is spread over several blocks.
        guard outstanding.count < depth, depth - outstanding.count >= max(1, depth / 8) else { return }
        var wanted = depth - outstanding.count
        wanted = downloadBucket.takeUnits(of: Lengths.blockSize, upTo: wanted, now: now)
        wanted = engine.downloadBucket.takeUnits(of: Lengths.blockSize, upTo: wanted, now: now)
        guard wanted > 0 else { return }
        let fast = source.downloadRate(now: now) >= averagePeerRate(now: now)
        // Mutated in place (no copy-on-write of the picker's tables).
        let blocks = picker!.pick(count: wanted, peerHas: available, alreadyRequested: Set(outstanding.keys),
                                  fast: fast, now: now, runs: source.prefersRuns)
        source.request(blocks, now: now)
    }

    func averagePeerRate(now: Int64) -> Double {
        guard !peers.isEmpty else { return 0 }
        return peers.values.reduce(0) { $0 + $1.downloadMeter.rate(now: now) } / Double(peers.count)
    }

    func blockReceived(_ range: BlockRange, _ data: UnsafeRawBufferPointer, from peer: PeerConnection,
                               now: Int64) {
        peer.downloadMeter.add(data.count, now: now)
        peer.lastBlockAt = now
        blockReceived(range, data, sender: BlockSender(connection: peer.id, address: peer.address, peerID: peer.remotePeerID),
                      now: now)
    }

    /// A block from any source (a peer, a web seed) into its piece's assembly.
    func blockReceived(_ range: BlockRange, _ data: UnsafeRawBufferPointer, sender: BlockSender, now: Int64) {
        guard picker != nil, let metainfo else { return }
        downloadMeter.add(data.count, now: now)
        let outcome = picker!.blockReceived(range)
        guard outcome != .unexpected else { return }
        let piece = range.piece.value
        let complete = assembly.add(range, data, from: sender, lengths: metainfo.info.lengths,
                                    complete: outcome == .pieceComplete)
        // Endgame duplicates of this block elsewhere are no longer needed.
        for other in peers.values where other.id != sender.connection {
            if var session = other.session, session.cancelled(range) {
                other.session = session
                other.send(.cancel(piece: piece, begin: range.begin, length: range.length))
            }
        }
        if let complete { verify(range.piece, complete) }
    }

    func verify(_ piece: PieceIndex, _ buffer: PieceAssembly.Attempt) {
        guard let metainfo, storage != nil else { return }
        let expected = metainfo.info.hash(of: piece)
        let offset = metainfo.info.lengths.pieceOffset(piece)
        let bytes = buffer.bytes
        // Room is made in a bounded cache before the piece is written, not after: the
        // write waits for the releases under way.
        pendingWrites += Int64(bytes.count)
        engine.enforceCacheLimit()
        engine.afterReleases { [self] in verifyAndWrite(piece, buffer, expected: expected, offset: offset) }
    }

    private func verifyAndWrite(_ piece: PieceIndex, _ buffer: PieceAssembly.Attempt, expected: Digest20, offset: Int64) {
        let bytes = buffer.bytes
        guard let storage else { return }
        engine.onDisk { () -> Bool in
            guard PieceHasher.digest(bytes) == expected else { return false }
            try storage.write(bytes, at: offset)
            return true
        }.whenComplete { [self] result in
            pendingWrites -= Int64(bytes.count)
            switch result {
            case .success(true):
                pieceVerified(piece, size: bytes.count)
                // An earlier failed attempt, compared block by block, names whoever lied.
                for liar in assembly.passed(piece.value, good: bytes) { ban(liar, reason: .badData) }
            case .success(false): pieceFailed(piece, buffer)
            case .failure(let error):
                storageFailed(piece, bytes, error: "\(error)")
            }
        }
    }

    // MARK: Storage failures

    /// A verified piece could not be written (disk full, I/O error): it is kept in memory
    /// and the torrent pauses (no new requests) until a retry writes it.
    func storageFailed(_ piece: PieceIndex, _ bytes: [UInt8], error: String) {
        if options.stopOnStorageError {
            if self.error == nil { fail("cannot store data: \(error)") }
            return
        }
        // A bounded cache gives space back (twice the piece) and the piece is written again
        // once that is released; the torrent pauses only when nothing more can be evicted.
        if storageError == nil, engine.makeRoom(2 * Int64(bytes.count)) {
            let offset = metainfo?.info.lengths.pieceOffset(piece) ?? 0
            engine.afterReleases { [self] in rewrite(piece, bytes, at: offset) }
            return
        }
        unwritten[piece.value] = bytes
        if storageError == nil {
            storageError = "cannot store data, paused until it can: \(error)"
            lastWriteRetry = Engine.now()
            writeRetryDelay = Torrent.writeRetryInterval
            logger.error("storage failed; torrent paused", metadata: ["error": "\(error)"])
            if let info = metainfo?.info { engine.reads.paused(infoHash, info: info, reason: storageError) }
        }
        state = .paused
    }

    /// Writes a verified piece again after a bounded cache made room for it.
    private func rewrite(_ piece: PieceIndex, _ bytes: [UInt8], at offset: Int64) {
        guard let storage, !isStopped else { return }
        pendingWrites += Int64(bytes.count)
        engine.onDisk { try storage.write(bytes, at: offset) }.whenComplete { [self] result in
            pendingWrites -= Int64(bytes.count)
            switch result {
            case .success: pieceVerified(piece, size: bytes.count)
            case .failure(let error): storageFailed(piece, bytes, error: "\(error)")
            }
        }
    }

    /// While paused, with backoff (1 s doubling up to 30 s): write the kept pieces again;
    /// once all are written, downloading resumes.
    func retryWrites(now: Int64) {
        guard storageError != nil, !retryingWrites, now - lastWriteRetry >= writeRetryDelay,
              let storage, let lengths = metainfo?.info.lengths else { return }
        lastWriteRetry = now
        writeRetryDelay = min(Torrent.maxWriteRetryInterval, writeRetryDelay * 2)
        retryingWrites = true
        let pending = unwritten
        engine.onDisk { () -> [Int] in
            var written: [Int] = []
            for (piece, bytes) in pending.sorted(by: { $0.key < $1.key }) {
                guard (try? storage.write(bytes, at: lengths.pieceOffset(lengths.piece(piece)!))) != nil else { break }
                written.append(piece)
            }
            return written
        }.whenComplete { [self] result in
            retryingWrites = false
            guard case .success(let written) = result, !isStopped else { return }
            if unwritten.count == written.count {
                storageError = nil
                logger.info("storage works again; torrent resumed")
                if let info = metainfo?.info { engine.reads.paused(infoHash, info: info, reason: nil) }
            }
            for piece in written {
                guard let bytes = unwritten.removeValue(forKey: piece) else { continue }
                pieceVerified(lengths.piece(piece)!, size: bytes.count)
            }
            updateState()
            let now = Engine.now()
            for peer in peers.values where peer.session != nil { fillRequests(peer, now: now) }
        }
    }

    func pieceVerified(_ piece: PieceIndex, size: Int) {
        guard !isStopped else { return }
        picker?.pieceVerified(piece)
        verifiedBytes += Int64(size)
        resumeDirty = true
        engine.reads.pieceVerified(infoHash, piece: piece.value)
        for observer in engine.observers.values { observer.pieceVerified(infoHash, piece: piece.value) }
        for peer in peers.values where peer.session != nil {
            peer.send(.have(piece: piece.value))
            updateInterest(peer)
            peer.flush()
        }
        updateState()
        if state == .seeding {
            logger.info("complete")
            saveResume()
            // Seeds close connections to other seeds: neither side wants anything.
            for peer in peers.values where peer.session?.peerHas?.isComplete == true { peer.close(.notUseful) }
        }
    }

    /// Verified pieces whose stored bytes no longer match their hash (read back by a
    /// streaming read): missing again, fetched again.
    func piecesLost(_ pieces: [Int]) {
        guard !isStopped, let lengths = metainfo?.info.lengths else { return }
        for piece in pieces {
            guard let index = lengths.piece(piece), picker?.have[piece] == true else { continue }
            picker?.pieceLost(index)
            verifiedBytes -= Int64(lengths.pieceSize(index))
            resumeDirty = true
        }
        logger.error("stored pieces lost; fetching them again", metadata: ["pieces": "\(pieces)"])
        updateState()
        let now = Engine.now()
        for peer in peers.values where peer.session != nil {
            updateInterest(peer)
            fillRequests(peer, now: now)
        }
        connectMore(now: now)
    }

    func pieceFailed(_ piece: PieceIndex, _ attempt: PieceAssembly.Attempt) {
        hashFailures += 1
        picker?.pieceFailed(piece)
        logger.warning("hash check failed", metadata: ["piece": "\(piece.value)", "peers": "\(attempt.distinctSenders.count)"])
        // It alone sent the piece: it sent bad data. Several senders: smart ban decides later.
        if let liar = assembly.failed(piece.value, attempt) { ban(liar, reason: .badData) }
    }

    func ban(_ sender: BlockSender, reason: BanReason) {
        if let seed = webSeeds[sender.connection] {
            webSeedSentBadData(seed)
        } else if let peer = peers[sender.connection] {
            ban(peer, reason: reason)
        } else {
            ban(sender.address, peerID: sender.peerID, reason: reason)
        }
    }

    func ban(_ peer: PeerConnection, reason: BanReason) {
        ban(peer.reachableAddress ?? peer.address, peerID: peer.remotePeerID, reason: reason)
        peer.close(.banned)
        // Its blocks in unfinished pieces are not trusted: those pieces start over.
        for piece in assembly.dropPieces(from: peer.id) {
            if let index = metainfo?.info.lengths.piece(piece) { picker?.pieceFailed(index) }
        }
    }

    func ban(_ address: PeerAddress, peerID: PeerID?, reason: BanReason) {
        guard !peerList.isBanned(address) else { return }
        peerList.ban(address, peerID: peerID, reason: reason)
        logger.warning("banned peer", metadata: ["peer": "\(address)", "reason": "\(reason.rawValue)"])
    }
}
