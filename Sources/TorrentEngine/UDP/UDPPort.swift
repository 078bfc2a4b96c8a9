import Logging
import NIOCore
import NIOPosix

/// The session's one UDP socket, bound to the listen port on every address (dual-stack
/// IPv6 when the host has it, IPv4 otherwise). Datagrams are routed by content: UDP
/// tracker answers to the trackers; DHT and uTP datagrams are counted and dropped until
/// those protocols exist. Confined to the engine's event loop (`@unchecked Sendable` only
/// so futures on that loop can carry it).
final class UDPPort: @unchecked Sendable {
    let channel: Channel
    /// Whether the socket is IPv6 (IPv4 peers then appear as `::ffff:a.b.c.d`).
    let isIPv6: Bool
    /// Datagrams for protocols not served yet, by kind (for the status).
    var dropped: [DatagramKind: Int] = [:]

    private init(channel: Channel) {
        self.channel = channel
        isIPv6 = channel.localAddress?.protocol == .inet6
    }

    var port: Int { channel.localAddress?.port ?? 0 }

    /// Binds `port` on `::`, else on `0.0.0.0`; `receive` gets each datagram, its sender
    /// in plain form (IPv4 as IPv4).
    static func bind(port: Int, on loop: EventLoop,
                     receive: @escaping @Sendable (DatagramKind, [UInt8], SocketAddress) -> Void) -> EventLoopFuture<UDPPort> {
        @Sendable func attempt(_ host: String) -> EventLoopFuture<Channel> {
            // No SO_REUSEADDR: with it, another process could bind the port too and take
            // datagrams meant for us.
            DatagramBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPHandler(receive: receive))
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

    init(receive: @escaping @Sendable (DatagramKind, [UInt8], SocketAddress) -> Void) { self.receive = receive }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = envelope.data.getBytes(at: envelope.data.readerIndex, length: envelope.data.readableBytes) ?? []
        receive(DatagramKind.classify(bytes), bytes, UDPPort.plain(envelope.remoteAddress))
    }
}
