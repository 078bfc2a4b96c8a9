import BitTorrent
import NIOCore

/// The peer wire as a NIO decoder: the 68-byte handshake first, then length-prefixed
/// frames, both through the codec's decoders (`Handshake.decode`, `decodeFrame`). A
/// PIECE's block is passed on as a slice of the receive buffer, so it is copied once,
/// into its piece. Malformed input throws the codec's `WireError`.
struct PeerWireDecoder: ByteToMessageDecoder {
    enum Inbound: Equatable {
        case handshake(Handshake)
        case message(PeerMessage)
        case block(piece: Int, begin: Int, ByteBuffer)
    }

    typealias InboundOut = Inbound

    private var handshakeDone = false
    private let frames: PeerMessageDecoder

    init(frames: PeerMessageDecoder = PeerMessageDecoder()) { self.frames = frames }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let inbound = try next(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(inbound))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while let inbound = try next(&buffer) { context.fireChannelRead(wrapInboundOut(inbound)) }
        return .needMoreData
    }

    /// The next handshake or frame in `buffer`, consumed; nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws(WireError) -> Inbound? {
        guard handshakeDone else {
            let available = min(buffer.readableBytes, Handshake.length)
            guard available > 0,
                  let handshake = try Handshake.decode(buffer.getBytes(at: buffer.readerIndex, length: available)![...])
            else { return nil }
            buffer.moveReaderIndex(forwardBy: Handshake.length)
            handshakeDone = true
            return .handshake(handshake)
        }
        guard let (frame, consumed) = try frames.decodeFrame(buffer.readableBytesView) else { return nil }
        defer { buffer.moveReaderIndex(forwardBy: consumed) }
        switch frame {
        case .message(let message):
            return .message(message)
        case .block(let piece, let begin, let offset, let length):
            return .block(piece: piece, begin: begin, buffer.getSlice(at: buffer.readerIndex + offset, length: length)!)
        }
    }
}
