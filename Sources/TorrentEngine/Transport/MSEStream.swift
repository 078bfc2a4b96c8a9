import BitTorrent
import NIOCore

/// Message stream encryption as a layer between a byte stream and the peer wire, with no
/// I/O of its own: the transport (a TCP pipeline's `MSEHandler`, a `UTPTransport`) feeds
/// it what arrives and what the connection writes, and carries out what it answers. It
/// runs the `MSEHandshake` state machine and then, when RC4 was selected, encrypts every
/// outbound buffer and decrypts every inbound one in place (no allocation per message);
/// with plaintext selected, bytes pass through.
///
/// Incoming connections start in `detecting`: the first bytes tell a plaintext BitTorrent
/// handshake from an MSE public key, and the policy decides whether that kind is taken.
/// Outgoing ones start as the initiator; what the connection writes before the handshake
/// ends is held, the first of it (our BitTorrent handshake) sent as the initial payload.
struct MSEStream {
    enum Phase: Equatable {
        case detecting
        case handshaking
        case established
        case failed
    }

    /// What to do after some input, in this order: write `send` (handshake bytes), then
    /// `released` (held writes, encrypted as the stream requires), then pass `deliver` up;
    /// on `failure`, report it and close. `established`: the handshake ended with this input.
    struct Output {
        var send: [UInt8] = []
        var released: [ByteBuffer] = []
        var deliver: ByteBuffer?
        var failure: MSEFailure?
        var established = false
    }

    private(set) var phase: Phase
    private var handshake: MSEHandshake?
    private let policy: EncryptionPolicy
    private let findTorrent: (Digest20) -> InfoHash?
    private let allocator: ByteBufferAllocator
    /// Inbound bytes seen while detecting.
    private var detected: ByteBuffer?
    /// Writes held until the handshake is done.
    private var held: [ByteBuffer] = []
    private var initialPayloadSent = false
    /// Set once RC4 is selected.
    private var encryptor: RC4?
    private var decryptor: RC4?

    /// An outgoing connection for `infoHash`: RC4 only when encryption is required,
    /// otherwise RC4 or plaintext, as the other side selects.
    init(initiatorFor infoHash: InfoHash, policy: EncryptionPolicy, allocator: ByteBufferAllocator) {
        var random = SystemRandomNumberGenerator()
        handshake = .initiator(infoHash: infoHash, provide: policy == .require ? .rc4 : [.rc4, .plaintext],
                               using: &random)
        self.policy = policy
        self.allocator = allocator
        findTorrent = { _ in nil }
        phase = .handshaking
    }

    /// An accepted connection; `findTorrent` maps HASH('req2', info hash) to a torrent.
    init(incoming policy: EncryptionPolicy, allocator: ByteBufferAllocator,
         findTorrent: @escaping (Digest20) -> InfoHash?) {
        self.policy = policy
        self.allocator = allocator
        self.findTorrent = findTorrent
        phase = .detecting
    }

    var isEstablished: Bool { phase == .established }

    /// The initiator's first message (Ya, PadA); nothing for an accepted connection.
    func start() -> [UInt8] {
        guard let handshake, handshake.role == .initiator else { return [] }
        return handshake.start()
    }

    /// The connection closed: the failure to report if it closed during our handshake as
    /// the initiator (a peer that does not speak MSE typically hangs up on our key).
    mutating func closed() -> MSEFailure? {
        defer { phase = .failed }
        guard phase == .handshaking, let handshake, handshake.role == .initiator else { return nil }
        return MSEFailure(error: nil, secretHadLeadingZero: handshake.secretHasLeadingZero)
    }

    /// Inbound bytes once established: decrypted in place when RC4 was selected.
    mutating func decrypt(_ buffer: inout ByteBuffer) {
        if decryptor != nil { buffer.withUnsafeMutableReadableBytes { decryptor!.apply($0) } }
    }

    mutating func decrypt(_ bytes: UnsafeMutableRawBufferPointer) {
        if decryptor != nil { decryptor!.apply(bytes) }
    }

    /// Outbound bytes once established: encrypted in place when RC4 was selected.
    mutating func encrypt(_ buffer: inout ByteBuffer) {
        if encryptor != nil { buffer.withUnsafeMutableReadableBytes { encryptor!.apply($0) } }
    }

    /// A write before the handshake ended: held, sent when it ends.
    mutating func hold(_ buffer: ByteBuffer) {
        held.append(buffer)
    }

    /// Inbound bytes before the stream is established.
    mutating func receive(_ buffer: ByteBuffer) -> Output {
        var output = Output()
        switch phase {
        case .detecting: detect(buffer, &output)
        case .handshaking: advance(buffer.readableBytesView, &output)
        case .established, .failed: preconditionFailure("MSEStream.receive after the handshake")
        }
        return output
    }

    /// Decides plaintext or MSE from the first bytes of an accepted connection.
    private mutating func detect(_ buffer: ByteBuffer, _ output: inout Output) {
        var bytes = detected ?? allocator.buffer(capacity: buffer.readableBytes)
        var incoming = buffer
        bytes.writeBuffer(&incoming)
        guard let kind = MSEHandshake.classify(bytes.readableBytesView) else {
            detected = bytes
            return
        }
        detected = nil
        switch (kind, policy) {
        case (.plaintext, .require):
            fail(MSEFailure(error: nil, refused: "plaintext handshake while encryption is required"), &output)
        case (.encrypted, .off):
            fail(MSEFailure(error: nil, refused: "encrypted handshake while encryption is off"), &output)
        case (.plaintext, _):
            establish(&output)
            output.deliver = bytes
        case (.encrypted, _):
            var random = SystemRandomNumberGenerator()
            handshake = .responder(allowed: policy == .require ? .rc4 : [.rc4, .plaintext], preferred: .plaintext,
                                   findTorrent: findTorrent, using: &random)
            phase = .handshaking
            advance(bytes.readableBytesView, &output)
        }
    }

    /// Feeds the handshake; on its outcome, switches to the stream.
    private mutating func advance(_ bytes: ByteBufferView, _ output: inout Output) {
        guard var machine = handshake else { return }
        handshake = nil  // the machine is mutated as a local, not copied per call
        var payload: [UInt8] = []
        if machine.role == .initiator && !initialPayloadSent {
            payload = initialPayload()
            machine.initialPayload = payload
        }
        let result: MSEHandshake.Output
        do {
            result = try machine.received(bytes)
        } catch {
            handshake = machine
            fail(MSEFailure(error: error, secretHadLeadingZero: machine.secretHasLeadingZero), &output)
            return
        }
        handshake = machine
        if machine.role == .initiator && !result.send.isEmpty && !initialPayloadSent {
            initialPayloadSent = true
            // Step 3 carried the held writes as its initial payload.
            if !payload.isEmpty { held.removeAll() }
        }
        output.send = result.send
        guard let outcome = result.outcome else { return }
        encryptor = outcome.encryptor
        decryptor = outcome.decryptor
        handshake = nil
        establish(&output)
        if !outcome.payload.isEmpty { output.deliver = allocator.buffer(bytes: outcome.payload) }
    }

    /// The held writes as an initial payload when they fit (our handshake does), else none.
    private func initialPayload() -> [UInt8] {
        let total = held.reduce(0) { $0 + $1.readableBytes }
        guard total > 0, total <= MSEHandshake.maxInitialPayload else { return [] }
        return held.flatMap { Array($0.readableBytesView) }
    }

    /// The stream is set up: held writes are released, encrypted if RC4 was selected.
    private mutating func establish(_ output: inout Output) {
        phase = .established
        output.established = true
        for var buffer in held {
            encrypt(&buffer)
            output.released.append(buffer)
        }
        held.removeAll()
    }

    private mutating func fail(_ failure: MSEFailure, _ output: inout Output) {
        phase = .failed
        held.removeAll()
        output.failure = failure
    }
}
