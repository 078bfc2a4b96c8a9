import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
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

        public init() {}
    }

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
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(HTTPHandler(responder: responder))
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
