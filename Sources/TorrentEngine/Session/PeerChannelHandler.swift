import BitTorrent
import NIOCore

/// The thin NIO side of a peer connection: hands the decoded handshake, messages and
/// blocks (`PeerWireDecoder`, before it in the pipeline) to the engine; everything else
/// happens in `PeerConnection`.
final class PeerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = PeerWireDecoder.Inbound
    typealias OutboundOut = ByteBuffer

    private let engine: Engine
    private let connection: PeerConnection

    init(engine: Engine, connection: PeerConnection) {
        self.engine = engine
        self.connection = connection
    }

    /// The handlers of a peer connection, in pipeline order.
    static func install(on channel: Channel, engine: Engine, connection: PeerConnection) throws {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PeerWireDecoder()))
        try channel.pipeline.syncOperations.addHandler(PeerChannelHandler(engine: engine, connection: connection))
    }

    func channelActive(context: ChannelHandlerContext) {
        engine.channelActive(connection)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        engine.channelClosed(connection)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let wire = error as? WireError {
            engine.protocolError(connection, "\(wire)")
        } else if let failure = error as? MSEFailure {
            engine.encryptionFailed(connection, failure)
        } else {
            connection.closeReason = connection.closeReason ?? .connectionFailed("\(error)")
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Frames decoded from bytes that arrived before we closed are not acted on.
        guard !connection.isClosed else { return }
        switch unwrapInboundIn(data) {
        case .handshake(let handshake):
            engine.handshakeReceived(connection, handshake)
        case .message(let message):
            engine.messageReceived(connection, message)
        case .block(let piece, let begin, let block):
            block.withUnsafeReadableBytes { engine.blockArrived(connection, piece: piece, begin: begin, bytes: $0) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection.flush()
        context.fireChannelReadComplete()
    }
}
