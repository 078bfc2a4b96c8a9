import BitTorrent
import NIOCore

/// Message stream encryption on a TCP connection: the lowest handler of a peer pipeline,
/// below `PeerWireDecoder`; NIO glue around `MSEStream`, which does the work (detection,
/// handshake, held writes, RC4 in place). Promises of writes held during the handshake
/// complete when it ends (or fail with it).
final class MSEHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var stream: MSEStream
    private var heldPromises: [EventLoopPromise<Void>] = []
    private var flushHeld = false

    /// An outgoing connection for `infoHash`: RC4 only when encryption is required,
    /// otherwise RC4 or plaintext, as the other side selects.
    init(initiatorFor infoHash: InfoHash, policy: EncryptionPolicy) {
        stream = MSEStream(initiatorFor: infoHash, policy: policy, allocator: ByteBufferAllocator())
    }

    /// An accepted connection; `findTorrent` maps HASH('req2', info hash) to a torrent.
    init(incoming policy: EncryptionPolicy, findTorrent: @escaping (Digest20) -> InfoHash?) {
        stream = MSEStream(incoming: policy, allocator: ByteBufferAllocator(), findTorrent: findTorrent)
    }

    func channelActive(context: ChannelHandlerContext) {
        let first = stream.start()
        if !first.isEmpty { context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: first)), promise: nil) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let failure = stream.closed() { context.fireErrorCaught(failure) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch stream.phase {
        case .established:
            stream.decrypt(&buffer)
            context.fireChannelRead(wrapInboundOut(buffer))
        case .detecting, .handshaking:
            carryOut(stream.receive(buffer), context: context)
        case .failed:
            break
        }
    }

    private func carryOut(_ output: MSEStream.Output, context: ChannelHandlerContext) {
        if !output.send.isEmpty {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: output.send)), promise: nil)
        }
        if let failure = output.failure {
            for promise in heldPromises { promise.fail(failure) }
            heldPromises.removeAll()
            context.fireErrorCaught(failure)
            context.close(promise: nil)
            return
        }
        if output.established {
            for buffer in output.released { context.write(wrapOutboundOut(buffer), promise: nil) }
            for promise in heldPromises { promise.succeed() }
            heldPromises.removeAll()
            if flushHeld || !output.released.isEmpty {
                flushHeld = false
                context.flush()
            }
        }
        if let deliver = output.deliver { context.fireChannelRead(wrapInboundOut(deliver)) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var buffer = unwrapOutboundIn(data)
        switch stream.phase {
        case .established:
            stream.encrypt(&buffer)
            context.write(wrapOutboundOut(buffer), promise: promise)
        case .detecting, .handshaking:
            stream.hold(buffer)
            if let promise { heldPromises.append(promise) }
        case .failed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    func flush(context: ChannelHandlerContext) {
        if stream.isEstablished { context.flush() } else { flushHeld = true }
    }
}

/// An MSE handshake that failed or was refused, passed up the pipeline before the close.
struct MSEFailure: Error, CustomStringConvertible {
    /// The handshake's error; nil when the peer hung up during it, or for `refused`.
    let error: MSEError?
    /// S began with a zero byte: worth one more encrypted try (libtorrent < 2.0.13).
    var secretHadLeadingZero = false
    /// A kind of handshake the policy does not take.
    var refused: String?

    init(error: MSEError?, secretHadLeadingZero: Bool) {
        self.error = error
        self.secretHadLeadingZero = secretHadLeadingZero
    }

    init(error: MSEError?, refused: String) {
        self.error = error
        self.refused = refused
    }

    var description: String {
        if let refused { return "MSE: \(refused)" }
        return error.map { "\($0)" } ?? "MSE: the peer closed the connection during the handshake"
    }
}
