import BitTorrent
import Logging
import NIOCore

/// The session's uTP connections on its one UDP socket: feeds them the `.utp` datagrams,
/// sends what they emit (written per datagram, flushed once per batch), runs their timers
/// on the engine's loop, and turns their events into the engine's connection events.
/// Accepted connections reach the engine at their first DATA (a SYN alone holds only a
/// small half-open entry, bounded by `UTPEndpoint`). Confined to the engine's loop
/// (`@unchecked Sendable` only so its timers on that loop can carry it).
final class UTPService: @unchecked Sendable {
    typealias Key = UTPEndpoint<SocketAddress>.Key

    /// A dial that has not connected by then fails.
    static let dialTimeout = TimeAmount.milliseconds(500)
    /// Loopback carries datagrams up to 64 KiB; we read any UDP payload whole (our
    /// receive buffer, `UDPPort.receiveBufferSize`, is larger than the largest).
    static let loopbackDatagram = UTPPacket.maxDatagram

    weak var engine: Engine?
    private let loop: EventLoop
    private let port: UDPPort
    private let logger: Logger
    let endpoint: UTPEndpoint<SocketAddress>
    private var transports: [Key: UTPTransport] = [:]
    private var dials: [Key: (Result<UTPTransport, Error>) -> Void] = [:]
    private var touched = Set<Key>()
    /// The timeout count last logged per connection (a timeout is logged once).
    private var loggedTimeouts: [Key: Int] = [:]
    private var timer: Scheduled<Void>?
    private var timerDeadline: Int64?

    init(engine: Engine, port: UDPPort, accepting: Bool) {
        self.engine = engine
        loop = engine.loop
        self.port = port
        logger = engine.logger
        var generator = SystemRandomNumberGenerator()
        endpoint = UTPEndpoint(random: { UInt16.random(in: 0...UInt16.max, using: &generator) },
                               configure: Self.configuration(for:))
        endpoint.accepting = accepting
    }

    /// Packet sizes for a peer: the internet-safe size (1472 over IPv4, 1452 over IPv6)
    /// until the peer says it reads more; more only on loopback, where the path carries it.
    static func configuration(for address: SocketAddress) -> UTPSocket.Configuration {
        var configuration = UTPSocket.Configuration()
        if address.protocol == .inet6 { configuration.safeDatagram = UTPSocket.Configuration.ipv6SafeDatagram }
        configuration.pathDatagram = isLoopback(address) ? loopbackDatagram : configuration.safeDatagram
        return configuration
    }

    static func isLoopback(_ address: SocketAddress) -> Bool {
        guard let ip = address.ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.lowercased().hasPrefix("::ffff:127.")
    }

    func socket(_ key: Key) -> UTPSocket? { endpoint.socket(key) }

    // MARK: Datagrams

    /// One datagram from the UDP port (its sender in plain form).
    func received(_ bytes: [UInt8], from address: SocketAddress) {
        switch endpoint.receive(bytes, from: address, bufferSize: UDPPort.receiveBufferSize, now: Engine.now()) {
        case .connection(let key), .accepted(let key):
            touched.insert(key)
        case .dropped:
            break
        }
        for (address, reply) in endpoint.takeReplies() { port.write(reply, to: address) }
    }

    /// The UDP read batch is over: owed acks go out, output is handled, the port flushed.
    func batchDone() {
        let now = Engine.now()
        let keys = touched
        touched.removeAll(keepingCapacity: true)
        for key in keys {
            endpoint.socket(key)?.drained(now: now)
            service(key)
        }
        port.flush()
        rescheduleTimer()
    }

    // MARK: Connections

    /// Dials `address` over uTP; `completion` runs once: with the transport when the
    /// handshake completes, or with an error (refused, timed out, `dialTimeout` passed).
    /// Returns the dial's key (for `cancelDial`), nil if it failed at once.
    @discardableResult
    func dial(_ address: SocketAddress, completion: @escaping (Result<UTPTransport, Error>) -> Void) -> Key? {
        guard let key = endpoint.connect(to: address, now: Engine.now()) else {
            completion(.failure(EngineError.listenFailed("uTP connection table full")))
            return nil
        }
        dials[key] = completion
        service(key)
        port.flush()
        rescheduleTimer()
        loop.scheduleTask(in: Self.dialTimeout) { [self] in
            guard let pending = dials[key] else { return }
            cancelDial(key)
            pending(.failure(UTPDialError.timedOut))
        }
        return key
    }

    /// Abandons a dial still waiting for its handshake (a RESET goes out); its completion
    /// never runs. Nothing happens if it already completed.
    func cancelDial(_ key: Key) {
        guard dials.removeValue(forKey: key) != nil else { return }
        endpoint.socket(key)?.reset(now: Engine.now())
        service(key)
        endpoint.remove(key)
        port.flush()
    }

    func flush(_ key: Key) {
        guard let socket = endpoint.socket(key) else { return }
        socket.flush(now: Engine.now())
        service(key)
        port.flush()
        rescheduleTimer()
    }

    func close(_ key: Key) {
        guard let socket = endpoint.socket(key) else { return }
        socket.close(now: Engine.now())
        service(key)
        port.flush()
        rescheduleTimer()
    }

    /// Sends a connection's datagrams, delivers its bytes and acts on its events.
    private func service(_ key: Key) {
        guard let socket = endpoint.socket(key) else { return }
        for datagram in socket.takeDatagrams() { port.write(datagram, to: key.address) }
        let events = socket.takeEvents()
        // The connection exists before the bytes that came with its first DATA are delivered.
        if events.contains(.connected) { connected(key) }
        let delivered = socket.takeDelivered()
        if !delivered.isEmpty, let engine { transports[key]?.deliver(delivered, to: engine) }
        for event in events {
            switch event {
            case .connected:
                break
            case .endOfStream:
                transports[key]?.end()
                socket.close(now: Engine.now())
                for datagram in socket.takeDatagrams() { port.write(datagram, to: key.address) }
            case .closed(let reason):
                loggedTimeouts[key] = nil
                endpoint.remove(key)
                transports.removeValue(forKey: key)?.end()
                dials.removeValue(forKey: key)?(.failure(UTPDialError.closed(reason)))
            }
        }
    }

    private func connected(_ key: Key) {
        let transport = UTPTransport(key: key, service: self)
        transports[key] = transport
        if let dial = dials.removeValue(forKey: key) {
            dial(.success(transport))
        } else if let engine, !engine.acceptUTP(transport) {
            transports[key] = nil
            endpoint.socket(key)?.reset(now: Engine.now())
        }
    }

    // MARK: Timers

    private func rescheduleTimer() {
        guard let deadline = endpoint.deadline else {
            timer?.cancel()
            timer = nil
            timerDeadline = nil
            return
        }
        if let current = timerDeadline, current <= deadline, timer != nil { return }
        timer?.cancel()
        timerDeadline = deadline
        let delay = max(0, deadline - Engine.now())
        timer = loop.scheduleTask(in: .nanoseconds(delay)) { [self] in
            timer = nil
            timerDeadline = nil
            let now = Engine.now()
            for key in endpoint.tick(now: now) {
                if let socket = endpoint.socket(key), socket.timeouts > 0, socket.timeouts != loggedTimeouts[key] {
                    loggedTimeouts[key] = socket.timeouts
                    logger.debug("uTP retransmission timeout", metadata: ["peer": "\(key.address)", "state": "\(socket.diagnostics)"])
                }
                service(key)
            }
            port.flush()
            rescheduleTimer()
        }
    }

    /// Resets every connection (the session stops).
    func stop() {
        let now = Engine.now()
        for key in Array(transports.keys) {
            endpoint.socket(key)?.reset(now: now)
            service(key)
        }
        port.flush()
        timer?.cancel()
        timer = nil
    }
}

/// Why a uTP dial did not connect.
enum UTPDialError: Error, CustomStringConvertible {
    case timedOut
    case closed(UTPCloseReason)

    var description: String {
        switch self {
        case .timedOut: "no uTP handshake within \(UTPService.dialTimeout)"
        case .closed(let reason): "uTP connection closed (\(reason))"
        }
    }
}
