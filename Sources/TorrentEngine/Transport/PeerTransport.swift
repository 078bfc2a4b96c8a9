import NIOCore

/// The byte stream under a peer connection, as the torrent logic sees it: write, flush,
/// close, and the addresses. TCP implements it today (`ChannelTransport`); uTP and an
/// MSE-encrypted stream over either are its next implementations, and nothing above it
/// (`PeerConnection`, `Torrent`) changes for them. Inbound bytes and connection events
/// come up through the NIO pipeline (`PeerWireDecoder`, `PeerChannelHandler`).
/// Used on the engine's event loop only.
protocol PeerTransport: AnyObject {
    var allocator: ByteBufferAllocator { get }
    var remoteAddress: SocketAddress? { get }
    func write(_ buffer: ByteBuffer)
    func flush()
    func close()
}

/// A transport over a NIO channel (a TCP socket today).
final class ChannelTransport: PeerTransport {
    let channel: Channel

    init(_ channel: Channel) { self.channel = channel }

    var allocator: ByteBufferAllocator { channel.allocator }
    var remoteAddress: SocketAddress? { channel.remoteAddress }
    func write(_ buffer: ByteBuffer) { channel.write(buffer, promise: nil) }
    func flush() { channel.flush() }
    func close() { channel.close(promise: nil) }
}
