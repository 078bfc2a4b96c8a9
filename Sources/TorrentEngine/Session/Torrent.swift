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
    /// Nanoseconds between choking rounds (10 s).
    static let chokeInterval: Int64 = 10_000_000_000
    /// Nanoseconds between PEX messages to one peer (BEP 11: at most once a minute).
    static let pexInterval: Int64 = 60_000_000_000
    /// Nanoseconds between resume-data saves while downloading (30 s).
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
    /// Pieces being put together, and failed attempts kept for smart ban.
    var assembly = PieceAssembly()
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
    /// Web seeds (BEP 19) by their source id, once the metadata is known.
    var webSeeds: [Int: WebSeed] = [:]
    /// Bytes of pieces being hashed and written (they count in a bounded cache already).
    var pendingWrites: Int64 = 0
    /// Evicted byte ranges waiting for their release job, and whether one runs.
    var toRelease: [Range<Int64>] = []
    var releasing = false
    /// Orders resume data writes (newest bitfield wins).
    let resumeOrder = ResumeOrder()
    /// Pieces with a block being read from storage for a peer (never evicted meanwhile).
    var uploading: [Int: Int] = [:]
    var lastWriteRetry: Int64 = 0
    var retryingWrites = false
    /// The first retry of a failed write; each failed retry doubles the wait, up to the max.
    static let writeRetryInterval: Int64 = 1_000_000_000
    static let maxWriteRetryInterval: Int64 = 30_000_000_000
    var writeRetryDelay = Torrent.writeRetryInterval
    var verifiedBytes: Int64 = 0
    var lastPEXSent: [Int: Int64] = [:]
    var announcer: TrackerAnnouncer?


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
        let storage = engine.configuration.makeStorage?(dataDirectory, info) ?? FileStorage(root: dataDirectory, info: info)
        self.storage = storage
        state = .checking
        let resumePath = resumePath
        let force = options.forceRecheck
        let hasher = PieceHasher(info: info)
        engine.onDisk { () -> (have: Bitfield, hashed: Bitfield) in
            let current = storage.fileStates()
            var trusted = Bitfield(count: info.lengths.pieceCount)
            if !force, let bytes = try? PosixFile.read(resumePath), let resume = ResumeData(encoded: bytes),
               resume.infoHash == metainfo.infoHash {
                trusted = resume.trusted(info: info, current: current)
            }
            // Pieces not vouched for by resume data are hashed where their files exist.
            let visible = info.files.filter { !$0.isPadding }
            var present: [Range<Int64>] = []
            // A storage without files (memory) reports no states: nothing to hash.
            for (index, file) in visible.enumerated() where index < current.count && current[index] != nil && file.length > 0 {
                present.append(file.byteRange)
            }
            var have = trusted
            var hashed = Bitfield(count: info.lengths.pieceCount)
            for piece in info.lengths.pieces where !trusted[piece.value] {
                let range = info.lengths.byteRange(piece)
                guard present.contains(where: { $0.overlaps(range) }) else { continue }
                if let bytes = try? storage.read(at: range.lowerBound, length: range.count),
                   hasher.verify(piece, bytes) {
                    have[piece.value] = true
                    hashed[piece.value] = true
                }
            }
            return (have, hashed)
        }.whenComplete { [self] result in
            switch result {
            case .success(let found): checked(found.have, hashed: found.hashed)
            case .failure(let error): fail("checking failed: \(error)")
            }
        }
    }

    /// `hashed`: the pieces of `have` whose stored bytes were hashed just now (the rest are
    /// trusted from resume data, and streaming reads check them on first use).
    func checked(_ have: Bitfield, hashed: Bitfield) {
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
        // The first announce went out during the check, telling the trackers everything was
        // left: data found on disk is announced at once (a seed is a seed to them now).
        if !have.isEmpty { announcer?.announceNow() }
        // Peers that connected while the data was checked get our pieces, our interest and
        // their first requests now, not at the next tick.
        let now = Engine.now()
        for peer in peers.values where peer.session != nil {
            announceHaves(to: peer)
            updateInterest(peer)
            fillRequests(peer, now: now)
            peer.flush()
        }
        if let storage { engine.reads.checked(infoHash, info: metainfo.info, storage: storage, have: have, hashed: hashed) }
        for observer in engine.observers.values { observer.torrentChecked(infoHash, have: have) }
        engine.enforceCacheLimit()
        startWebSeeds()
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
        fillWebSeeds(now: now)
        for peer in peers.values where peer.session != nil {
            updateInterest(peer)
            fillRequests(peer, now: now)
            peer.flush()
        }
        connectMore(now: now)
    }

    /// Pieces that touch no selected file get priority `skip`.
    func applySelection(_ selected: [ClosedRange<Int>], to picker: inout PiecePicker, info: InfoDictionary) {
        var wanted = Bitfield(count: info.lengths.pieceCount)
        for (index, file) in info.visibleFiles.enumerated() where selected.contains(where: { $0.contains(index) }) {
            guard let range = info.lengths.pieces(covering: file.byteRange) else { continue }
            for piece in range.lowerBound.value...range.upperBound.value { wanted[piece] = true }
        }
        for piece in info.lengths.pieces where !wanted[piece.value] { picker.setPriority(PiecePicker.skip, for: piece) }
    }

    func updateState() {
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
        // A notice: front ends report the failure themselves (`download` exits with it).
        logger.notice("torrent error", metadata: ["error": "\(message)"])
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
                                              requestQueueDepth: RequestDepth.maximum)
            if let metainfo { extended.metadataSize = metainfo.infoBytes.count }
            extended.yourIP = IPAddress.parse(peer.address.host)
            peer.send(.extended(id: 0, payload: extended.payload))
        }
        announceHaves(to: peer)
        peer.flush()
    }

    /// Our bitfield (or have all / have none) right after the handshake.
    func announceHaves(to peer: PeerConnection) {
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
    func allowFast(_ peer: PeerConnection) {
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
        case .connectedToSelf?:
            // A tracker or PEX handed us our own address: never dial it again.
            peerList.markAsOurs(peer.address)
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
}
