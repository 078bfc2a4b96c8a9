import AsyncHTTPClient
import BitTorrent
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The sockets and HTTP calls of UPnP IGD port mapping: an SSDP socket for the search,
/// the engine's HTTP client for the description and the SOAP calls (2 s each), a timer
/// for `UPnPClient`'s retries and renewals. What happens is told to `report`. Confined to
/// the engine's event loop.
final class UPnPMapper: @unchecked Sendable {
    static let httpTimeout = TimeAmount.seconds(2)

    private let loop: EventLoop
    private let logger: Logger
    private let httpClient: HTTPClient
    private let report: (UPnPClient.Action) -> Void
    private var client: UPnPClient
    private var channel: Channel?
    private var wakeup: Scheduled<Void>?
    private var stopped: EventLoopPromise<Void>?

    init(loop: EventLoop, logger: Logger, httpClient: HTTPClient, listenPort: UInt16, lease: Int,
         report: @escaping (UPnPClient.Action) -> Void) {
        self.loop = loop
        self.logger = logger
        self.httpClient = httpClient
        self.report = report
        client = UPnPClient(internalPort: listenPort, lease: lease)
    }

    func start() {
        DatagramBootstrap(group: loop)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramReceiver { [self] bytes, sender in
                        guard let ip = sender.ipAddress else { return }
                        perform(client.ssdpReceived(bytes, from: ip))
                    })
                }
            }
            .bind(host: "0.0.0.0", port: 0)
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    self.channel = channel
                    perform(client.start(now: Engine.now()))
                case .failure(let error):
                    report(.failed("no SSDP socket: \(error)"))
                }
            }
    }

    private func perform(_ actions: [UPnPClient.Action]) {
        for action in actions {
            switch action {
            case .search(let bytes):
                guard let channel, let group = try? SocketAddress(ipAddress: UPnPMessages.ssdpGroup, port: UPnPMessages.ssdpPort)
                else { continue }
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: group, data: channel.allocator.buffer(bytes: bytes)))
                    .whenFailure { [logger] error in logger.debug("UPnP: search not sent", metadata: ["error": "\(error)"]) }
            case .fetch(let location):
                fetch(location)
            case .soap(let url, let soapAction, let body):
                post(url, soapAction: soapAction, body: body)
            case .externalAddress, .mapped, .unmapped, .failed:
                report(action)
            }
        }
        if client.isFinished { finish() }
        schedule()
    }

    private func schedule() {
        wakeup?.cancel()
        wakeup = nil
        guard !client.isFinished, let next = client.nextTimeout else { return }
        wakeup = loop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(UInt64(max(next, 0)))) { [self] in
            wakeup = nil
            perform(client.tick(now: Engine.now()))
        }
    }

    private func fetch(_ location: String) {
        guard let url = HTTPURL(location) else { return perform(client.described(location: location, status: 0, body: nil,
                                                                               localAddress: nil)) }
        let source = localAddress(towards: url.host, port: url.port)
        let request = HTTPClientRequest(url: location)
        let answer = exchange(request, limit: UPnPMessages.maxDescriptionLength)
        source.and(answer).whenComplete { [self] result in
            let (local, (status, body)) = (try? result.get()) ?? (nil, (0, nil))
            perform(client.described(location: location, status: status, body: body, localAddress: local))
        }
    }

    private func post(_ url: String, soapAction: String, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "text/xml; charset=\"utf-8\"")
        request.headers.add(name: "SOAPAction", value: soapAction)
        request.body = .bytes(ByteBuffer(string: body))
        exchange(request, limit: UPnPMessages.maxSOAPLength).whenComplete { [self] result in
            let (status, answer) = (try? result.get()) ?? (0, nil)
            perform(client.answered(status: status, body: answer, now: Engine.now()))
        }
    }

    /// Status and body (nil on failure) of a request, on the loop.
    private func exchange(_ request: HTTPClientRequest, limit: Int) -> EventLoopFuture<(Int, [UInt8]?)> {
        let promise = loop.makePromise(of: (Int, [UInt8]?).self)
        let client = httpClient
        promise.completeWithTask {
            do {
                let response = try await client.execute(request, timeout: Self.httpTimeout)
                let body = try await response.body.collect(upTo: limit)
                return (Int(response.status.code), body.getBytes(at: body.readerIndex, length: body.readableBytes))
            } catch {
                return (0, nil)
            }
        }
        return promise.futureResult
    }

    /// The address this host uses to reach `host` (a connected UDP socket's own address;
    /// nothing is sent).
    private func localAddress(towards host: String, port: Int) -> EventLoopFuture<String?> {
        DatagramBootstrap(group: loop).connect(host: host, port: port).flatMap { channel in
            let address = channel.localAddress?.ipAddress
            return channel.close().map { address }
        }.recover { _ in nil }
    }

    /// Deletes the mappings; completes once done or after `PortMapper.stopTimeout`.
    func stop() -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        stopped = promise
        loop.scheduleTask(in: PortMapper.stopTimeout) { [self] in finish() }
        perform(client.stop())
        return promise.futureResult
    }

    private func finish() {
        guard let stopped else { return }
        self.stopped = nil
        wakeup?.cancel()
        wakeup = nil
        guard let channel else { return stopped.succeed() }
        self.channel = nil
        channel.close().whenComplete { _ in stopped.succeed() }
    }
}
