import AsyncHTTPClient
import BitTorrent
import Logging
import NIOCore
import NIOPosix

/// Maps the listen port (TCP and UDP) on the IPv4 default gateway with NAT-PMP and UPnP
/// IGD (`UPnPMapper`); keeps the mappings renewed, and deletes them at shutdown.
/// NAT-PMP goes first; UPnP starts when NAT-PMP has had no answer within
/// `upnpHeadStart`, fails, or is off. The first to map wins: a NAT-PMP mapping stops UPnP
/// (deleting what it mapped), a UPnP mapping abandons NAT-PMP's retries. `NATPMPClient`
/// decides for NAT-PMP; this class owns its socket and timer. Confined to the engine's
/// event loop.
final class PortMapper: @unchecked Sendable {
    /// How long shutdown waits for the gateway to confirm the deletions.
    static let stopTimeout = TimeAmount.seconds(1)
    /// A NAT-PMP gateway answers within a round trip (~20 ms measured); without an answer
    /// by then, UPnP runs alongside instead of after NAT-PMP's last retry (~4 s later).
    static let upnpHeadStart = TimeAmount.milliseconds(250)

    private let loop: EventLoop
    private let logger: Logger
    private let gateway: SocketAddress?
    private let started: Int64
    private var client: NATPMPClient
    /// UPnP, once NAT-PMP failed (nil while NAT-PMP is in use, or UPnP is off).
    private var upnp: UPnPMapper?
    private let startUPnP: (() -> UPnPMapper)?
    private var channel: Channel?
    private var wakeup: Scheduled<Void>?
    private var stopped: EventLoopPromise<Void>?
    /// The gateway answered NAT-PMP (a mapping or an error).
    private var natpmpAnswered = false
    /// UPnP mapped first: NAT-PMP's retries stopped, its answers ignored.
    private var natpmpAbandoned = false
    private(set) var status: PortMappingStatus

    private init(loop: EventLoop, logger: Logger, gateway: SocketAddress?, listenPort: UInt16, lease: Int,
                 upnp: HTTPClient?) {
        self.loop = loop
        self.logger = logger
        self.gateway = gateway
        started = Engine.now()
        client = NATPMPClient(internalPort: listenPort, lifetime: UInt32(clamping: lease))
        status = PortMappingStatus(method: gateway == nil ? "upnp" : "natpmp", gateway: gateway?.ipAddress)
        let owner = WeakMapper()
        startUPnP = upnp.map { httpClient in
            { UPnPMapper(loop: loop, logger: logger, httpClient: httpClient, listenPort: listenPort, lease: lease) { action in
                owner.mapper?.upnpReported(action)
            } }
        }
        owner.mapper = self
    }

    /// Starts mapping `listenPort`: with NAT-PMP on `gatewayAddress` (or, when nil, the
    /// default gateway) when `natpmp`, with UPnP through `upnp` (the engine's HTTP client)
    /// when NAT-PMP is off or fails. Nil when there is nothing to do (no method, or NAT-PMP
    /// only and no gateway). Mapping goes on in the background.
    static func start(loop: EventLoop, logger: Logger, listenPort: Int, gatewayAddress: String?,
                      lease: Int, natpmp: Bool, upnp: HTTPClient?) -> PortMapper? {
        let host = natpmp ? gatewayAddress ?? DefaultGateway.current() : nil
        let gateway = host.flatMap { try? SocketAddress(ipAddress: $0, port: NATPMPMessage.serverPort) }
        guard gateway != nil || upnp != nil else {
            logger.info("port mapping: no IPv4 default gateway")
            return nil
        }
        let mapper = PortMapper(loop: loop, logger: logger, gateway: gateway, listenPort: UInt16(clamping: listenPort),
                                lease: lease, upnp: upnp)
        guard gateway != nil else {
            mapper.fallBackToUPnP()
            return mapper
        }
        DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramReceiver { bytes, sender in
                        mapper.received(bytes, from: sender)
                    })
                }
            }
            .bind(host: "0.0.0.0", port: 0)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    mapper.channel = channel
                    mapper.perform(mapper.client.start(now: Engine.now()))
                    loop.scheduleTask(in: upnpHeadStart) {
                        if !mapper.natpmpAnswered { mapper.startUPnP(reason: "no NAT-PMP answer yet") }
                    }
                case .failure(let error):
                    mapper.status.error = "no socket: \(error)"
                    logger.warning("port mapping: no socket", metadata: ["error": "\(error)"])
                    mapper.fallBackToUPnP()
                }
            }
        return mapper
    }

    private func received(_ bytes: [UInt8], from sender: SocketAddress) {
        // Only the gateway's port 5351 speaks for the gateway (RFC 6886 §3.1).
        guard !natpmpAbandoned, sender.ipAddress == gateway?.ipAddress, sender.port == NATPMPMessage.serverPort
        else { return }
        natpmpAnswered = true
        perform(client.received(bytes, now: Engine.now()))
    }

    private func perform(_ events: [NATPMPClient.Event]) {
        for event in events {
            switch event {
            case .send(let bytes):
                guard let channel, let gateway else { continue }
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: gateway, data: channel.allocator.buffer(bytes: bytes)),
                                      promise: nil)
            case .externalAddress(let address):
                status.externalAddress = address
                logger.info("port mapping: external address", metadata: ["address": "\(address)"])
            case .mapped(let transport, let port, let lifetime, let renewal):
                if !renewal { stopUPnP() }
                record(transport, port: port, lifetime: Int(lifetime), renewal: renewal)
            case .unmapped(let transport):
                record(transport, port: nil, lifetime: nil, renewal: false)
            case .failed(let reason):
                status.error = reason
                logger.info("port mapping: NAT-PMP failed", metadata: ["reason": "\(reason)"])
                if stopped == nil && client.mappings.isEmpty { fallBackToUPnP() }
            }
        }
        if client.isFinished, let stopped {
            self.stopped = nil
            finish(stopped)
            return
        }
        schedule()
    }

    /// A mapping made or renewed (`port`), or removed (nil), into the status and the log.
    private func record(_ transport: NATPMPMessage.Transport, port: UInt16?, lifetime: Int?, renewal: Bool) {
        switch transport {
        case .tcp: status.tcpPort = port.map(Int.init)
        case .udp: status.udpPort = port.map(Int.init)
        }
        guard let port else {
            logger.info("port mapping: removed", metadata: ["method": "\(status.method)", "transport": "\(transport)"])
            return
        }
        let seconds = Double(Engine.now() - started) / 1e9
        if status.tcpPort != nil && status.udpPort != nil && status.mappedAfter == nil { status.mappedAfter = seconds }
        status.lifetime = lifetime
        if renewal { status.renewals += 1 }
        logger.info("port mapping: mapped", metadata: ["method": "\(status.method)", "transport": "\(transport)",
                                                       "external port": "\(port)", "lifetime": "\(lifetime ?? 0)",
                                                       "after": "\(seconds)"])
    }

    private func schedule() {
        wakeup?.cancel()
        wakeup = nil
        guard !natpmpAbandoned, let next = client.nextTimeout else { return }
        wakeup = loop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(UInt64(max(next, 0)))) { [self] in
            wakeup = nil
            perform(client.tick(now: Engine.now()))
        }
    }

    /// NAT-PMP failed or is off: UPnP is the method (started if not yet).
    private func fallBackToUPnP() {
        guard startUPnP != nil else { return }
        status.method = "upnp"
        status.error = nil
        startUPnP(reason: "NAT-PMP failed or off")
    }

    /// Starts UPnP alongside NAT-PMP (or after it); once only.
    private func startUPnP(reason: String) {
        guard upnp == nil, stopped == nil, let startUPnP else { return }
        logger.debug("port mapping: UPnP starts", metadata: ["reason": "\(reason)"])
        let mapper = startUPnP()
        upnp = mapper
        mapper.start()
    }

    /// NAT-PMP mapped: UPnP, if it ran alongside, stops and deletes what it mapped.
    private func stopUPnP() {
        guard let upnp else { return }
        self.upnp = nil
        status.method = "natpmp"
        status.error = nil
        _ = upnp.stop()
    }

    /// UPnP mapped first: NAT-PMP (never answered, or failed) stops retrying.
    private func abandonNATPMP() {
        guard !natpmpAbandoned, client.mappings.isEmpty else { return }
        natpmpAbandoned = true
        status.method = "upnp"
        status.error = nil
        wakeup?.cancel()
        wakeup = nil
        channel?.close(promise: nil)
        channel = nil
    }

    private func upnpReported(_ action: UPnPClient.Action) {
        switch action {
        case .externalAddress(let address):
            status.externalAddress = address
        case .mapped(let transport, let port, let lease, let renewal):
            if !renewal { abandonNATPMP() }
            record(transport, port: port, lifetime: lease, renewal: renewal)
        case .unmapped(let transport):
            record(transport, port: nil, lifetime: nil, renewal: false)
        case .failed(let reason):
            if status.method == "upnp" { status.error = reason }
            logger.info("port mapping: UPnP failed", metadata: ["reason": "\(reason)"])
        case .search, .fetch, .soap:
            break
        }
    }

    /// Deletes the mappings; completes once the gateway confirmed or `stopTimeout` passed.
    func stop() -> EventLoopFuture<Void> {
        if let upnp {
            let closing = channel?.close() ?? loop.makeSucceededVoidFuture()
            channel = nil
            return upnp.stop().and(closing.recover { _ in }).map { _ in }
        }
        let promise = loop.makePromise(of: Void.self)
        stopped = promise
        loop.scheduleTask(in: Self.stopTimeout) { [self] in
            if let stopped {
                self.stopped = nil
                finish(stopped)
            }
        }
        perform(client.stop(now: Engine.now()))
        return promise.futureResult
    }

    private func finish(_ promise: EventLoopPromise<Void>) {
        wakeup?.cancel()
        wakeup = nil
        guard let channel else { return promise.succeed() }
        self.channel = nil
        channel.close().whenComplete { _ in promise.succeed() }
    }
}

/// The mapper as its UPnP callback sees it (set once, at init).
private final class WeakMapper: @unchecked Sendable {
    weak var mapper: PortMapper?
}
