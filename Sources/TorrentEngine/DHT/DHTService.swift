import BitTorrent
import Glibc
import Logging
import NIOCore

/// The DHT node on the session's UDP port: feeds it the `.dht` datagrams and the time
/// (one timer on the engine loop, set to the node's `nextTimer`), sends what it queues,
/// hands the peers it finds to their torrents, runs a get_peers lookup for every public
/// torrent (again every `lookupInterval`, more often while a torrent lacks peers) and
/// keeps the routing table in `dht.dat` in the state directory. Confined to the engine's
/// loop (`@unchecked Sendable` only so its closures can be scheduled there).
final class DHTService: @unchecked Sendable {
    /// A torrent is looked up again after this long.
    static let lookupInterval: Int64 = 15 * 60 * 1_000_000_000
    /// … or after this long while it has fewer than `wantedPeers` connections and is not seeding.
    static let hungryLookupInterval: Int64 = 60 * 1_000_000_000
    static let wantedPeers = 10
    /// The table is saved this often (and at shutdown).
    static let saveInterval: Int64 = 5 * 60 * 1_000_000_000
    /// How often torrents are checked for a lookup due.
    static let scheduleInterval = TimeAmount.milliseconds(250)
    static let fileName = "dht.dat"

    private let loop: EventLoop
    private let port: UDPPort
    private let logger: Logger
    private let statePath: String
    private var node: DHTNode
    private var timer: Scheduled<Void>?
    private var timerDeadline: Int64?
    private var scheduler: RepeatedTask?
    private var lastLookup: [InfoHash: Int64] = [:]
    private var lastSave: Int64
    private var peersFound = 0
    /// The engine's torrents due a lookup, and where found peers go (set by the engine).
    private let torrents: () -> [(infoHash: InfoHash, hungry: Bool)]
    private let found: (InfoHash, [PeerAddress]) -> Void
    private let announcePort: UInt16

    init(loop: EventLoop, port: UDPPort, logger: Logger, configuration: DHTNode.Configuration, saved: DHTSavedState?,
         statePath: String, announcePort: UInt16, torrents: @escaping () -> [(infoHash: InfoHash, hungry: Bool)],
         found: @escaping (InfoHash, [PeerAddress]) -> Void) {
        self.loop = loop
        self.port = port
        self.logger = logger
        self.statePath = statePath
        self.announcePort = announcePort
        self.torrents = torrents
        self.found = found
        let now = Engine.now()
        node = DHTNode(configuration: configuration, saved: saved, now: now)
        lastSave = now
    }

    /// Reads the saved table (nil when absent or damaged), off the loop.
    static func loadState(_ path: String) -> DHTSavedState? {
        guard let bytes = try? PosixFile.read(path, limit: DHTSavedState.maxFileSize) else { return nil }
        return DHTSavedState(decoding: bytes)
    }

    /// Routers as `HOST:PORT` resolved to addresses: numeric ones only (instant), or names
    /// too through getaddrinfo (which may wait on DNS: call that off the loop).
    static func resolve(_ routers: [String], ipv6: Bool, names: Bool) -> [CompactPeer] {
        var out: [CompactPeer] = []
        for text in routers {
            guard let address = PeerAddress(text) else { continue }
            var hints = addrinfo()
            hints.ai_family = ipv6 ? AF_UNSPEC : AF_INET
            hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
            hints.ai_flags = names ? 0 : AI_NUMERICHOST
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(address.host, String(address.port), &hints, &list) == 0 else { continue }
            defer { freeaddrinfo(list) }
            var entry = list
            while let current = entry?.pointee {
                if let peer = current.ai_addr.flatMap(compact), !out.contains(peer) {
                    out.append(peer)
                }
                entry = current.ai_next
            }
        }
        return out
    }

    func start() {
        node.start(now: Engine.now())
        flush()
        scheduler = loop.scheduleRepeatedTask(initialDelay: .zero, delay: Self.scheduleInterval) { [self] _ in
            scheduleLookups()
        }
    }

    func addRouters(_ routers: [CompactPeer]) {
        node.addRouters(routers, now: Engine.now())
        flush()
    }

    /// A peer told us our address (extension handshake `yourip`): a BEP 42 vote, as the
    /// `ip` field of DHT answers is. `host` is the peer's address.
    func externalAddressReported(_ ip: [UInt8], by host: String) {
        guard let voter = (try? SocketAddress(ipAddress: host, port: 1)).flatMap(Self.compact) else { return }
        node.vote(ip, by: voter.address, now: Engine.now())
    }

    func received(_ bytes: [UInt8], from address: SocketAddress) {
        guard let sender = Self.compact(address) else { return }
        node.received(bytes, from: sender, now: Engine.now())
        flush()
    }

    var status: DHTStatus {
        DHTStatus(nodeID: node.id.hex, nodes: node.nodeCount.ipv4, nodes6: node.nodeCount.ipv6,
                  lookups: node.lookupsInFlight, peersFound: peersFound, readOnly: node.configuration.readOnly)
    }

    /// Stops the timers and saves the table.
    func stop() {
        timer?.cancel()
        scheduler?.cancel()
        save()
    }

    private func save() {
        let bytes = node.savedState.encoded
        do {
            try FileStorage.makeParents(of: statePath)
            try ResumeData.writeAtomically(bytes, to: statePath, durable: false)
        } catch {
            logger.warning("DHT table not saved", metadata: ["path": "\(statePath)", "error": "\(error)"])
        }
    }

    /// A torrent was added: its lookup starts now, not at the next scheduling round.
    func torrentAdded() {
        scheduleLookups()
    }

    private func scheduleLookups() {
        let now = Engine.now()
        var wanted = Set<InfoHash>()
        for (infoHash, hungry) in torrents() {
            wanted.insert(infoHash)
            let interval = hungry ? Self.hungryLookupInterval : Self.lookupInterval
            if let last = lastLookup[infoHash], now - last < interval { continue }
            if node.getPeers(infoHash, announcePort: announcePort, now: now) { lastLookup[infoHash] = now }
        }
        lastLookup = lastLookup.filter { wanted.contains($0.key) }
        if now - lastSave >= Self.saveInterval {
            lastSave = now
            save()
        }
        flush()
    }

    /// Executes what the node queued and sets the timer to its next deadline.
    private func flush() {
        for output in node.takeOutputs() {
            switch output {
            case .send(let bytes, let to):
                if let address = try? SocketAddress(ipAddress: to.host, port: Int(to.port)) { port.send(bytes, to: address) }
            case .peers(let infoHash, let peers):
                peersFound += peers.count
                found(infoHash, peers.map { PeerAddress(host: $0.host, port: $0.port) })
            case .lookupFinished(let infoHash, let peers, let answered):
                logger.debug("DHT lookup done", metadata: ["torrent": "\(infoHash)", "peers": "\(peers)",
                                                           "answered": "\(answered)"])
            }
        }
        let deadline = node.nextTimer
        if let timerDeadline, timerDeadline <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        let delay = max(0, deadline - Engine.now())
        timer = loop.scheduleTask(in: .nanoseconds(delay)) { [self] in
            timerDeadline = nil
            node.tick(now: Engine.now())
            flush()
        }
    }

    // MARK: Addresses

    /// A socket address as 4 or 16 address bytes and a port.
    static func compact(_ address: SocketAddress) -> CompactPeer? {
        switch address {
        case .v4(let v4):
            var raw = v4.address.sin_addr
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            return CompactPeer(address: bytes, port: UInt16(bigEndian: v4.address.sin_port))
        case .v6(let v6):
            var raw = v6.address.sin6_addr
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            return CompactPeer(address: bytes, port: UInt16(bigEndian: v6.address.sin6_port))
        default:
            return nil
        }
    }

    /// A `sockaddr` from getaddrinfo as a compact address.
    private static func compact(_ pointer: UnsafeMutablePointer<sockaddr>) -> CompactPeer? {
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            var v4 = UnsafeRawPointer(pointer).loadUnaligned(as: sockaddr_in.self)
            return CompactPeer(address: withUnsafeBytes(of: &v4.sin_addr) { Array($0) }, port: UInt16(bigEndian: v4.sin_port))
        case AF_INET6:
            var v6 = UnsafeRawPointer(pointer).loadUnaligned(as: sockaddr_in6.self)
            return CompactPeer(address: withUnsafeBytes(of: &v6.sin6_addr) { Array($0) }, port: UInt16(bigEndian: v6.sin6_port))
        default:
            return nil
        }
    }
}
