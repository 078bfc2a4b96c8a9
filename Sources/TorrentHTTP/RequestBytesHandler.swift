import NIOCore

/// First in a connection's pipeline: tells the handlers after it that bytes came from the
/// client, before the HTTP decoder has made anything of them, so that `HTTPHandler`'s clock
/// sees a request start (an idle keep-alive connection gets the header deadline from then).
final class RequestBytesHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// The event sent down the pipeline ahead of the bytes.
    struct Arrived: Sendable {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireUserInboundEventTriggered(Arrived())
        context.fireChannelRead(data)
    }
}
