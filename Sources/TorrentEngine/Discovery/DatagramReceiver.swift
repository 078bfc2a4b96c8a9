import NIOCore

/// Hands each datagram of a UDP channel, with its sender, to a closure run on the
/// channel's event loop (LSD and port mapping sockets).
final class DatagramReceiver: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let receive: ([UInt8], SocketAddress) -> Void

    init(receive: @escaping ([UInt8], SocketAddress) -> Void) { self.receive = receive }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = envelope.data.getBytes(at: envelope.data.readerIndex, length: envelope.data.readableBytes) ?? []
        receive(bytes, envelope.remoteAddress)
    }
}
