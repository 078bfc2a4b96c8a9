import AsyncHTTPClient
import BitTorrent
import Logging
import NIOCore
import NIOPosix

/// A BitTorrent session: listening sockets, torrents, limits. Thread-safe; every call
/// hops to the engine's event loop.
public final class Session: Sendable {
    let engine: Engine

    public init(configuration: SessionConfiguration, logger: Logger = Logger(label: "torrentfs")) {
        engine = Engine(configuration: configuration, logger: logger)
    }

    /// Starts listening; returns the TCP port in use.
    public func start() async throws -> Int {
        let engine = engine
        let port = try await engine.loop.flatSubmit { engine.startListening() }.get()
        try await engine.loop.flatSubmit { engine.startUDP() }.get()
        try await engine.loop.submit { engine.startTimer() }.get()
        try await engine.loop.flatSubmit { engine.startDiscovery() }.get()
        try await engine.loop.flatSubmit { engine.startDHT() }.get()
        return port
    }

    public var listenPort: Int {
        get async { (try? await engine.loop.submit { [engine] in engine.listenPort }.get()) ?? 0 }
    }

    /// Adds a torrent (or merges peers and trackers into one already added).
    @discardableResult
    public func add(_ source: TorrentSource, options: TorrentOptions = TorrentOptions()) async throws -> InfoHash {
        let engine = engine
        return try await engine.loop.submit {
            let hash = source.infoHash
            if let existing = engine.torrents[hash] {
                existing.addCandidates(options.peers, source: .manual)
                switch source {
                case .magnet(let magnet):
                    existing.addCandidates(magnet.peers, source: .magnet)
                    existing.addTrackers(magnet.trackers.map { [$0] })
                case .metainfo(let metainfo):
                    if existing.metainfo == nil {
                        existing.metadataProvided(metainfo)
                    } else {
                        existing.addTrackers(metainfo.trackerTiers)
                    }
                }
                return hash
            }
            let torrent = Torrent(engine: engine, source: source, options: options)
            engine.torrents[hash] = torrent
            // The data check runs in the background; the first announce and the dials of
            // known peers go out now, not at the next tick.
            torrent.start()
            torrent.announcer?.tick(now: Engine.now())
            torrent.connectMore(now: Engine.now())
            engine.dht?.torrentAdded()
            return hash
        }.get()
    }

    /// Changes which files of a running torrent are downloaded (nil = all, [] = only what
    /// readers wait for); see `TorrentOptions.selectedFiles`.
    public func setSelection(_ infoHash: InfoHash, _ selected: [ClosedRange<Int>]?) async {
        let engine = engine
        try? await engine.loop.submit { engine.torrents[infoHash]?.setSelection(selected) }.get()
    }

    /// Changes a running torrent's download limit (bytes per second; nil = unlimited).
    public func setDownloadLimit(_ infoHash: InfoHash, _ limit: Int?) async {
        let engine = engine
        try? await engine.loop.submit { engine.torrents[infoHash]?.setDownloadLimit(limit) }.get()
    }

    /// Adds peers to contact for a torrent.
    public func addPeers(_ peers: [PeerAddress], to infoHash: InfoHash) async {
        let engine = engine
        try? await engine.loop.submit {
            engine.torrents[infoHash]?.addCandidates(peers, source: .manual)
        }.get()
    }

    /// Waits until every wanted piece of the torrent is verified; throws if it fails or the
    /// waiting task is cancelled.
    public func waitForCompletion(_ infoHash: InfoHash) async throws {
        let engine = engine
        let id = try await engine.loop.submit { () -> Int in
            let id = engine.makeID()
            engine.startingWaits.insert(id)
            return id
        }.get()
        try await withTaskCancellationHandler {
            try await engine.loop.flatSubmit { () -> EventLoopFuture<Void> in
                engine.startingWaits.remove(id)
                if engine.cancelledWaits.remove(id) != nil { return engine.loop.makeFailedFuture(CancellationError()) }
                guard let torrent = engine.torrents[infoHash] else {
                    return engine.loop.makeFailedFuture(TorrentFailure(message: "no such torrent"))
                }
                if let error = torrent.error { return engine.loop.makeFailedFuture(TorrentFailure(message: error)) }
                if torrent.picker?.isDone == true { return engine.loop.makeSucceededVoidFuture() }
                let promise = engine.loop.makePromise(of: Void.self)
                torrent.completionWaiters[id] = promise
                return promise.futureResult
            }.get()
        } onCancel: {
            // The promise is completed on the loop, and only once: whoever removes it. A wait
            // not registered yet is refused when it is; one already over needs nothing.
            engine.loop.execute {
                if let promise = engine.torrents[infoHash]?.completionWaiters.removeValue(forKey: id) {
                    promise.fail(CancellationError())
                } else if engine.startingWaits.contains(id) {
                    engine.cancelledWaits.insert(id)
                }
            }
        }
    }

    /// Waits until the torrent's metadata is known (immediately for .torrent files).
    public func waitForMetadata(_ infoHash: InfoHash) async throws -> Metainfo {
        let engine = engine
        return try await engine.loop.flatSubmit { () -> EventLoopFuture<Metainfo> in
            guard let torrent = engine.torrents[infoHash] else {
                return engine.loop.makeFailedFuture(TorrentFailure(message: "no such torrent"))
            }
            if let metainfo = torrent.metainfo { return engine.loop.makeSucceededFuture(metainfo) }
            let promise = engine.loop.makePromise(of: Metainfo.self)
            torrent.metadataWaiters.append(promise)
            return promise.futureResult
        }.get()
    }

    public func stats(_ infoHash: InfoHash) async -> TorrentStats? {
        let engine = engine
        return try? await engine.loop.submit { engine.torrents[infoHash]?.stats(now: Engine.now()) }.get()
    }


    /// Stops a torrent, saving its resume data; with `deleteData`, its data files and resume
    /// file are deleted instead.
    public func remove(_ infoHash: InfoHash, deleteData: Bool = false) async {
        let engine = engine
        try? await engine.loop.flatSubmit { () -> EventLoopFuture<Void> in
            guard let torrent = engine.torrents.removeValue(forKey: infoHash) else { return engine.loop.makeSucceededVoidFuture() }
            engine.reads.removed(infoHash)
            let stopped = torrent.stop()
            guard deleteData else { return stopped }
            // Deleted even if saving its resume data failed: that file goes too.
            return stopped.recover { _ in }.flatMap { torrent.deleteFiles() }
        }.get()
    }

    /// Adds a receiver of piece, metadata and check events from every torrent, called on
    /// the engine's thread: implementations must return quickly and never block.
    public func addObserver(_ observer: any SessionObserver) async {
        let engine = engine
        try? await engine.loop.submit { engine.observers[ObjectIdentifier(observer)] = observer }.get()
    }

    public func removeObserver(_ observer: any SessionObserver) async {
        let engine = engine
        try? await engine.loop.submit { engine.observers[ObjectIdentifier(observer)] = nil }.get()
    }

    /// Opens a streaming reader of file `fileIndex` (an index into `info.files`) of a torrent
    /// of this session. Thread-safe and immediate: reads wait for the data, not the reader.
    public func openReader(_ infoHash: InfoHash, info: InfoDictionary, fileIndex: Int,
                           options: ReaderOptions = ReaderOptions()) -> TorrentReader {
        engine.reads.open(infoHash, info: info, fileIndex: fileIndex, options: options)
    }

    /// Verified bytes of a torrent within `range` of its byte stream (0 until checked).
    /// Thread-safe and immediate.
    public func verifiedBytes(_ infoHash: InfoHash, in range: Range<Int64>) -> Int64 {
        engine.reads.verifiedBytes(infoHash, in: range)
    }

    /// Sets (or, with nil, clears) the time by which pieces are needed, on the clock of
    /// `Session.now()`. Pieces with a deadline are fetched even when their files are not
    /// selected, nearest deadline first, from the fastest peers. Calls from one thread are
    /// applied in order.
    public func setDeadlines(_ infoHash: InfoHash, _ changes: [(piece: Int, deadline: Int64?)]) {
        let engine = engine
        engine.loop.execute { engine.torrents[infoHash]?.setDeadlines(changes) }
    }

    /// Verified pieces of a torrent (nil until its metadata is known and checked).
    public func verifiedPieces(_ infoHash: InfoHash) async -> Bitfield? {
        let engine = engine
        return try? await engine.loop.submit { engine.torrents[infoHash]?.picker?.have }.get()
    }

    /// The session's status document (torrents sorted by name).
    public func status() async -> StatusDocument {
        let engine = engine
        return (try? await engine.loop.submit { engine.status() }.get()) ?? StatusDocument(listenPort: 0, torrents: [])
    }

    /// Calls `completion` on the engine's thread with the status document, without
    /// suspending the caller (for callers that must not wait, such as filesystem threads).
    public func withStatus(_ completion: @escaping @Sendable (StatusDocument) -> Void) {
        let engine = engine
        engine.loop.execute { completion(engine.status()) }
    }

    /// Fetches a small resource (a .torrent file) over HTTP(S); fails past `limit` bytes,
    /// after 5 redirects, or after 30 s.
    public func fetch(_ url: String, limit: Int = 16 << 20) async throws -> [UInt8] {
        let response = try await engine.httpClient.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        guard (200..<300).contains(response.status.code) else {
            throw TorrentFailure(message: "HTTP \(response.status.code) from \(url)")
        }
        let body = try await response.body.collect(upTo: limit)
        return body.getBytes(at: body.readerIndex, length: body.readableBytes) ?? []
    }

    /// The engine's monotonic clock in nanoseconds (the scale of deadlines).
    public static func now() -> Int64 { Engine.now() }

    /// Closes every connection, saves resume data, and stops the threads.
    public func shutdown() async {
        let engine = engine
        try? await engine.loop.flatSubmit { () -> EventLoopFuture<Void> in
            engine.stopped = true
            engine.timer?.cancel()
            engine.reads.shutDown()
            engine.utp?.stop()
            engine.stopDHT()
            let stops = engine.torrents.values.map { $0.stop() }
            let closes = engine.listeners.map { $0.close() } + [engine.udpPort?.close()].compactMap { $0 }
                + engine.stopDiscovery()
            return EventLoopFuture.andAllComplete(stops + closes, on: engine.loop)
        }.get()
        try? await engine.httpClient.shutdown()
        try? await engine.pool.shutdownGracefully()
        try? await engine.group.shutdownGracefully()
    }
}

/// Events from the engine, delivered on its thread. Each has a default that ignores it.
public protocol SessionObserver: AnyObject, Sendable {
    /// The torrent's pieces on disk were checked (after adding, or once metadata arrived).
    func torrentChecked(_ infoHash: InfoHash, have: Bitfield)
    /// A piece passed its hash check and is written to its files.
    func pieceVerified(_ infoHash: InfoHash, piece: Int)
    /// Metadata fetched from peers (magnet links) matched the info hash.
    func metadataReceived(_ infoHash: InfoHash, metainfo: Metainfo)
}

extension SessionObserver {
    public func torrentChecked(_ infoHash: InfoHash, have: Bitfield) {}
    public func pieceVerified(_ infoHash: InfoHash, piece: Int) {}
    public func metadataReceived(_ infoHash: InfoHash, metainfo: Metainfo) {}
}
