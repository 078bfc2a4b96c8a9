import BitTorrent
import Logging
import NIOCore
import NIOPosix

/// The sockets of local service discovery (BEP 14): one UDP socket per group
/// (239.192.152.143:6771 and [ff15::efc0:988f]:6771), each bound to port 6771 with
/// SO_REUSEADDR so that every client on the host gets the group's datagrams, joined on
/// the interface the routing table picks for the group, with multicast loopback on (two
/// processes on one host find each other) and a TTL / hop limit of 1 (the announce stays
/// on the link). `LSDAnnouncer` decides everything; this class only moves datagrams and
/// wakes it up. Confined to the engine's event loop.
final class LSDService: @unchecked Sendable {
    static let port = 6771
    static let groups: [(address: String, host: String)] = [
        ("239.192.152.143", "239.192.152.143:6771"),
        ("ff15::efc0:988f", "[ff15::efc0:988f]:6771"),
    ]
    /// How often the announcer is asked whether something is due.
    static let pollInterval = TimeAmount.milliseconds(100)
    static let reopenInterval: Int64 = 30_000_000_000

    struct Socket {
        let channel: Channel
        let group: SocketAddress
        let host: String
    }

    private var announcer: LSDAnnouncer
    private var sockets: [Socket] = []
    private var task: RepeatedTask?
    private var reopening = false
    private var nextReopen: Int64 = 0
    private var closed = false
    private let loop: EventLoop
    private let listenPort: UInt16
    private let logger: Logger
    /// The running torrents, and where found peers go (the engine's).
    private let torrents: () -> [(infoHash: InfoHash, isPrivate: Bool)]
    private let found: ([LSDAnnouncer.Found]) -> Void
    /// Datagrams sent and announces received (for the status and the tests' logs).
    private(set) var sent = 0
    private(set) var peersFound = 0

    private init(loop: EventLoop, listenPort: UInt16, cookie: String, logger: Logger,
                 torrents: @escaping () -> [(infoHash: InfoHash, isPrivate: Bool)],
                 found: @escaping ([LSDAnnouncer.Found]) -> Void) {
        self.loop = loop
        self.listenPort = listenPort
        self.logger = logger
        self.torrents = torrents
        self.found = found
        announcer = LSDAnnouncer(cookie: cookie)
    }

    /// Opens the sockets that can be opened (a group without a route, or a host without
    /// IPv6, is skipped with a note in the log) and starts announcing. Succeeds with no
    /// socket at all: then LSD simply finds nobody.
    static func start(loop: EventLoop, listenPort: Int, logger: Logger,
                      torrents: @escaping () -> [(infoHash: InfoHash, isPrivate: Bool)],
                      found: @escaping ([LSDAnnouncer.Found]) -> Void) -> EventLoopFuture<LSDService> {
        var generator = SystemRandomNumberGenerator()
        let service = LSDService(loop: loop, listenPort: UInt16(clamping: listenPort),
                                 cookie: LSDAnnouncer.makeCookie(using: &generator), logger: logger,
                                 torrents: torrents, found: found)
        return service.openMissing().map {
            service.task = loop.scheduleRepeatedTask(initialDelay: .zero, delay: pollInterval) { _ in service.poll() }
            logger.info("LSD started", metadata: ["groups": "\(service.sockets.map(\.host))"])
            return service
        }
    }

    /// Opens the groups that have no socket (at start, and every `reopenInterval` while
    /// one is missing: an interface or a route may come later, and a send error such as
    /// an IPv6 source address still tentative closes a socket).
    private func openMissing() -> EventLoopFuture<Void> {
        reopening = true
        nextReopen = Engine.now() + Self.reopenInterval
        let missing = Self.groups.filter { group in !sockets.contains { $0.host == group.host } }
        let opens = missing.map { group in
            open(group: group.address, host: group.host).map { [self] socket in
                guard !closed else {
                    socket.channel.close(promise: nil)
                    return
                }
                sockets.append(socket)
                socket.channel.closeFuture.whenComplete { [self] _ in
                    sockets.removeAll { $0.channel === socket.channel }
                }
            }.recover { [logger] error in
                logger.info("LSD: group not joined", metadata: ["group": "\(group.host)", "error": "\(error)"])
            }
        }
        return EventLoopFuture.andAllComplete(opens, on: loop).map { [self] in reopening = false }
    }

    private func open(group address: String, host: String) -> EventLoopFuture<Socket> {
        let group: SocketAddress
        do {
            group = try SocketAddress(ipAddress: address, port: Self.port)
        } catch {
            return loop.makeFailedFuture(error)
        }
        let ipv6 = group.protocol == .inet6
        var bootstrap = DatagramBootstrap(group: loop)
            .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramReceiver { [self] bytes, sender in
                        received(bytes, from: sender)
                    })
                }
            }
        if ipv6 {
            // IPv4 announces come to the IPv4 socket only, not a second time mapped.
            bootstrap = bootstrap.channelOption(Self.ipv6Option(.ipv6_v6only), value: 1)
        }
        return bootstrap.bind(host: ipv6 ? "::" : "0.0.0.0", port: Self.port).flatMap { channel in
            guard let multicast = channel as? MulticastChannel else {
                return channel.close().flatMapThrowing { throw ChannelError.operationUnsupported }
            }
            let options: EventLoopFuture<Void> = ipv6
                ? channel.setOption(Self.ipv6Option(.ipv6_multicast_loop), value: 1)
                    .flatMap { channel.setOption(Self.ipv6Option(.ipv6_multicast_hops), value: 1) }
                : channel.setOption(ChannelOptions.ipOption(.ip_multicast_loop), value: 1)
                    .flatMap { channel.setOption(ChannelOptions.ipOption(.ip_multicast_ttl), value: 1) }
            return options.flatMap { multicast.joinGroup(group) }
                .map { Socket(channel: channel, group: group, host: host) }
                .flatMapError { error in channel.close().flatMapThrowing { throw error } }
        }
    }

    /// An IPPROTO_IPV6 option (NIO names levels `socket`, `ip` and `tcp` only).
    private static func ipv6Option(_ name: NIOBSDSocket.Option) -> ChannelOptions.Types.SocketOption {
        ChannelOptions.Types.SocketOption(level: .ipv6, name: name)
    }

    private func poll() {
        let now = Engine.now()
        if sockets.count < Self.groups.count, !reopening, now >= nextReopen { _ = openMissing() }
        guard !sockets.isEmpty else { return }
        announcer.update(torrents(), now: now)
        guard let due = announcer.nextPoll(), now >= due else { return }
        for hashes in announcer.poll(now: now) {
            for socket in sockets {
                let announce = LSDAnnouncement(host: socket.host, port: listenPort, infoHashes: hashes,
                                               cookie: announcer.cookie)
                let buffer = socket.channel.allocator.buffer(bytes: announce.encoded)
                socket.channel.writeAndFlush(AddressedEnvelope(remoteAddress: socket.group, data: buffer))
                    .whenFailure { [logger] error in
                        logger.debug("LSD: send failed", metadata: ["group": "\(socket.host)", "error": "\(error)"])
                    }
                sent += 1
            }
            logger.debug("LSD: announced", metadata: ["torrents": "\(hashes.count)"])
        }
    }

    private func received(_ bytes: [UInt8], from sender: SocketAddress) {
        // Link-local IPv6 senders need a zone to be dialed, which a peer address cannot carry.
        guard let ip = sender.ipAddress, !ip.lowercased().hasPrefix("fe80:") else { return }
        announcer.update(torrents(), now: Engine.now())
        let peers = announcer.received(bytes, from: ip, now: Engine.now())
        guard !peers.isEmpty else { return }
        peersFound += peers.count
        logger.debug("LSD: peers", metadata: ["from": "\(ip)", "count": "\(peers.count)"])
        found(peers)
    }

    /// The status: joined groups, datagrams sent, peers found and announces dropped.
    var status: LSDStatus {
        LSDStatus(groups: sockets.map(\.host), announcesSent: sent, peersFound: peersFound,
                  dropped: announcer.dropped + announcer.malformed, ownHeard: announcer.ownIgnored)
    }

    func close() -> EventLoopFuture<Void> {
        closed = true
        task?.cancel()
        task = nil
        let closes = sockets.map { $0.channel.close() }
        sockets = []
        return EventLoopFuture.andAllComplete(closes, on: loop)
    }
}
