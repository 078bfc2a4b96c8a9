import Logging
import NIOCore
import NIOPosix

/// The session's one UDP socket, bound to the listen port on every address (dual-stack
/// IPv6 when the host has it, IPv4 otherwise). Datagrams are routed by content (the
/// engine's `udpReceived`): UDP tracker answers to the trackers, uTP to `UTPService`.
/// Each read is into a buffer larger than any UDP payload, so no datagram is ever
/// truncated (`MSG_TRUNC`); reads are batched (`recvmmsg`) and `readComplete` runs after
/// each batch. Socket buffers are a few MiB so a uTP window of datagrams fits.
/// Confined to the engine's event loop (`@unchecked Sendable` only so futures on that
/// loop can carry it).
final class UDPPort: @unchecked Sendable {
    let channel: Channel
    /// Whether the socket is IPv6 (IPv4 peers then appear as `::ffff:a.b.c.d`).
    let isIPv6: Bool
    /// Datagrams for protocols not served yet, by kind (for the status).
    var dropped: [DatagramKind: Int] = [:]

    /// Bytes each datagram is read into: more than the largest UDP payload (65507).
    static let receiveBufferSize = 65536
    /// Datagrams read per system call (`recvmmsg`). NIO splits one receive buffer evenly
    /// among them and ignores `MSG_TRUNC`, so the buffer is `receiveBufferSize` per
    /// datagram (NIO pools it: allocated once, not per read).
    static let readBatch = 16
    /// SO_RCVBUF and SO_SNDBUF (the kernel may cap them at net.core.rmem_max/wmem_max).
    static let socketBufferSize = 4 << 20

    private init(channel: Channel) {
        self.channel = channel
        isIPv6 = channel.localAddress?.protocol == .inet6
    }

    var port: Int { channel.localAddress?.port ?? 0 }

    /// Binds `port` on `::`, else on `0.0.0.0`; `receive` gets each datagram, its sender
    /// in plain form (IPv4 as IPv4).
    static func bind(port: Int, on loop: EventLoop,
                     receive: @escaping @Sendable (DatagramKind, [UInt8], SocketAddress) -> Void,
                     readComplete: @escaping @Sendable () -> Void = {}) -> EventLoopFuture<UDPPort> {
        @Sendable func attempt(_ host: String) -> EventLoopFuture<Channel> {
            // No SO_REUSEADDR: with it, another process could bind the port too and take
            // datagrams meant for us.
            DatagramBootstrap(group: loop)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: receiveBufferSize * readBatch))
                .channelOption(.datagramVectorReadMessageCount, value: readBatch)
                .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(socketBufferSize))
                .channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(socketBufferSize))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPHandler(receive: receive,
                                                                                  readComplete: readComplete))
                    }
                }
                .bind(host: host, port: port)
        }
        return attempt("::").flatMapError { _ in attempt("0.0.0.0") }.map { UDPPort(channel: $0) }
    }

    func send(_ bytes: [UInt8], to address: SocketAddress) {
        guard let target = outgoing(address) else { return }
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: channel.allocator.buffer(bytes: bytes)),
                              promise: nil)
    }

    /// Queues a datagram; `flush` sends the queued ones.
    func write(_ bytes: [UInt8], to address: SocketAddress) {
        guard let target = outgoing(address) else { return }
        channel.write(AddressedEnvelope(remoteAddress: target, data: channel.allocator.buffer(bytes: bytes)),
                      promise: nil)
    }

    func flush() { channel.flush() }

    /// An IPv4 address as this socket needs it: mapped into IPv6 on a dual-stack socket.
    func outgoing(_ address: SocketAddress) -> SocketAddress? {
        guard isIPv6, address.protocol == .inet, let ip = address.ipAddress, let port = address.port else { return address }
        return try? SocketAddress(ipAddress: "::ffff:" + ip, port: port)
    }

    /// `::ffff:a.b.c.d` → `a.b.c.d`, so senders compare equal to resolved tracker addresses.
    static func plain(_ address: SocketAddress) -> SocketAddress {
        guard address.protocol == .inet6, let ip = address.ipAddress, let port = address.port,
              ip.lowercased().hasPrefix("::ffff:"), ip.contains(".") else { return address }
        return (try? SocketAddress(ipAddress: String(ip.dropFirst(7)), port: port)) ?? address
    }

    func close() -> EventLoopFuture<Void> { channel.close() }
}

/// Hands datagrams to the port's router.
private final class UDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let receive: @Sendable (DatagramKind, [UInt8], SocketAddress) -> Void
    let readComplete: @Sendable () -> Void

    init(receive: @escaping @Sendable (DatagramKind, [UInt8], SocketAddress) -> Void,
         readComplete: @escaping @Sendable () -> Void) {
        self.receive = receive
        self.readComplete = readComplete
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readComplete()
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = envelope.data.getBytes(at: envelope.data.readerIndex, length: envelope.data.readableBytes) ?? []
        receive(DatagramKind.classify(bytes), bytes, UDPPort.plain(envelope.remoteAddress))
    }
}
