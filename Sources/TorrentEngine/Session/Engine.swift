import AsyncHTTPClient
import BitTorrent
import Logging
import NIOCore
import NIOPosix

/// The engine's state and its event loop. Every mutable field is touched only on `loop`
/// (one thread), so nothing here needs a lock; disk I/O and hashing run on `pool`.
final class Engine: @unchecked Sendable {
    let configuration: SessionConfiguration
    let group: MultiThreadedEventLoopGroup
    let loop: EventLoop
    let pool: NIOThreadPool
    /// Opens and accepts peer connections (the transport seam).
    let dialer: PeerDialer
    let logger: Logger
    var torrents: [InfoHash: Torrent] = [:]
    var listeners: [Channel] = []
    var listenPort = 0
    var nextConnectionID = 0
    var connections: [Int: PeerConnection] = [:]
    var downloadBucket: TokenBucket
    var uploadBucket: TokenBucket
    var timer: RepeatedTask?
    /// Completion waits given an id but not registered yet, and those of them cancelled
    /// meanwhile (refused when they register). Both sets lose an id at registration.
    var startingWaits = Set<Int>()
    var cancelledWaits = Set<Int>()
    var stopped = false
    /// Pieces the bounded cache evicted.
    var cacheEvictions = 0
    /// Piece writes waiting for eviction releases (`afterReleases`).
    var writesAfterRelease: [() -> Void] = []
    /// Told about verified pieces, checks and metadata (the filesystem, the HTTP server).
    var observers: [ObjectIdentifier: any SessionObserver] = [:]
    /// Streaming reads of every torrent (thread-safe; told about checks and pieces first).
    let reads: ReadCoordinator
    /// HTTP(S) for trackers; redirects bounded (RELIABILITY: at most 5).
    let httpClient: HTTPClient
    /// The session's UDP socket (trackers; the DHT and uTP share it), on the listen port.
    var udpPort: UDPPort?
    /// uTP connections on the UDP port (`Engine+UTP.swift`), unless uTP is off.
    var utp: UTPService?
    /// Local service discovery and port mapping, when on (`Engine+Discovery.swift`).
    var lsd: LSDService?
    /// The mainline DHT node (nil when the DHT is off or until it started).
    var dht: DHTService?
    var portMapper: PortMapper?
    /// Encrypted dials and what worked per address (`Engine+Encryption.swift`).
    var encryption = EncryptionMemory()

    init(configuration: SessionConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        dialer = PeerDialer(loop: loop)
        pool = NIOThreadPool(numberOfThreads: configuration.diskThreads)
        pool.start()
        httpClient = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: HTTPClient.Configuration(
            redirectConfiguration: .follow(max: 5, allowCycles: false),
            timeout: .init(connect: .seconds(10), read: .seconds(20))))
        let now = Engine.now()
        downloadBucket = TokenBucket(rate: configuration.downloadLimit, now: now)
        uploadBucket = TokenBucket(rate: configuration.uploadLimit, now: now)
        let owner = EngineReference()
        let loop = loop
        reads = ReadCoordinator(logger: logger, clock: { Engine.now() }, sendDeadlines: { hash, changes in
            loop.execute { owner.engine?.torrents[hash]?.setDeadlines(changes) }
        }, piecesLost: { hash, pieces in
            loop.execute { owner.engine?.torrents[hash]?.piecesLost(pieces) }
        })
        owner.engine = self
    }

    /// Monotonic nanoseconds.
    static func now() -> Int64 { Int64(NIODeadline.now().uptimeNanoseconds) }

    // MARK: Listening

    func startListening() -> EventLoopFuture<Int> {
        loop.assertInEventLoop()
        let progress = ListenProgress(port: configuration.listenPort)
        var future = loop.makeSucceededVoidFuture()
        for host in configuration.listenHosts {
            future = future.flatMap { [self] in
                dialer.listen(host: host, port: progress.port) { [self] channel in try accept(channel) }
                    .map { [self] channel in
                        listeners.append(channel)
                        // The first socket picks the port; the others share it.
                        if progress.port == 0 { progress.port = channel.localAddress?.port ?? 0 }
                        progress.bound += 1
                    }
                    .flatMapErrorThrowing { error in
                        // An IPv6 wildcard may fail on hosts without IPv6; one address suffices.
                        progress.errors.append("\(host): \(error)")
                    }
            }
        }
        return future.flatMapThrowing { [self] in
            guard progress.bound > 0 else { throw EngineError.listenFailed(progress.errors.joined(separator: "; ")) }
            listenPort = progress.port
            logger.info("listening", metadata: ["port": "\(progress.port)"])
            return progress.port
        }
    }

    private func accept(_ channel: Channel) throws {
        guard !stopped, connections.count < configuration.maxConnections else {
            channel.close(promise: nil)
            return
        }
        let remote = channel.remoteAddress
        let host = Engine.unmapped(remote?.ipAddress ?? "?")
        if configuration.blocklist.isBlocked(host) {
            channel.close(promise: nil)
            return
        }
        let connection = PeerConnection(id: makeID(), transport: ChannelTransport(channel), incoming: true,
                                        address: PeerAddress(host: host, port: UInt16(remote?.port ?? 0)))
        try addIncomingEncryption(to: channel)
        try PeerChannelHandler.install(on: channel, engine: self, connection: connection)
    }

    /// `::ffff:1.2.3.4` (an IPv4 peer on a dual-stack socket) → `1.2.3.4`.
    static func unmapped(_ host: String) -> String {
        let prefix = "::ffff:"
        guard host.lowercased().hasPrefix(prefix), host.contains(".") else { return host }
        return String(host.dropFirst(prefix.count))
    }

    func makeID() -> Int {
        nextConnectionID += 1
        return nextConnectionID
    }

    // MARK: Outgoing connections

    /// Dials `address` over TCP (`connect` in `Engine+UTP.swift` picks the transport).
    func connectTCP(_ address: PeerAddress, for torrent: Torrent) {
        loop.assertInEventLoop()
        guard !stopped else { return }
        let encrypted = encryption.encryptFirst(address, policy: configuration.encryption)
        dialer.dial(address) { [self] channel in
            try setUpOutgoing(channel, to: address, for: torrent, encrypted: encrypted, retry: false)
        }
        .whenComplete { [self] result in
            // On success the address stays "dialing" until the handshake completes or the
            // connection closes, so no second dial starts meanwhile.
            if case .failure(let error) = result {
                encryption.dialFailed(address)
                torrent.connectFailed(address)
                logger.debug("connect failed", metadata: ["peer": "\(address)", "error": "\(error)"])
            }
        }
    }

    // MARK: Events from handlers

    func channelActive(_ connection: PeerConnection) {
        connections[connection.id] = connection
        if let torrent = connection.torrent {
            // We dialed: say who we are first.
            connection.sendRaw(Handshake(infoHash: torrent.infoHash, peerID: configuration.peerID).encoded)
            connection.flush()
        }
        let id = connection.id
        loop.scheduleTask(in: .seconds(10)) { [self] in
            if let connection = connections[id], connection.session == nil {
                connection.close(.handshakeTimeout)
            }
        }
    }

    func channelClosed(_ connection: PeerConnection) {
        connection.isClosed = true
        connections[connection.id] = nil
        if connection.remotePeerID == nil && redialAfterEncryptionFailure(connection) { return }
        connection.torrent?.peerClosed(connection)
        if let reason = connection.closeReason {
            logger.debug("peer closed", metadata: ["peer": "\(connection.address)", "reason": "\(reason)"])
        }
    }

    func handshakeReceived(_ connection: PeerConnection, _ handshake: Handshake) {
        if handshake.peerID == configuration.peerID {
            connection.close(.connectedToSelf)
            return
        }
        if connection.incoming {
            guard let torrent = torrents[handshake.infoHash], !torrent.isStopped else {
                connection.close(.wrongInfoHash)
                return
            }
            connection.torrent = torrent
            connection.sendRaw(Handshake(infoHash: torrent.infoHash, peerID: configuration.peerID).encoded)
            // Our handshake leaves on its own, before the messages that follow it:
            // transmission over uTP reads a handshake and leaves the rest of its datagram
            // unread until the next one arrives (up to our 60 s keep-alive).
            connection.flush()
        } else if connection.torrent?.infoHash != handshake.infoHash {
            connection.close(.wrongInfoHash)
            return
        }
        connection.remotePeerID = handshake.peerID
        if !connection.incoming { encryption.handshaken(connection.id, policy: configuration.encryption) }
        connection.torrent?.peerHandshaken(connection, handshake)
    }

    func messageReceived(_ connection: PeerConnection, _ message: PeerMessage) {
        connection.torrent?.messageReceived(connection, message)
    }

    func blockArrived(_ connection: PeerConnection, piece: Int, begin: Int, bytes: UnsafeRawBufferPointer) {
        connection.torrent?.blockArrived(connection, piece: piece, begin: begin, bytes: bytes)
    }

    func protocolError(_ connection: PeerConnection, _ what: String) {
        connection.close(.protocolViolation(what))
    }

    // MARK: UDP (one port: trackers now, DHT and uTP next)

    /// Binds the UDP port to the TCP listen port (both stacks); if that port is taken for
    /// UDP, any free port, so trackers still work.
    func startUDP() -> EventLoopFuture<Void> {
        let receive: @Sendable (DatagramKind, [UInt8], SocketAddress) -> Void = { [self] kind, bytes, sender in
            udpReceived(kind, bytes, from: sender)
        }
        let readComplete: @Sendable () -> Void = { [self] in utp?.batchDone() }
        return UDPPort.bind(port: listenPort, on: loop, receive: receive, readComplete: readComplete)
            .flatMapError { [self] error in
                logger.warning("UDP port differs from the TCP port", metadata: ["port": "\(listenPort)", "error": "\(error)"])
                return UDPPort.bind(port: 0, on: loop, receive: receive, readComplete: readComplete)
            }
            .map { [self] port in
                udpPort = port
                startUTP(on: port)
                logger.info("UDP listening", metadata: ["port": "\(port.port)", "ipv6": "\(port.isIPv6)"])
            }
            .recover { [self] error in logger.warning("no UDP socket", metadata: ["error": "\(error)"]) }
    }

    func sendUDP(_ bytes: [UInt8], to address: SocketAddress) {
        udpPort?.send(bytes, to: address)
    }

    func udpReceived(_ kind: DatagramKind, _ bytes: [UInt8], from address: SocketAddress) {
        switch kind {
        case .tracker:
            for torrent in torrents.values {
                if torrent.announcer?.udpReceived(bytes, from: address) == true { return }
            }
        case .utp:
            if let utp { utp.received(bytes, from: address) } else { udpPort?.dropped[kind, default: 0] += 1 }
        case .dht:
            if let dht { dht.received(bytes, from: address) } else { udpPort?.dropped[kind, default: 0] += 1 }
        }
    }

    // MARK: Status

    func status() -> StatusDocument {
        let now = Engine.now()
        var document = StatusDocument(listenPort: listenPort,
                                      torrents: torrents.values.map { $0.stats(now: now) }.sorted { $0.name < $1.name })
        document.cache = cacheStatus
        document.lsd = lsd?.status
        document.dht = dht?.status
        document.portMapping = portMapper?.status
        return document
    }

    // MARK: Timer

    func startTimer() {
        timer = loop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { [self] _ in
            let now = Engine.now()
            for torrent in torrents.values { torrent.tick(now: now) }
        }
    }

    // MARK: Disk

    /// Runs blocking work on the disk/hash threads and delivers the result on the loop.
    func onDisk<T: Sendable>(_ work: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        pool.runIfActive(eventLoop: loop, work)
    }
}

/// The engine as the read coordinator's deadline callback sees it (set once, at init).
private final class EngineReference: @unchecked Sendable {
    weak var engine: Engine?
}

/// Listening state carried between the chained binds (touched only on the loop).
private final class ListenProgress: @unchecked Sendable {
    var port: Int
    var bound = 0
    var errors: [String] = []

    init(port: Int) { self.port = port }
}
