import BitTorrent
import NIOCore

/// Message stream encryption on a TCP connection: the lowest handler of a peer pipeline,
/// below `PeerWireDecoder`. It runs the `MSEHandshake` state machine and then, when RC4
/// was selected, encrypts every outbound buffer and decrypts every inbound one in place
/// (no allocation per message); with plaintext selected it passes bytes through.
///
/// Incoming connections start in `detecting`: the first bytes tell a plaintext BitTorrent
/// handshake from an MSE public key, and the policy decides whether that kind is taken.
/// Outgoing ones start as the initiator; what the connection writes before the handshake
/// ends is held, the first of it (our BitTorrent handshake) sent as the initial payload.
final class MSEHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case detecting
        case handshaking
        case established
        case failed
    }

    private var state: State
    private var handshake: MSEHandshake?
    private let policy: EncryptionPolicy
    private let findTorrent: (Digest20) -> InfoHash?
    /// Inbound bytes seen while detecting.
    private var detected: ByteBuffer?
    /// Writes held until the handshake is done.
    private var held: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushHeld = false
    private var initialPayloadSent = false
    /// Set once RC4 is selected.
    private var encryptor: RC4?
    private var decryptor: RC4?

    /// An outgoing connection for `infoHash`: RC4 only when encryption is required,
    /// otherwise RC4 or plaintext, as the other side selects.
    init(initiatorFor infoHash: InfoHash, policy: EncryptionPolicy) {
        var random = SystemRandomNumberGenerator()
        handshake = .initiator(infoHash: infoHash, provide: policy == .require ? .rc4 : [.rc4, .plaintext],
                               using: &random)
        self.policy = policy
        findTorrent = { _ in nil }
        state = .handshaking
    }

    /// An accepted connection; `findTorrent` maps HASH('req2', info hash) to a torrent.
    init(incoming policy: EncryptionPolicy, findTorrent: @escaping (Digest20) -> InfoHash?) {
        self.policy = policy
        self.findTorrent = findTorrent
        state = .detecting
    }

    func channelActive(context: ChannelHandlerContext) {
        if let handshake, handshake.role == .initiator {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: handshake.start())), promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if state == .handshaking, let handshake, handshake.role == .initiator {
            // A peer that does not speak MSE typically hangs up on our public key.
            context.fireErrorCaught(MSEFailure(error: nil, secretHadLeadingZero: handshake.secretHasLeadingZero))
        }
        state = .failed
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch state {
        case .established:
            if decryptor != nil { buffer.withUnsafeMutableReadableBytes { decryptor!.apply($0) } }
            context.fireChannelRead(wrapInboundOut(buffer))
        case .detecting:
            detect(context: context, buffer)
        case .handshaking:
            advance(context: context, buffer.readableBytesView)
        case .failed:
            break
        }
    }

    /// Decides plaintext or MSE from the first bytes of an accepted connection.
    private func detect(context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        var bytes = detected ?? context.channel.allocator.buffer(capacity: buffer.readableBytes)
        var incoming = buffer
        bytes.writeBuffer(&incoming)
        guard let kind = MSEHandshake.classify(bytes.readableBytesView) else {
            detected = bytes
            return
        }
        detected = nil
        switch (kind, policy) {
        case (.plaintext, .require):
            fail(context: context, MSEFailure(error: nil, refused: "plaintext handshake while encryption is required"))
        case (.encrypted, .off):
            fail(context: context, MSEFailure(error: nil, refused: "encrypted handshake while encryption is off"))
        case (.plaintext, _):
            establish(context: context)
            context.fireChannelRead(wrapInboundOut(bytes))
        case (.encrypted, _):
            var random = SystemRandomNumberGenerator()
            handshake = .responder(allowed: policy == .require ? .rc4 : [.rc4, .plaintext], preferred: .plaintext,
                                   findTorrent: findTorrent, using: &random)
            state = .handshaking
            advance(context: context, bytes.readableBytesView)
        }
    }

    /// Feeds the handshake; sends what it answers; on its outcome, switches to the stream.
    private func advance(context: ChannelHandlerContext, _ bytes: ByteBufferView) {
        guard var machine = handshake else { return }
        handshake = nil  // the machine is mutated as a local, not copied per call
        var payload: [UInt8] = []
        if machine.role == .initiator && !initialPayloadSent {
            payload = initialPayload()
            machine.initialPayload = payload
        }
        let output: MSEHandshake.Output
        do {
            output = try machine.received(bytes)
        } catch {
            handshake = machine
            fail(context: context, MSEFailure(error: error, secretHadLeadingZero: machine.secretHasLeadingZero))
            return
        }
        handshake = machine
        if machine.role == .initiator && !output.send.isEmpty && !initialPayloadSent {
            initialPayloadSent = true
            if !payload.isEmpty {
                // Step 3 carried the held writes as its initial payload.
                for (_, promise) in held { promise?.succeed() }
                held.removeAll()
            }
        }
        if !output.send.isEmpty {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: output.send)), promise: nil)
        }
        guard let outcome = output.outcome else { return }
        encryptor = outcome.encryptor
        decryptor = outcome.decryptor
        handshake = nil
        establish(context: context)
        if !outcome.payload.isEmpty {
            context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: outcome.payload)))
        }
    }

    /// The held writes as an initial payload when they fit (our handshake does), else none.
    private func initialPayload() -> [UInt8] {
        let total = held.reduce(0) { $0 + $1.0.readableBytes }
        guard total > 0, total <= MSEHandshake.maxInitialPayload else { return [] }
        return held.flatMap { Array($0.0.readableBytesView) }
    }

    /// The stream is set up: held writes go out, encrypted if RC4 was selected.
    private func establish(context: ChannelHandlerContext) {
        state = .established
        let writes = held
        held.removeAll()
        for (buffer, promise) in writes { send(context: context, buffer, promise: promise) }
        if flushHeld || !writes.isEmpty {
            flushHeld = false
            context.flush()
        }
    }

    private func fail(context: ChannelHandlerContext, _ failure: MSEFailure) {
        state = .failed
        for (_, promise) in held { promise?.fail(failure) }
        held.removeAll()
        context.fireErrorCaught(failure)
        context.close(promise: nil)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .established:
            send(context: context, unwrapOutboundIn(data), promise: promise)
        case .detecting, .handshaking:
            held.append((unwrapOutboundIn(data), promise))
        case .failed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    /// Writes `buffer`, encrypted in place when RC4 was selected.
    private func send(context: ChannelHandlerContext, _ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        var buffer = buffer
        if encryptor != nil { buffer.withUnsafeMutableReadableBytes { encryptor!.apply($0) } }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        if state == .established { context.flush() } else { flushHeld = true }
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
