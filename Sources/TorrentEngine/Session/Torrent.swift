import BitTorrent
import Crypto
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// One torrent's swarm logic. Confined to the engine's event loop.
/// Confined to the engine's event loop; `@unchecked Sendable` only so disk-thread
/// completions can hop back to it.
final class Torrent: @unchecked Sendable {
    /// Below this many outstanding requests a peer is topped up.
    static let minPipeline = 16
    /// Most requests we keep outstanding with one peer.
    static let maxPipeline = 500
    /// Seconds of data at the peer's measured rate to keep requested (libtorrent uses 3 s).
    static let pipelineSeconds = 3.0
    /// Failed pieces kept to find the bad block once the piece passes ("smart ban").
    static let maxRememberedFailures = 64
    /// Seconds between choking rounds.
    static let chokeInterval: Int64 = 10_000_000_000
    /// Seconds between PEX messages to one peer (BEP 11: at most once a minute).
    static let pexInterval: Int64 = 60_000_000_000
    /// A peer that sent no block for this long while we waited on it is snubbed.
    static let snubTimeout: Int64 = 60_000_000_000
    /// Seconds between resume-data saves while downloading.
    static let resumeInterval: Int64 = 30_000_000_000

    let engine: Engine
    let infoHash: InfoHash
    var options: TorrentOptions
    var magnet: MagnetLink?
    var metainfo: Metainfo?
    var picker: PiecePicker?
    var storage: PieceStorage?
    var state: TorrentStats.State
    var error: String?
    var peers: [Int: PeerConnection] = [:]
    /// Every address known, where it came from, backoffs and bans.
    var peerList: PeerList
    var assembling: [Int: PieceBuffer] = [:]
    var metadata: MetadataAssembler
    /// After metadata from several peers failed its hash, it is fetched from one peer at a
    /// time, so the next failure names the liar and honest peers are never blamed.
    var metadataOneSource = false
    var metadataSource: Int?
    /// Peers already given their turn as the single source (a rejecting one loses it).
    var metadataTried = Set<Int>()
    var choker: Choker
    var lastChoke: Int64 = 0
    var lastResumeSave: Int64 = 0
    var resumeDirty = false
    var downloadMeter = RateMeter()
    var uploadMeter = RateMeter()
    var downloadBucket: TokenBucket
    var uploadBucket: TokenBucket
    var hashFailures = 0
    var isStopped = false
    var trackerStatus: [TrackerStatus] = []
    var completionWaiters: [Int: EventLoopPromise<Void>] = [:]
    var metadataWaiters: [EventLoopPromise<Metainfo>] = []
    /// Read deadlines (engine clock) set before the picker existed; applied once it does.
    var pendingDeadlines: [Int: Int64] = [:]
    /// Every wanted piece was verified at the last state update.
    var wasDone = false
    /// Verified pieces not written yet because storage failed, and why.
    var unwritten: [Int: [UInt8]] = [:]
    var storageError: String?
    var lastWriteRetry: Int64 = 0
    var retryingWrites = false
    static let writeRetryInterval: Int64 = 5_000_000_000
    var verifiedBytes: Int64 = 0
    var lastPEXSent: [Int: Int64] = [:]
    var announcer: TrackerAnnouncer?

    /// Who sent a block: enough to ban them after they disconnected.
    struct Sender: Hashable {
        var connection: Int
        var address: PeerAddress
        var peerID: PeerID?
    }

    /// A piece being assembled from blocks, with who sent each block.
    struct PieceBuffer {
        var bytes: [UInt8]
        var senders: [Sender?]

        var distinctSenders: Set<Sender> { Set(senders.compactMap { $0 }) }
    }

    /// Failed attempts at pieces, compared block by block with the data that later passes.
    var failedPieces: [Int: PieceBuffer] = [:]
    var failedOrder: [Int] = []

    init(engine: Engine, source: TorrentSource, options: TorrentOptions) {
        self.engine = engine
        self.options = options
        infoHash = source.infoHash
        metadata = MetadataAssembler(infoHash: source.infoHash)
        if case .metainfo(let metainfo) = source {
            peerList = PeerList(isPrivate: metainfo.info.isPrivate)
        } else {
            peerList = PeerList(isPrivate: false)
        }
        choker = Choker(slots: engine.configuration.unchokeSlots)
        let now = Engine.now()
        downloadBucket = TokenBucket(rate: options.downloadLimit, now: now)
        uploadBucket = TokenBucket(rate: options.uploadLimit, now: now)
        switch source {
        case .metainfo(let metainfo):
            self.metainfo = metainfo
            state = .checking
        case .magnet(let magnet):
            self.magnet = magnet
            state = .fetchingMetadata
        }
        addCandidates(options.peers, source: .manual)
        addCandidates(magnet?.peers ?? [], source: .magnet)
        trackerStatus = trackerTiers.enumerated().flatMap { tier, urls in urls.map { TrackerStatus(url: $0, tier: tier) } }
        if !trackerTiers.isEmpty { announcer = TrackerAnnouncer(torrent: self, tiers: trackerTiers) }
    }

    var name: String { metainfo?.info.name ?? magnet?.displayName ?? infoHash.hex }
    var isPrivate: Bool { metainfo?.info.isPrivate ?? false }
    var trackerTiers: [[String]] {
        if let metainfo, !metainfo.trackerTiers.isEmpty { return metainfo.trackerTiers + extraTrackers }
        return (magnet?.trackers.map { [$0] } ?? []) + extraTrackers
    }
    /// Trackers merged in when the same torrent was added again.
    var extraTrackers: [[String]] = []

    /// Merges trackers from a second add of the same torrent (not for private torrents,
    /// whose trackers come from the torrent alone).
    func addTrackers(_ tiers: [[String]]) {
        guard !isPrivate else { return }
        let known = Set(trackerStatus.map(\.url))
        let fresh = tiers.map { $0.filter { !known.contains($0) } }.filter { !$0.isEmpty }
        guard !fresh.isEmpty else { return }
        let base = (trackerStatus.map(\.tier).max() ?? -1) + 1
        for (offset, urls) in fresh.enumerated() {
            for url in urls { trackerStatus.append(TrackerStatus(url: url, tier: base + offset)) }
        }
        extraTrackers += fresh
        if let announcer {
            announcer.tiers += fresh.map { $0.shuffled() }
            if !announcer.inFlight { announcer.nextAnnounce = 0 }
        } else {
            announcer = TrackerAnnouncer(torrent: self, tiers: fresh)
        }
        // New trackers are asked now, not at the next tick.
        announcer?.tick(now: Engine.now())
    }
    var dataDirectory: String { options.dataDirectory ?? engine.configuration.dataDirectory }
    var resumePath: String { engine.configuration.resolvedStateDirectory + "/\(infoHash.hex).resume" }
    var logger: Logger {
        var logger = engine.logger
        logger[metadataKey: "torrent"] = "\(name)"
        return logger
    }

    // MARK: Start: storage and checking

    /// Opens storage and decides which pieces are verified (resume data, else a recheck).
    func start() {
        guard let metainfo else { return }
        let info = metainfo.info
        let storage = FileStorage(root: dataDirectory, info: info)
        self.storage = storage
        state = .checking
        let resumePath = resumePath
        let force = options.forceRecheck
        let hasher = PieceHasher(info: info)
        engine.onDisk { () -> Bitfield in
            let current = storage.fileStates()
            var trusted = Bitfield(count: info.lengths.pieceCount)
            if !force, let bytes = try? PosixFile.read(resumePath), let resume = ResumeData(encoded: bytes),
               resume.infoHash == metainfo.infoHash {
                trusted = resume.trusted(info: info, current: current)
            }
            // Pieces not vouched for by resume data are hashed where their files exist.
            let visible = info.files.filter { !$0.isPadding }
            var present: [Range<Int64>] = []
            for (index, file) in visible.enumerated() where current[index] != nil && file.length > 0 {
                present.append(file.byteRange)
            }
            var have = trusted
            for piece in info.lengths.pieces where !trusted[piece.value] {
                let range = info.lengths.byteRange(piece)
                guard present.contains(where: { $0.overlaps(range) }) else { continue }
                if let bytes = try? storage.read(at: range.lowerBound, length: range.count),
                   hasher.verify(piece, bytes) {
                    have[piece.value] = true
                }
            }
            return have
        }.whenComplete { [self] result in
            switch result {
            case .success(let have): checked(have)
            case .failure(let error): fail("checking failed: \(error)")
            }
        }
    }

    private func checked(_ have: Bitfield) {
        guard let metainfo, !isStopped else { return }
        var picker = PiecePicker(lengths: metainfo.info.lengths, have: have,
                                 seed: UInt64(truncatingIfNeeded: engine.configuration.peerID.hashValue))
        picker.sequential = options.sequential
        if let selected = options.selectedFiles ?? magnet?.selectedFiles {
            applySelection(selected, to: &picker, info: metainfo.info)
        }
        for peer in peers.values { if let bits = peer.session?.peerHas { picker.peerAdded(bits) } }
        for (piece, deadline) in pendingDeadlines { picker.setDeadline(deadline, for: metainfo.info.lengths.piece(piece)!) }
        pendingDeadlines = [:]
        self.picker = picker
        verifiedBytes = have.setIndices.reduce(0) { $0 + Int64(metainfo.info.lengths.pieceSize(metainfo.info.lengths.piece($1)!)) }
        resumeDirty = true
        saveResume()
        updateState()
        logger.info("checked", metadata: ["have": "\(have.setCount)/\(have.count)"])
        for peer in peers.values where peer.session != nil { announceHaves(to: peer); updateInterest(peer) }
        if let storage { engine.reads.checked(infoHash, lengths: metainfo.info.lengths, storage: storage, have: have) }
        for observer in engine.observers.values { observer.torrentChecked(infoHash, have: have) }
    }

    /// Sets or clears read deadlines (engine clock); pieces already verified are ignored.
    func setDeadlines(_ changes: [(piece: Int, deadline: Int64?)]) {
        guard !isStopped else { return }
        guard var picker else {
            for change in changes { pendingDeadlines[change.piece] = change.deadline }
            return
        }
        for change in changes where change.piece >= 0 && change.piece < picker.lengths.pieceCount {
            picker.setDeadline(change.deadline, for: picker.lengths.piece(change.piece)!)
        }
        self.picker = picker
        updateState()
        let now = Engine.now()
        for peer in peers.values where peer.session != nil {
            updateInterest(peer)
            fillRequests(peer, now: now)
            peer.flush()
        }
        connectMore(now: now)
    }

    /// Pieces that touch no selected file get priority `skip`.
    private func applySelection(_ selected: [ClosedRange<Int>], to picker: inout PiecePicker, info: InfoDictionary) {
        var wanted = Bitfield(count: info.lengths.pieceCount)
        for (index, file) in info.visibleFiles.enumerated() where selected.contains(where: { $0.contains(index) }) {
            guard let range = info.lengths.pieces(covering: file.byteRange) else { continue }
            for piece in range.lowerBound.value...range.upperBound.value { wanted[piece] = true }
        }
        for piece in info.lengths.pieces where !wanted[piece.value] { picker.setPriority(PiecePicker.skip, for: piece) }
    }

    private func updateState() {
        guard let picker, error == nil else { return }
        if storageError != nil {
            state = .paused
            return
        }
        let done = picker.isDone
        let complete = picker.have.isComplete
        // "idle": every wanted piece is here but not all of them (files not selected, or a
        // filesystem torrent nobody is reading).
        state = complete ? .seeding : done ? .idle : .downloading
        let finished = done && !wasDone
        wasDone = done
        if finished {
            if complete && downloadMeter.total > 0 { announcer?.completed() }
            let waiters = completionWaiters
            completionWaiters = [:]
            waiters.values.forEach { $0.succeed() }
        }
    }

    func fail(_ message: String) {
        error = message
        state = .error
        logger.error("torrent error", metadata: ["error": "\(message)"])
        let waiters = completionWaiters
        completionWaiters = [:]
        waiters.values.forEach { $0.fail(TorrentFailure(message: message)) }
    }

    // MARK: Peers

    /// Adds addresses to the peer list and dials at once what the limits allow: peers
    /// from any source are dialed the moment they arrive, not at the next tick.
    func addCandidates(_ addresses: [PeerAddress], source: PeerSource) {
        var added = false
        for address in addresses where !engine.configuration.blocklist.isBlocked(address.host) {
            if peerList.add(address, source: source) { added = true }
        }
        if added { connectMore(now: Engine.now()) }
    }

    func connectFailed(_ address: PeerAddress) {
        peerList.failed(address, now: Engine.now())
    }

    func connectMore(now: Int64) {
        guard !isStopped, error == nil else { return }
        if state == .seeding { return }  // seeds wait for leechers to call
        let limit = engine.configuration.maxConnectionsPerTorrent
        let budget = min(limit - peers.count - peerList.dialingCount, 8,
                         engine.configuration.maxConnections - engine.connections.count)
        let connected = Set(peers.values.compactMap { $0.reachableAddress })
        for address in peerList.takeForDialing(limit: budget, now: now, connected: connected) {
            engine.connect(address, for: self)
        }
    }

    func peerHandshaken(_ peer: PeerConnection, _ handshake: Handshake) {
        if !peer.incoming { peerList.connected(peer.address) }
        if let id = peer.remotePeerID, peerList.isBanned(id) {
            peer.close(.banned)
            return
        }
        if peers.count >= engine.configuration.maxConnectionsPerTorrent {
            peer.close(.notUseful)
            return
        }
        if let id = peer.remotePeerID, peers.values.contains(where: { $0.remotePeerID == id }) {
            peer.close(.duplicate)
            return
        }
        let now = Engine.now()
        peer.session = PeerSession(fast: handshake.supportsFast, extensions: handshake.supportsExtensions,
                                   lengths: metainfo?.info.lengths, now: now)
        peers[peer.id] = peer
        if handshake.supportsExtensions {
            var extended = ExtensionHandshake(messages: isPrivate ? ["ut_metadata": 1] : PeerSession.ourExtensions,
                                              client: engine.configuration.clientName,
                                              listenPort: engine.listenPort > 0 ? UInt16(engine.listenPort) : nil,
                                              requestQueueDepth: Torrent.maxPipeline)
            if let metainfo { extended.metadataSize = metainfo.infoBytes.count }
            extended.yourIP = IPAddress.parse(peer.address.host)
            peer.send(.extended(id: 0, payload: extended.payload))
        }
        announceHaves(to: peer)
        peer.flush()
    }

    /// Our bitfield (or have all / have none) right after the handshake.
    private func announceHaves(to peer: PeerConnection) {
        guard let session = peer.session else { return }
        guard let picker else {
            if session.fast { peer.send(.haveNone) }
            return
        }
        if session.fast && picker.have.isComplete {
            peer.send(.haveAll)
        } else if session.fast && picker.have.isEmpty {
            peer.send(.haveNone)
        } else if !picker.have.isEmpty {
            peer.send(.bitfield(picker.have.wire))
        }
        allowFast(peer)
    }

    /// BEP 6: the pieces of the peer's allowed fast set that we have, so that a new peer
    /// can start while it waits for an unchoke.
    private func allowFast(_ peer: PeerConnection) {
        guard var session = peer.session, session.fast, let picker, let metainfo,
              let address = IPAddress.parse(peer.address.host), address.count == 4 else { return }
        let set = AllowedFast.set(ipv4: address, infoHash: infoHash, pieceCount: metainfo.info.lengths.pieceCount)
        for message in session.allowFast(set.filter { picker.have[$0] }) { peer.send(message) }
        peer.session = session
    }

    func peerClosed(_ peer: PeerConnection) {
        // A peer that broke the protocol is not dialed again; one that merely went away
        // (timeouts, closes) is, after a backoff.
        switch peer.closeReason {
        case .protocolViolation?:
            ban(peer.reachableAddress ?? peer.address, peerID: peer.remotePeerID, reason: .protocolViolation)
        case .wrongInfoHash?:
            ban(peer.address, peerID: peer.remotePeerID, reason: .wrongTorrent)
        case .banned?:
            break
        default:
            if !peer.incoming { peerList.failed(peer.address, now: Engine.now()) }
        }
        guard peers.removeValue(forKey: peer.id) != nil else { return }
        if metadataSource == peer.id { metadataSource = nil }
        lastPEXSent[peer.id] = nil
        if let session = peer.session {
            if let bits = session.peerHas { picker?.peerRemoved(bits) }
            for block in session.outstanding.keys { picker?.requestDropped(block) }
        }
    }

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
        case .accept(let range):
            blockReceived(range, bytes, from: peer, now: now)
            fillRequests(peer, now: now)
        case .drop:
            break
        case .violation(let events):
            handle(events, from: peer, now: now)
        }
    }

    private func handle(_ events: [PeerEvent], from peer: PeerConnection, now: Int64) {
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
                // A free upload slot is given at once instead of at the next choking round.
                if interested, picker != nil, !ratioReached, var session = peer.session, session.amChoking,
                   peers.values.filter({ $0.session?.amChoking == false }).count < choker.slots {
                    for message in session.setChoking(false) { peer.send(message) }
                    peer.session = session
                }
            case .extensionHandshake(let handshake):
                peer.client = handshake.client
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

    private func updateInterest(_ peer: PeerConnection) {
        guard var session = peer.session, let picker, let bits = session.peerHas else { return }
        let interested = picker.isInteresting(bits)
        for message in session.setInterested(interested) { peer.send(message) }
        peer.session = session
    }

    // MARK: Downloading

    /// Tops up a peer's request pipeline to about `pipelineSeconds` of its measured rate.
    func fillRequests(_ peer: PeerConnection, now: Int64) {
        guard let current = peer.session, picker != nil, let bits = current.peerHas, current.amInterested,
              error == nil, storageError == nil, !isStopped else { return }
        let rate = peer.downloadMeter.rate(now: now)
        var depth = max(Torrent.minPipeline, Int(rate * Torrent.pipelineSeconds) / Lengths.blockSize)
        // Snubbed (nothing received for a minute while requests were out): one at a time.
        if !current.outstanding.isEmpty, now - max(peer.lastBlockAt, peer.connectedAt) > Torrent.snubTimeout { depth = 1 }
        depth = min(depth, current.remoteExtensions?.requestQueueDepth.map { max($0, Torrent.minPipeline) } ?? 250,
                    Torrent.maxPipeline)
        let outstanding = current.outstanding.count
        guard outstanding < depth, !current.peerChoking || !current.allowedFast.isEmpty else { return }
        // Top up as the queue drains, in batches of at least an eighth of it, so a fast
        // peer never waits for requests and picking cost is spread over several blocks.
        guard depth - outstanding >= max(1, depth / 8) else { return }
        var wanted = depth - outstanding
        wanted = downloadBucket.takeUnits(of: Lengths.blockSize, upTo: wanted, now: now)
        wanted = engine.downloadBucket.takeUnits(of: Lengths.blockSize, upTo: wanted, now: now)
        guard wanted > 0 else { return }
        let availableBits: Bitfield
        if current.peerChoking {
            var allowed = Bitfield(count: bits.count)
            for piece in current.allowedFast where piece < bits.count && bits[piece] { allowed[piece] = true }
            availableBits = allowed
        } else {
            availableBits = bits
        }
        let fastPeer = rate >= averagePeerRate(now: now)
        // Mutated in place (no copy-on-write of the picker's tables).
        let blocks = picker!.pick(count: wanted, peerHas: availableBits, alreadyRequested: Set(current.outstanding.keys),
                                  fast: fastPeer, now: now)
        guard !blocks.isEmpty, var session = peer.session.take() else { return }
        for block in blocks {
            session.sentRequest(block, now: now)
            peer.send(.request(piece: block.piece.value, begin: block.begin, length: block.length))
        }
        peer.session = session
        peer.flush()
    }

    private func averagePeerRate(now: Int64) -> Double {
        guard !peers.isEmpty else { return 0 }
        return peers.values.reduce(0) { $0 + $1.downloadMeter.rate(now: now) } / Double(peers.count)
    }

    private func blockReceived(_ range: BlockRange, _ data: UnsafeRawBufferPointer, from peer: PeerConnection,
                               now: Int64) {
        guard picker != nil, let metainfo else { return }
        peer.downloadMeter.add(data.count, now: now)
        peer.lastBlockAt = now
        downloadMeter.add(data.count, now: now)
        let outcome = picker!.blockReceived(range)
        guard outcome != .unexpected else { return }
        let piece = range.piece.value
        // Taken out of the table while written to: a copy of the piece per block otherwise.
        var buffer = assembling.removeValue(forKey: piece)
            ?? PieceBuffer(bytes: [UInt8](repeating: 0, count: metainfo.info.lengths.pieceSize(range.piece)),
                           senders: [Sender?](repeating: nil, count: metainfo.info.lengths.blockCount(range.piece)))
        buffer.bytes.withUnsafeMutableBytes { target in
            target.baseAddress!.advanced(by: range.begin).copyMemory(from: data.baseAddress!, byteCount: data.count)
        }
        buffer.senders[range.blockIndex] = Sender(connection: peer.id, address: peer.address, peerID: peer.remotePeerID)
        // Endgame duplicates of this block elsewhere are no longer needed.
        for other in peers.values where other.id != peer.id {
            if var session = other.session, session.cancelled(range) {
                other.session = session
                other.send(.cancel(piece: piece, begin: range.begin, length: range.length))
            }
        }
        if outcome == .pieceComplete {
            assembling[piece] = nil
            verify(range.piece, buffer)
        } else {
            assembling[piece] = buffer
        }
    }

    private func verify(_ piece: PieceIndex, _ buffer: PieceBuffer) {
        guard let metainfo, let storage else { return }
        let expected = metainfo.info.hash(of: piece)
        let offset = metainfo.info.lengths.pieceOffset(piece)
        let bytes = buffer.bytes
        engine.onDisk { () -> Bool in
            guard PieceHasher.digest(bytes) == expected else { return false }
            try storage.write(bytes, at: offset)
            return true
        }.whenComplete { [self] result in
            switch result {
            case .success(true):
                pieceVerified(piece, size: bytes.count)
                if let failed = failedPieces.removeValue(forKey: piece.value) { smartBan(failed, good: bytes) }
            case .success(false): pieceFailed(piece, buffer)
            case .failure(let error):
                storageFailed(piece, bytes, error: "\(error)")
            }
        }
    }

    // MARK: Storage failures

    /// A verified piece could not be written (disk full, I/O error): it is kept in memory
    /// and the torrent pauses (no new requests) until a retry writes it.
    private func storageFailed(_ piece: PieceIndex, _ bytes: [UInt8], error: String) {
        unwritten[piece.value] = bytes
        if storageError == nil {
            storageError = "cannot store data, paused until it can: \(error)"
            lastWriteRetry = Engine.now()
            logger.error("storage failed; torrent paused", metadata: ["error": "\(error)"])
        }
        state = .paused
    }

    /// Every few seconds while paused: write the kept pieces again; once all are written,
    /// downloading resumes.
    private func retryWrites(now: Int64) {
        guard storageError != nil, !retryingWrites, now - lastWriteRetry >= Torrent.writeRetryInterval,
              let storage, let lengths = metainfo?.info.lengths else { return }
        lastWriteRetry = now
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

    private func pieceVerified(_ piece: PieceIndex, size: Int) {
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

    private func pieceFailed(_ piece: PieceIndex, _ buffer: PieceBuffer) {
        hashFailures += 1
        picker?.pieceFailed(piece)
        let senders = buffer.distinctSenders
        logger.warning("hash check failed", metadata: ["piece": "\(piece.value)", "peers": "\(senders.count)"])
        if senders.count == 1, let sender = senders.first {
            // It alone sent the piece: it sent bad data.
            ban(sender, reason: .badData)
        } else {
            // Several senders: keep the attempt; once the piece passes, the blocks that differ
            // name the liar, and honest peers that shared the piece are never blamed.
            failedPieces[piece.value] = buffer
            failedOrder.removeAll { $0 == piece.value }
            failedOrder.append(piece.value)
            if failedOrder.count > Torrent.maxRememberedFailures {
                failedPieces[failedOrder.removeFirst()] = nil
            }
        }
    }

    /// Bans the senders of every block of a failed attempt that differs from the good data.
    private func smartBan(_ failed: PieceBuffer, good: [UInt8]) {
        failedOrder.removeAll { failedPieces[$0] == nil }
        var liars = Set<Sender>()
        for (index, sender) in failed.senders.enumerated() {
            guard let sender else { continue }
            let start = index * Lengths.blockSize
            let end = min(start + Lengths.blockSize, good.count)
            if !failed.bytes[start..<end].elementsEqual(good[start..<end]) { liars.insert(sender) }
        }
        for liar in liars { ban(liar, reason: .badData) }
    }

    private func ban(_ sender: Sender, reason: BanReason) {
        if let peer = peers[sender.connection] {
            ban(peer, reason: reason)
        } else {
            ban(sender.address, peerID: sender.peerID, reason: reason)
        }
    }

    private func ban(_ peer: PeerConnection, reason: BanReason) {
        ban(peer.reachableAddress ?? peer.address, peerID: peer.remotePeerID, reason: reason)
        peer.close(.banned)
        // Its blocks in unfinished pieces are not trusted: those pieces start over.
        for (piece, buffer) in assembling where buffer.senders.contains(where: { $0?.connection == peer.id }) {
            assembling[piece] = nil
            if let index = metainfo?.info.lengths.piece(piece) { picker?.pieceFailed(index) }
        }
    }

    private func ban(_ address: PeerAddress, peerID: PeerID?, reason: BanReason) {
        guard !peerList.isBanned(address) else { return }
        peerList.ban(address, peerID: peerID, reason: reason)
        logger.warning("banned peer", metadata: ["peer": "\(address)", "reason": "\(reason.rawValue)"])
    }

    // MARK: Uploading

    /// Uploaded at least `seedRatio` times the verified data: seeding stops (nobody is
    /// unchoked, allowed-fast requests are refused).
    var ratioReached: Bool {
        guard let ratio = options.seedRatio else { return false }
        return Double(uploadMeter.total) >= ratio * Double(max(verifiedBytes, 1))
    }

    private func upload(_ block: BlockRange, to peer: PeerConnection) {
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
        engine.onDisk { try storage.read(at: offset, length: block.length) }.whenComplete { [self] result in
            guard case .success(let bytes) = result, peer.session?.served(block) == true else { return }
            peer.send(.piece(piece: block.piece.value, begin: block.begin, block: bytes))
            peer.flush()
            let now = Engine.now()
            peer.uploadMeter.add(bytes.count, now: now)
            uploadMeter.add(bytes.count, now: now)
        }
    }

    // MARK: Metadata (BEP 9)

    private func requestMetadata(from peer: PeerConnection, now: Int64) {
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

    private func metadataMessage(_ message: MetadataMessage, from peer: PeerConnection, now: Int64) {
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

    private func metadataArrived(_ fetched: Metainfo) {
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

    private func rechoke(now: Int64) {
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

    private func sendPEX(now: Int64) {
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

    // MARK: Resume data

    func saveResume() {
        guard !isStopped, let write = resumeWriter() else { return }
        resumeDirty = false
        lastResumeSave = Engine.now()
        _ = engine.onDisk(write)
    }

    /// The disk work that saves resume data now: data files synced first, so the verified
    /// bitfield never runs ahead of what is on disk.
    private func resumeWriter(closing: Bool = false) -> (@Sendable () throws -> Void)? {
        guard let picker, let storage else { return nil }
        let path = resumePath
        let hash = infoHash
        let have = picker.have
        return {
            try storage.sync()
            try FileStorage.makeParents(of: path)
            let resume = ResumeData(infoHash: hash, have: have, files: storage.fileStates())
            try ResumeData.writeAtomically(resume.encoded, to: path)
            if closing { storage.close() }
        }
    }

    // MARK: Stop

    func stop() -> EventLoopFuture<Void> {
        isStopped = true
        announcer?.stop()
        for peer in peers.values { peer.close(.shutdown) }
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
            return TorrentStats.Peer(address: peer.address.description, client: peer.client, incoming: peer.incoming,
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
                            peers: peerStats, knownPeers: peerList.count, hashFailures: hashFailures,
                            bannedPeers: peerList.bannedCount,
                            bansByReason: Dictionary(uniqueKeysWithValues: peerList.bansByReason.map { ($0.key.rawValue, $0.value) }),
                            knownPeersBySource: Dictionary(uniqueKeysWithValues: peerList.addressesBySource.map { ($0.key.rawValue, $0.value) }),
                            trackers: trackerStatus, error: error ?? storageError)
    }
}

/// A torrent could not complete.
public struct TorrentFailure: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// SHA-1 of pieces with swift-crypto (SHA-NI where the CPU has it).
struct PieceHasher: Sendable {
    let info: InfoDictionary

    static func digest(_ bytes: [UInt8]) -> Digest20 {
        Digest20(Array(Insecure.SHA1.hash(data: bytes)))!
    }

    func verify(_ piece: PieceIndex, _ bytes: [UInt8]) -> Bool {
        PieceHasher.digest(bytes) == info.hash(of: piece)
    }
}
