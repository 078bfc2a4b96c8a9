import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TorrentEngine

/// The HTTP range server of `torrentfs serve` and the mount's `-o http=`: the session's
/// torrents as URLs any player, browser or `curl` can stream, through the engine's
/// streaming readers. Its own event loops: many clients at once do not block each other,
/// the engine, or a mount.
public final class TorrentHTTPServer: Sendable {
    public struct Configuration: Sendable {
        /// Where to listen; 127.0.0.1:8888 unless asked otherwise.
        public var host = "127.0.0.1"
        public var port = 8888
        /// Names accepted in `Host` besides `localhost` (IP literals always are).
        public var hostNames: [String] = []
        /// Seconds a request for a magnet's file waits for its metadata.
        public var metadataTimeout = 60.0
        /// Readahead and timeout of each response's reader.
        public var readerOptions = ReaderOptions()
        /// Adds a torrent from a `POST /` body in any `.add` form; nil: POST is refused (403).
        public var add: (@Sendable ([UInt8]) async throws -> Void)?
        /// A request's head must be complete this long after its connection opens, or after
        /// the first byte of a request that follows another on a kept-alive connection.
        public var headerTimeout = TorrentHTTPServer.headerTimeout
        /// A kept-alive connection with no next request, or a request body that stops
        /// coming, is closed after this long. A response body waiting for its client to read
        /// is not idle.
        public var idleTimeout = TorrentHTTPServer.idleTimeout
        /// Connections open at once; one more is answered 503 and closed.
        public var maxConnections = TorrentHTTPServer.maxConnections

        public init() {}
    }

    /// Default `Configuration.headerTimeout` (nginx's `client_header_timeout` is 60 s, Go's
    /// servers commonly use 5-10 s): a client that connects and sends nothing, or stalls in
    /// its headers, is closed after this.
    public static let headerTimeout = TimeAmount.seconds(10)
    /// Default `Configuration.idleTimeout` (nginx's `keepalive_timeout` is 75 s): long enough
    /// for a player between two range requests, short enough that idle clients cannot pile up.
    public static let idleTimeout = TimeAmount.seconds(60)
    /// Default `Configuration.maxConnections`: bounds the sockets, handlers and readers held
    /// for clients (each connection costs at most one reader chunk plus its write buffer).
    public static let maxConnections = 512

    /// A client's queued output above this stops reading from the torrent until it drains.
    static let writeBuffer = ChannelOptions.Types.WriteBufferWaterMark(low: 256 << 10, high: 1 << 20)

    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    public let port: Int

    private init(group: MultiThreadedEventLoopGroup, channel: Channel) {
        self.group = group
        self.channel = channel
        port = channel.localAddress?.port ?? 0
    }

    /// Starts listening; throws when the address cannot be bound.
    public static func start(session: Session, configuration: Configuration, logger: Logger) async throws -> TorrentHTTPServer {
        let responder = Responder(catalog: Catalog(session: session, metadataTimeout: configuration.metadataTimeout),
                                  policy: HostPolicy(extraNames: configuration.hostNames),
                                  readerOptions: configuration.readerOptions, add: configuration.add)
        let timeouts = ConnectionClock.Timeouts(header: configuration.headerTimeout, idle: configuration.idleTimeout)
        let open = OpenConnections(limit: configuration.maxConnections)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.writeBufferWaterMark, value: writeBuffer)
                // A client that half-closes after its request (`nc -N`) still gets the answer.
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        guard open.admit() else {
                            return try channel.pipeline.syncOperations.addHandler(RefuseHandler())
                        }
                        channel.closeFuture.whenComplete { _ in open.release() }
                        try channel.pipeline.syncOperations.addHandler(RequestBytesHandler())
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(HTTPHandler(responder: responder, timeouts: timeouts))
                    }
                }
                .bind(host: configuration.host, port: configuration.port).get()
            let server = TorrentHTTPServer(group: group, channel: channel)
            logger.info("HTTP server listening", metadata: ["address": "\(configuration.host):\(server.port)"])
            return server
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// The count of open connections against `Configuration.maxConnections`.
private final class OpenConnections: Sendable {
    private let count = Mutex(0)
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Counts one more connection, or false when the limit is reached.
    func admit() -> Bool {
        count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func release() { count.withLock { $0 -= 1 } }
}

/// A connection over the limit: 503 with `Retry-After`, then closed, without reading it.
private final class RefuseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    static let answer = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + "Content-Length: 21\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections\n"

    private var refused = false

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context) }
    }

    func channelActive(context: ChannelHandlerContext) { refuse(context) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    private func refuse(_ context: ChannelHandlerContext) {
        guard !refused else { return }
        refused = true
        let channel = context.channel
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(channel.allocator.buffer(string: Self.answer)), promise: written)
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }
}
