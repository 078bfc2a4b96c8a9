import BitTorrent
import NIOCore

/// The thin NIO side of a peer connection: frames bytes into the handshake and messages
/// and hands them to the engine; everything else happens in `PeerConnection`.
final class PeerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let engine: Engine
    private let connection: PeerConnection
    private var cumulation: ByteBuffer?
    private var handshakeDone = false
    private let maxLength = PeerMessageDecoder.defaultMaxLength

    init(engine: Engine, connection: PeerConnection) {
        self.engine = engine
        self.connection = connection
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
        connection.closeReason = connection.closeReason ?? .connectionFailed("\(error)")
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if cumulation == nil {
            cumulation = incoming
        } else {
            cumulation!.writeBuffer(&incoming)
        }
        process()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection.flush()
        context.fireChannelReadComplete()
    }

    private func process() {
        guard var buffer = cumulation else { return }
        defer {
            if buffer.readableBytes == 0 {
                cumulation = nil
            } else {
                buffer.discardReadBytes()
                cumulation = buffer
            }
        }
        while !connection.isClosed {
            if !handshakeDone {
                guard buffer.readableBytes >= 1 else { return }
                let available = min(buffer.readableBytes, Handshake.length)
                let bytes = buffer.getBytes(at: buffer.readerIndex, length: available)!
                do {
                    guard let handshake = try Handshake.decode(bytes[...]) else { return }
                    buffer.moveReaderIndex(forwardBy: Handshake.length)
                    handshakeDone = true
                    engine.handshakeReceived(connection, handshake)
                } catch {
                    engine.protocolError(connection, "\(error)")
                    return
                }
                continue
            }
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return }
            guard Int(length) <= maxLength else {
                engine.protocolError(connection, "message of \(length) bytes exceeds \(maxLength)")
                return
            }
            guard buffer.readableBytes >= 4 + Int(length) else { return }
            // PIECE: the block is handed over in place, so it is copied once, into its piece.
            if length >= 9, connection.session != nil,
               buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self) == PeerMessage.ID.piece.rawValue {
                let piece = Int(buffer.getInteger(at: buffer.readerIndex + 5, as: UInt32.self)!)
                let begin = Int(buffer.getInteger(at: buffer.readerIndex + 9, as: UInt32.self)!)
                buffer.moveReaderIndex(forwardBy: 13)
                let count = Int(length) - 9
                buffer.withUnsafeReadableBytes { raw in
                    engine.blockArrived(connection, piece: piece, begin: begin,
                                        bytes: UnsafeRawBufferPointer(rebasing: raw[0..<count]))
                }
                buffer.moveReaderIndex(forwardBy: count)
                continue
            }
            buffer.moveReaderIndex(forwardBy: 4)
            if length == 0 {
                engine.messageReceived(connection, .keepAlive)
                continue
            }
            let body = buffer.readBytes(length: Int(length))!
            do {
                engine.messageReceived(connection, try PeerMessageDecoder.parse(body[...]))
            } catch {
                engine.protocolError(connection, "\(error)")
                return
            }
        }
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
