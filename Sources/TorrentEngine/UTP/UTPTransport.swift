import BitTorrent
import NIOCore

/// A peer connection's byte stream over uTP (the transport seam's second implementation).
/// Writes go into the connection's `UTPSocket`; bytes it delivers are decoded here with
/// the same `PeerWireDecoder` the TCP pipeline uses and handed to the engine exactly as
/// `PeerChannelHandler` does, so nothing above the seam knows the difference. No NIO
/// channel per connection: the session's one UDP channel carries every uTP connection,
/// and `UTPService` drives them. Message stream encryption, when the connection has it,
/// sits between the socket and the decoder (`mse`, the same `MSEStream` a TCP pipeline's
/// `MSEHandler` runs). Used on the engine's event loop only.
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
    /// Encryption on this connection: set for every accepted one (it tells plaintext from
    /// MSE), for a dialed one when it goes encrypted; nil: plaintext, no detection.
    private var mse: MSEStream?

    init(key: Key, service: UTPService) {
        self.key = key
        self.service = service
        inbound = allocator.buffer(capacity: 0)
    }

    var remoteAddress: SocketAddress? { key.address }

    func write(_ buffer: ByteBuffer) {
        var buffer = buffer
        switch mse?.phase {
        case nil, .established?:
            mse?.encrypt(&buffer)
            service.socket(key)?.write(buffer.readableBytesView)
        case .detecting?, .handshaking?:
            mse?.hold(buffer)
        case .failed?:
            break
        }
    }

    func flush() { service.flush(key) }

    /// Dialed with encryption: our MSE initiator starts (Ya and PadA go out before the
    /// connection writes anything; its BitTorrent handshake becomes the initial payload).
    func encrypt(initiatorFor infoHash: InfoHash, policy: EncryptionPolicy) {
        let stream = MSEStream(initiatorFor: infoHash, policy: policy, allocator: allocator)
        service.socket(key)?.write(stream.start())
        mse = stream
    }

    /// Accepted: the first bytes tell plaintext from MSE; `policy` decides what is taken.
    func detectEncryption(policy: EncryptionPolicy, findTorrent: @escaping (Digest20) -> InfoHash?) {
        mse = MSEStream(incoming: policy, allocator: allocator, findTorrent: findTorrent)
    }

    func close() {
        service.close(key)
        end()
    }

    /// Bytes the socket delivered in order: decoded into handshake, messages and blocks.
    func deliver(_ payloads: [ArraySlice<UInt8>], to engine: Engine) {
        guard let connection, !ended else { return }
        switch mse?.phase {
        case nil:
            for payload in payloads { inbound.writeBytes(payload) }
        case .established?:
            // Decrypted in place where it lands in the decoder's buffer.
            let start = inbound.writerIndex - inbound.readerIndex
            for payload in payloads { inbound.writeBytes(payload) }
            inbound.withUnsafeMutableReadableBytes { mse?.decrypt(UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
        case .detecting?, .handshaking?:
            var bytes = allocator.buffer(capacity: payloads.reduce(0) { $0 + $1.count })
            for payload in payloads { bytes.writeBytes(payload) }
            guard var deliver = handshake(bytes, connection: connection, engine: engine) else { return }
            inbound.writeBuffer(&deliver)
        case .failed?:
            return
        }
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

    /// Feeds the MSE handshake and carries out its answer; the stream bytes it yields, if any.
    private func handshake(_ bytes: ByteBuffer, connection: PeerConnection, engine: Engine) -> ByteBuffer? {
        guard let output = mse?.receive(bytes) else { return nil }
        let socket = service.socket(key)
        if !output.send.isEmpty { socket?.write(output.send) }
        if let failure = output.failure {
            engine.encryptionFailed(connection, failure)
            return nil
        }
        for buffer in output.released { socket?.write(buffer.readableBytesView) }
        if output.deliver == nil && (!output.send.isEmpty || !output.released.isEmpty) { service.flush(key) }
        return output.deliver
    }

    /// The connection is over for the engine (closed by either side, reset, timed out).
    func end() {
        guard !ended else { return }
        ended = true
        if let connection, let failure = mse?.closed() { service.engine?.encryption.failed(connection.id, failure) }
        if let connection {
            connection.closeReason = connection.closeReason ?? .connectionFailed("uTP connection closed")
            service.engine?.channelClosed(connection)
        }
        connection = nil
    }
}
