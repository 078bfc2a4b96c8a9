/// The uTP connections of one UDP socket: finds each datagram's connection by sender and
/// connection id, accepts SYNs, and bounds what strangers can make us hold. Sans-I/O like
/// `UTPSocket`: datagrams and `now:` in; sockets to service, replies and a deadline out.
///
/// Bounds: at most `maxConnections` connections; at most `maxHalfOpen` answered SYNs
/// waiting for their first DATA, `maxHalfOpenPerAddress` of them from one address (the
/// oldest is forgotten for a new one: that address's own when it has its share, else the
/// oldest of all; so a SYN flood costs a fixed amount of memory and a flood from one
/// address never pushes out another peer's handshake), each forgotten after
/// `halfOpenTimeout`. A half-open connection holds no buffers yet.
public final class UTPEndpoint<Address: Hashable & Sendable> {
    public struct Key: Hashable, Sendable {
        public var address: Address
        public var recvID: UInt16
    }

    public struct Limits: Sendable {
        public var maxConnections = 512
        public var maxHalfOpen = 64
        public var maxHalfOpenPerAddress = 4
        public var halfOpenTimeout: Int64 = 10_000_000_000

        public init() {}
    }

    /// What became of a datagram.
    public enum Routing: Equatable, Sendable {
        /// For this connection (call `socket(key)` for its output).
        case connection(Key)
        /// A new connection answered (half-open until its first DATA).
        case accepted(Key)
        case dropped(Drop)
    }

    public enum Drop: Equatable, Sendable {
        case malformed(UTPError)
        case unknownConnection
        case refusedSyn
    }

    public var limits: Limits
    /// Whether SYNs from peers are answered.
    public var accepting = true
    private var sockets: [Key: UTPSocket] = [:]
    private var halfOpen: [Key: Int64] = [:]
    private var replies: [(Address, [UInt8])] = []
    private var random: () -> UInt16
    private let configure: (Address) -> UTPSocket.Configuration
    /// Datagrams dropped, by reason (for the status and tests).
    public private(set) var drops: [String: Int] = [:]
    /// Half-open connections forgotten to make room for newer ones.
    public private(set) var evictions = 0

    public init(limits: Limits = Limits(), random: @escaping () -> UInt16,
                configure: @escaping (Address) -> UTPSocket.Configuration) {
        self.limits = limits
        self.random = random
        self.configure = configure
    }

    public var count: Int { sockets.count }
    public var halfOpenCount: Int { halfOpen.count }

    public func socket(_ key: Key) -> UTPSocket? { sockets[key] }

    /// Forgets a connection (closed, or no longer wanted).
    public func remove(_ key: Key) {
        sockets[key] = nil
        halfOpen[key] = nil
    }

    /// Opens a connection to `address`; nil when the table is full.
    public func connect(to address: Address, now: Int64) -> Key? {
        guard sockets.count < limits.maxConnections else { return nil }
        // Our receive id and the send id (+1) both free for this peer, so the peer's
        // view of the pair cannot collide with another of our connections to it.
        var id = random()
        var attempts = 0
        while sockets[Key(address: address, recvID: id)] != nil
            || sockets[Key(address: address, recvID: id &+ 1)] != nil
            || sockets[Key(address: address, recvID: id &- 1)] != nil {
            attempts += 1
            if attempts > 64 { return nil }
            id = random()
        }
        let key = Key(address: address, recvID: id)
        sockets[key] = UTPSocket.connect(recvID: id, seq: random(), now: now, configuration: configure(address))
        return key
    }

    /// Routes one datagram read into a buffer of `bufferSize` bytes.
    public func receive(_ bytes: [UInt8], from address: Address, bufferSize: Int, now: Int64) -> Routing {
        let packet: UTPPacket
        do {
            packet = try UTPPacket.decode(bytes, bufferSize: bufferSize)
        } catch {
            return drop(.malformed(error), "malformed")
        }
        if packet.kind == .syn { return receiveSyn(packet, from: address, now: now) }
        var key = Key(address: address, recvID: packet.connectionID)
        if sockets[key] == nil, packet.kind == .reset {
            // A RESET may carry our send id instead (the peer's view of the pair).
            for candidate in [packet.connectionID &- 1, packet.connectionID &+ 1] {
                let other = Key(address: address, recvID: candidate)
                if let socket = sockets[other], socket.sendID == packet.connectionID { key = other }
            }
        }
        guard let socket = sockets[key] else {
            if packet.kind == .data || packet.kind == .fin {
                // BEP 29: a packet for no connection is answered with RESET.
                let reset = UTPPacket(kind: .reset, connectionID: packet.connectionID, timestamp: 0,
                                      seq: random(), ack: packet.seq)
                replies.append((address, reset.encoded))
            }
            return drop(.unknownConnection, "unknown connection")
        }
        socket.receive(packet, now: now)
        if socket.state != .synReceived { halfOpen[key] = nil }
        return .connection(key)
    }

    private func receiveSyn(_ syn: UTPPacket, from address: Address, now: Int64) -> Routing {
        let key = Key(address: address, recvID: syn.connectionID &+ 1)
        if let existing = sockets[key] {
            // A retransmitted SYN gets the same STATE; another SYN on a live id is a
            // collision or stale, and dropped.
            guard existing.sendID == syn.connectionID, existing.synSeq == syn.seq,
                  existing.state != .synSent else {
                return drop(.refusedSyn, "colliding SYN")
            }
            existing.receive(syn, now: now)
            return .connection(key)
        }
        guard accepting else { return drop(.refusedSyn, "SYN refused") }
        let own = halfOpen.filter { $0.key.address == address }
        if own.count >= limits.maxHalfOpenPerAddress, let oldest = own.min(by: { $0.value < $1.value })?.key {
            remove(oldest)
            evictions += 1
        } else if halfOpen.count >= limits.maxHalfOpen, let oldest = halfOpen.min(by: { $0.value < $1.value })?.key {
            remove(oldest)
            evictions += 1
        }
        guard sockets.count < limits.maxConnections else { return drop(.refusedSyn, "table full") }
        sockets[key] = UTPSocket.accept(syn, seq: random(), now: now, configuration: configure(address))
        halfOpen[key] = now
        return .accepted(key)
    }

    private func drop(_ reason: Drop, _ name: String) -> Routing {
        drops[name, default: 0] += 1
        return .dropped(reason)
    }

    /// Replies to strangers (RESETs) to send.
    public func takeReplies() -> [(Address, [UInt8])] {
        defer { replies.removeAll() }
        return replies
    }

    /// The earliest deadline of any connection or half-open expiry.
    public var deadline: Int64? {
        var earliest: Int64?
        for socket in sockets.values {
            if let due = socket.deadline { earliest = min(earliest ?? due, due) }
        }
        for since in halfOpen.values { earliest = min(earliest ?? .max, since + limits.halfOpenTimeout) }
        return earliest
    }

    /// Runs due timers; returns the connections that may have output. Half-open
    /// connections past their timeout are forgotten.
    public func tick(now: Int64) -> [Key] {
        for (key, since) in halfOpen where now - since >= limits.halfOpenTimeout { remove(key) }
        var touched: [Key] = []
        for (key, socket) in sockets {
            guard let due = socket.deadline, due <= now else { continue }
            socket.tick(now: now)
            touched.append(key)
        }
        return touched
    }
}
