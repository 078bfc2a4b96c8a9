import BitTorrent
import Logging
import NIOCore
import NIOPosix

/// Maps the listen port (TCP and UDP) on the IPv4 default gateway with NAT-PMP, keeps
/// the mappings renewed, and deletes them at shutdown. `NATPMPClient` decides; this class
/// owns the socket and the timer. Confined to the engine's event loop.
final class PortMapper: @unchecked Sendable {
    /// How long shutdown waits for the gateway to confirm the deletions.
    static let stopTimeout = TimeAmount.seconds(1)

    private let loop: EventLoop
    private let logger: Logger
    private let gateway: SocketAddress
    private let started: Int64
    private var client: NATPMPClient
    private var channel: Channel?
    private var wakeup: Scheduled<Void>?
    private var stopped: EventLoopPromise<Void>?
    private(set) var status: PortMappingStatus

    private init(loop: EventLoop, logger: Logger, gateway: SocketAddress, listenPort: UInt16, lease: Int) {
        self.loop = loop
        self.logger = logger
        self.gateway = gateway
        started = Engine.now()
        client = NATPMPClient(internalPort: listenPort, lifetime: UInt32(clamping: lease))
        status = PortMappingStatus(method: "natpmp", gateway: gateway.ipAddress)
    }

    /// Starts mapping `listenPort` on `gatewayAddress` (or, when nil, the default
    /// gateway); nil when there is no gateway to ask. Mapping goes on in the background.
    static func start(loop: EventLoop, logger: Logger, listenPort: Int, gatewayAddress: String?,
                      lease: Int) -> PortMapper? {
        guard let host = gatewayAddress ?? DefaultGateway.current(),
              let gateway = try? SocketAddress(ipAddress: host, port: NATPMPMessage.serverPort) else {
            logger.info("port mapping: no IPv4 default gateway")
            return nil
        }
        let mapper = PortMapper(loop: loop, logger: logger, gateway: gateway, listenPort: UInt16(clamping: listenPort),
                                lease: lease)
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
                case .failure(let error):
                    mapper.status.error = "no socket: \(error)"
                    logger.warning("port mapping: no socket", metadata: ["error": "\(error)"])
                }
            }
        return mapper
    }

    private func received(_ bytes: [UInt8], from sender: SocketAddress) {
        // Only the gateway's port 5351 speaks for the gateway (RFC 6886 §3.1).
        guard sender.ipAddress == gateway.ipAddress, sender.port == NATPMPMessage.serverPort else { return }
        perform(client.received(bytes, now: Engine.now()))
    }

    private func perform(_ events: [NATPMPClient.Event]) {
        for event in events {
            switch event {
            case .send(let bytes):
                guard let channel else { continue }
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: gateway, data: channel.allocator.buffer(bytes: bytes)),
                                      promise: nil)
            case .externalAddress(let address):
                status.externalAddress = address
                logger.info("port mapping: external address", metadata: ["address": "\(address)"])
            case .mapped(let transport, let port, let lifetime, let renewal):
                let seconds = Double(Engine.now() - started) / 1e9
                switch transport {
                case .tcp: status.tcpPort = Int(port)
                case .udp: status.udpPort = Int(port)
                }
                if status.tcpPort != nil && status.udpPort != nil && status.mappedAfter == nil {
                    status.mappedAfter = seconds
                }
                status.lifetime = Int(lifetime)
                if renewal { status.renewals += 1 }
                logger.info("port mapping: mapped", metadata: ["transport": "\(transport)", "external port": "\(port)",
                                                               "lifetime": "\(lifetime)", "after": "\(seconds)"])
            case .unmapped(let transport):
                switch transport {
                case .tcp: status.tcpPort = nil
                case .udp: status.udpPort = nil
                }
                logger.info("port mapping: removed", metadata: ["transport": "\(transport)"])
            case .failed(let reason):
                status.error = reason
                logger.info("port mapping: NAT-PMP failed", metadata: ["reason": "\(reason)"])
            }
        }
        if client.isFinished, let stopped {
            self.stopped = nil
            finish(stopped)
            return
        }
        schedule()
    }

    private func schedule() {
        wakeup?.cancel()
        wakeup = nil
        guard let next = client.nextTimeout else { return }
        wakeup = loop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(UInt64(max(next, 0)))) { [self] in
            wakeup = nil
            perform(client.tick(now: Engine.now()))
        }
    }

    /// Deletes the mappings; completes once the gateway confirmed or `stopTimeout` passed.
    func stop() -> EventLoopFuture<Void> {
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
