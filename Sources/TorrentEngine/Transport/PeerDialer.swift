import BitTorrent
import NIOCore
import NIOPosix

/// Opens peer connections and sets up accepted ones: the socket options of a peer
/// stream and the pipeline on top of it. The place where the transport (TCP today; uTP
/// next) and the encryption policy are chosen for each dial.
struct PeerDialer {
    /// A dial that has not connected by then fails (and the address backs off).
    static let connectTimeout = TimeAmount.seconds(10)
    /// Receive buffers grow with what a read returns, up to 1 MiB: a fast peer's blocks
    /// arrive in few reads (NIO's default stops at 64 KiB).
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16384, maximum: 1 << 20)

    let loop: EventLoop

    /// Connects to `address`; `setUp` builds the connection's pipeline once the socket exists.
    func dial(_ address: PeerAddress,
              setUp: @escaping @Sendable (Channel) throws -> Void) -> EventLoopFuture<Channel> {
        ClientBootstrap(group: loop)
            .connectTimeout(Self.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: Self.receiveBuffers)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try setUp(channel) } }
            .connect(host: address.host, port: Int(address.port))
    }

    /// Listens for peers on `host:port`; `setUp` builds each accepted connection's pipeline.
    func listen(host: String, port: Int,
                setUp: @escaping @Sendable (Channel) throws -> Void) -> EventLoopFuture<Channel> {
        ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: Self.receiveBuffers)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try setUp(channel) } }
            .bind(host: host, port: port)
    }
}
