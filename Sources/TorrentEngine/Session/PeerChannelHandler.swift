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

/// One peer connection as the engine sees it. Lives on the engine's event loop.
/// Confined to the engine's event loop (`@unchecked Sendable` for hops back to it).
final class PeerConnection: @unchecked Sendable {
    let id: Int
    let channel: Channel
    let incoming: Bool
    /// Address we dialed, or the remote address of an accepted connection.
    var address: PeerAddress
    /// Where the peer accepts connections (from the extension handshake `p` for incoming).
    var listenAddress: PeerAddress?
    weak var torrent: Torrent?
    var session: PeerSession?
    var remotePeerID: PeerID?
    var client: String?
    var closeReason: DisconnectReason?
    var isClosed = false
    var pendingWrites = false
    var downloadMeter = RateMeter()
    var uploadMeter = RateMeter()
    /// Metadata piece requests we sent and have not had answered.
    var metadataRequests = 0
    /// Upload requests waiting for the rate limit.
    var throttledUploads: [BlockRange] = []
    let connectedAt = Engine.now()
    var lastBlockAt: Int64 = 0

    init(id: Int, channel: Channel, incoming: Bool, address: PeerAddress) {
        self.id = id
        self.channel = channel
        self.incoming = incoming
        self.address = address
    }

    func send(_ message: PeerMessage) {
        guard !isClosed else { return }
        var buffer = channel.allocator.buffer(capacity: 32)
        switch message {
        case .piece(let piece, let begin, let block):
            buffer.reserveCapacity(13 + block.count)
            buffer.writeInteger(UInt32(9 + block.count))
            buffer.writeInteger(PeerMessage.ID.piece.rawValue)
            buffer.writeInteger(UInt32(piece))
            buffer.writeInteger(UInt32(begin))
            buffer.writeBytes(block)
        default:
            buffer.writeBytes(message.encoded)
        }
        channel.write(buffer, promise: nil)
        pendingWrites = true
    }

    func sendRaw(_ bytes: [UInt8]) {
        guard !isClosed else { return }
        channel.write(channel.allocator.buffer(bytes: bytes), promise: nil)
        pendingWrites = true
    }

    func flush() {
        guard pendingWrites else { return }
        pendingWrites = false
        channel.flush()
    }

    func close(_ reason: DisconnectReason) {
        guard !isClosed else { return }
        closeReason = closeReason ?? reason
        flush()
        channel.close(promise: nil)
    }

    /// The address other peers can reach this one at, for PEX.
    var reachableAddress: PeerAddress? { incoming ? listenAddress : address }
}
