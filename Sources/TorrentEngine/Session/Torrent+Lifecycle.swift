import BitTorrent
import Crypto
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The periodic tick, resume data, stopping, and the status snapshot.
extension Torrent {
    // MARK: Timer

    func tick(now: Int64) {
        guard !isStopped else { return }
        for peer in Array(peers.values) {
            guard var session = peer.session else { continue }
            let events = session.tick(now: now)
            peer.session = session
            if !events.isEmpty { handle(events, from: peer, now: now) }
            if !peer.throttledUploads.isEmpty {
                let waiting = peer.throttledUploads
                peer.throttledUploads = []
                for block in waiting { upload(block, to: peer) }
            }
            fillRequests(peer, now: now)
            if metainfo == nil, peer.metadataRequests == 0 {
                // After a failed assembly the size is forgotten: take it again from any peer.
                if metadata.totalSize == nil, peer.session?.remoteID("ut_metadata") != nil,
                   let size = peer.session?.remoteExtensions?.metadataSize {
                    _ = metadata.sizeAnnounced(size)
                }
                if metadata.totalSize == nil || metadata.totalSize == peer.session?.remoteExtensions?.metadataSize {
                    requestMetadata(from: peer, now: now)
                }
            }
            peer.flush()
        }
        fillWebSeeds(now: now)
        if now - lastChoke >= Torrent.chokeInterval || lastChoke == 0 {
            lastChoke = now
            rechoke(now: now)
        }
        if !isPrivate { sendPEX(now: now) }
        announcer?.tick(now: now)
        retryWrites(now: now)
        connectMore(now: now)
        if resumeDirty && now - lastResumeSave >= Torrent.resumeInterval { saveResume() }
    }

    // MARK: Resume data

    func saveResume() {
        guard !isStopped, let write = resumeWriter() else { return }
        resumeDirty = false
        lastResumeSave = Engine.now()
        _ = engine.onDisk(write)
    }

    /// The disk work that saves resume data now: data files synced first, so the verified
    /// bitfield never runs ahead of what is on disk. `syncData: false` only where the
    /// bitfield lost pieces since the last write and gained none (eviction): it cannot run
    /// ahead of the data then, and the write must not wait for every dirty page.
    func resumeWriter(closing: Bool = false, syncData: Bool = true) -> (@Sendable () throws -> Void)? {
        // Without the data sync, the resume file's own fsyncs are skipped too (see
        // `ResumeData.writeAtomically(durable:)`); an ext4 journal keeps its order against
        // the holes punched after it.
        guard let picker, let storage else { return nil }
        let path = resumePath
        let hash = infoHash
        let have = picker.have
        let order = resumeOrder
        let generation = order.next()
        return {
            // Disk threads run writers in any order: an older bitfield never overwrites a
            // newer one (an evicted piece must not come back as verified).
            if syncData { try storage.sync() }
            try order.write(generation) {
                try FileStorage.makeParents(of: path)
                let resume = ResumeData(infoHash: hash, have: have, files: storage.fileStates())
                try ResumeData.writeAtomically(resume.encoded, to: path, durable: syncData)
            }
            if closing { storage.close() }
        }
    }

    // MARK: Stop

    func stop() -> EventLoopFuture<Void> {
        isStopped = true
        announcer?.stop()
        for peer in peers.values { peer.close(.shutdown) }
        for seed in webSeeds.values { seed.drop(nil) }
        let waiters = completionWaiters
        completionWaiters = [:]
        waiters.values.forEach { $0.fail(TorrentFailure(message: "stopped")) }
        metadataWaiters.forEach { $0.fail(TorrentFailure(message: "stopped")) }
        metadataWaiters = []
        guard let write = resumeWriter(closing: true) else { return engine.loop.makeSucceededVoidFuture() }
        return engine.onDisk(write)
    }

    /// Deletes the resume file and every data file of the torrent, with the folders that
    /// held them (once empty). Called after `stop()`.
    func deleteFiles() -> EventLoopFuture<Void> {
        let resumePath = resumePath
        let root = dataDirectory
        let paths: [String] = metainfo.map { metainfo in
            let info = metainfo.info
            let layout = FileStorage(root: root, info: info)
            return info.files.indices.filter { !info.files[$0].isPadding }.map { layout.path(of: $0) }
        } ?? []
        return engine.onDisk {
            unlink(resumePath)
            var folders = Set<String>()
            for path in paths {
                unlink(path)
                var folder = Substring(path)
                while let slash = folder.lastIndex(of: "/") {
                    folder = folder[..<slash]
                    guard folder.count > root.count, folder.hasPrefix(root) else { break }
                    folders.insert(String(folder))
                }
            }
            for folder in folders.sorted(by: { $0.count > $1.count }) { rmdir(folder) }
        }
    }

    // MARK: Stats

    func stats(now: Int64) -> TorrentStats {
        let total = metainfo?.info.totalLength
        // Wanted: selected or waited for by a reader; missing: wanted and not here yet.
        var wanted: Int64 = 0
        var verifiedWanted: Int64 = 0
        var missing: Int64 = 0
        if let picker {
            let lengths = picker.lengths
            for index in lengths.pieces {
                guard picker.priority(of: index) != PiecePicker.skip || picker.deadline(of: index) != nil else { continue }
                let size = Int64(lengths.pieceSize(index))
                wanted += size
                if picker.have[index.value] { verifiedWanted += size } else { missing += size }
            }
        }
        let rate = downloadMeter.rate(now: now)
        let known = picker != nil
        let eta: Double? = !known ? nil : missing == 0 ? 0 : rate > 0 ? Double(missing) / rate : nil
        let peerStats = peers.values.sorted { $0.id < $1.id }.map { peer -> TorrentStats.Peer in
            let bits = peer.session?.peerHas
            let source = peer.incoming ? PeerSource.incoming : peerList.source(of: peer.address)
            return TorrentStats.Peer(address: peer.address.description,
                                     transport: peer.transport is UTPTransport ? "utp" : "tcp",
                                     source: source?.rawValue,
                                     client: peer.client, incoming: peer.incoming,
                                     downloadRate: peer.downloadMeter.rate(now: now),
                                     uploadRate: peer.uploadMeter.rate(now: now),
                                     downloaded: peer.downloadMeter.total, uploaded: peer.uploadMeter.total,
                                     peerChoking: peer.session?.peerChoking ?? true,
                                     amChoking: peer.session?.amChoking ?? true,
                                     progress: bits.map { $0.count > 0 ? Double($0.setCount) / Double($0.count) : 0 } ?? 0)
        }
        let link = magnet ?? metainfo.map { MagnetLink(metainfo: $0) }
        return TorrentStats(name: name, infoHash: infoHash.hex, magnet: link?.uri ?? "magnet:?xt=urn:btih:\(infoHash.hex)",
                            folder: nil, state: state, totalSize: total, verifiedBytes: verifiedBytes,
                            progress: total.map { $0 > 0 ? min(1, Double(verifiedBytes) / Double($0)) : 1 } ?? 0,
                            wantedBytes: wanted, verifiedWantedBytes: verifiedWanted,
                            wantedProgress: wanted > 0 ? Double(verifiedWanted) / Double(wanted) : (known ? 1 : 0),
                            downloaded: downloadMeter.total, uploaded: uploadMeter.total,
                            downloadRate: rate, uploadRate: uploadMeter.rate(now: now), eta: eta,
                            peers: peerStats + webSeedStats(now: now), knownPeers: peerList.count, hashFailures: hashFailures,
                            bannedPeers: peerList.bannedCount,
                            bansByReason: Dictionary(uniqueKeysWithValues: peerList.bansByReason.map { ($0.key.rawValue, $0.value) }),
                            knownPeersBySource: Dictionary(uniqueKeysWithValues: peerList.addressesBySource.map { ($0.key.rawValue, $0.value) }),
                            trackers: trackerStatus, pieceMap: picker?.map(cells: TorrentStats.mapCells) ?? "",
                            error: error ?? storageError)
    }
}
