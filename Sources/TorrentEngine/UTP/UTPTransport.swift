import BitTorrent
import NIOCore

/// A peer connection's byte stream over uTP (the transport seam's second implementation).
/// Writes go into the connection's `UTPSocket`; bytes it delivers are decoded here with
/// the same `PeerWireDecoder` the TCP pipeline uses and handed to the engine exactly as
/// `PeerChannelHandler` does, so nothing above the seam knows the difference. No NIO
/// channel per connection: the session's one UDP channel carries every uTP connection,
/// and `UTPService` drives them. Used on the engine's event loop only.
final class UTPTransport: PeerTransport {
    typealias Key = UTPEndpoint<SocketAddress>.Key

    let key: Key
    private unowned let service: UTPService
    let allocator = ByteBufferAllocator()
    /// The PeerConnection on top (set once the connection is made; cleared when it ends).
    var connection: PeerConnection?
    private var decoder = PeerWireDecoder()
    private var inbound: ByteBuffer
    /// Whether the engine was told the connection closed.
    private(set) var ended = false

    init(key: Key, service: UTPService) {
        self.key = key
        self.service = service
        inbound = allocator.buffer(capacity: 0)
    }

    var remoteAddress: SocketAddress? { key.address }

    func write(_ buffer: ByteBuffer) { service.socket(key)?.write(buffer.readableBytesView) }
    func flush() { service.flush(key) }

    func close() {
        service.close(key)
        end()
    }

    /// Bytes the socket delivered in order: decoded into handshake, messages and blocks.
    func deliver(_ bytes: [UInt8], to engine: Engine) {
        guard let connection, !ended else { return }
        inbound.writeBytes(bytes)
        do {
            while !connection.isClosed, let frame = try decoder.next(&inbound) {
                switch frame {
                case .handshake(let handshake):
                    engine.handshakeReceived(connection, handshake)
                case .message(let message):
                    engine.messageReceived(connection, message)
                case .block(let piece, let begin, let block):
                    block.withUnsafeReadableBytes { engine.blockArrived(connection, piece: piece, begin: begin, bytes: $0) }
                }
            }
        } catch {
            engine.protocolError(connection, "\(error)")
            return
        }
        inbound.discardReadBytes()
        connection.flush()
    }

    /// The connection is over for the engine (closed by either side, reset, timed out).
    func end() {
        guard !ended else { return }
        ended = true
        if let connection {
            connection.closeReason = connection.closeReason ?? .connectionFailed("uTP connection closed")
            service.engine?.channelClosed(connection)
        }
        connection = nil
    }
}
