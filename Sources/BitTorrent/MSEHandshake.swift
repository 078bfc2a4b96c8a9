/// The message stream encryption (MSE/PE) handshake as a sans-I/O state machine: bytes
/// in, bytes to send and, at the end, the negotiated stream out. Both roles:
///
/// ```
/// 1 A→B  Ya, PadA
/// 2 B→A  Yb, PadB
/// 3 A→B  HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
///        ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
/// 4 B→A  ENCRYPT(VC, crypto_select, len(PadD), PadD), then the stream
/// ```
///
/// S is the 96-byte Diffie-Hellman secret, SKEY the torrent's info hash, VC eight zero
/// bytes, ENCRYPT RC4 keyed with HASH('keyA', S, SKEY) from A and HASH('keyB', S, SKEY)
/// from B, 1024 keystream bytes discarded. The responder finds the end of PadA by
/// searching for HASH('req1', S); the initiator finds the end of PadB by searching for VC
/// as B's cipher encrypts it. Every length is bounded: paddings at `maxPadding`, the
/// initial payload at `maxInitialPayload`, so a handshake never holds more than one
/// read's worth of input beyond about 1 KiB. Timeouts are the connection's (the engine
/// closes a connection without a peer handshake after 10 s).
public struct MSEHandshake {
    /// The longest padding either side may send (the specification's 512).
    public static let maxPadding = 512
    /// The longest initial payload accepted: a BitTorrent handshake is 68 bytes and the
    /// clients we know send nothing else in it; 16 KiB leaves room for a handshake with
    /// extension messages and a bitfield.
    public static let maxInitialPayload = 16_384
    static let verificationConstant = [UInt8](repeating: 0, count: 8)

    /// The negotiated stream once the handshake is done.
    public struct Outcome {
        public let infoHash: InfoHash
        public let method: MSECryptoMethods
        /// The ciphers of the stream when `method` is RC4 (nil for plaintext).
        public var encryptor: RC4?
        public var decryptor: RC4?
        /// Stream bytes that came with the handshake, already decrypted: for the responder
        /// the initial payload first, then whatever followed it.
        public let payload: [UInt8]
    }

    /// What to do after some input: send `send` (may be empty); `outcome` once done.
    public struct Output {
        public var send: [UInt8] = []
        public var outcome: Outcome?
    }

    public enum Role: Sendable { case initiator, responder }

    private enum State {
        // Initiator
        case awaitingYb
        case seekingVC(pattern: [UInt8], patternCipher: RC4, searchedTo: Int)
        case readingSelect
        case skippingPadD(remaining: Int, selected: MSECryptoMethods)
        // Responder
        case awaitingYa
        case seekingReq1(marker: [UInt8], searchedTo: Int)
        case readingObfuscatedHash
        case readingProvide
        case skippingPadC(remaining: Int, provided: MSECryptoMethods)
        case readingPayloadLength(provided: MSECryptoMethods)
        case readingPayload(length: Int, provided: MSECryptoMethods)
        case done
        case failed
    }

    public let role: Role
    private let key: MSEKeyExchange
    private let padding: [UInt8]
    private var state: State
    /// Input not consumed yet: `input[position...]`.
    private var input: [UInt8] = []
    private var position = 0
    /// Where the search window starts (just after the other side's public key).
    private var windowStart = 0
    /// S, once the other side's public key arrived (empty before).
    private(set) var sharedSecret: [UInt8] = []
    private var encryptor: RC4?
    private var decryptor: RC4?
    private var infoHash: InfoHash?

    // Initiator
    private var provide: MSECryptoMethods = []
    /// Sent in step 3 (the BitTorrent handshake, usually), at most `maxInitialPayload`
    /// bytes; set before Yb arrives.
    public var initialPayload: [UInt8] = []

    // Responder
    private var allowed: MSECryptoMethods = []
    private var preferred: MSECryptoMethods = .rc4
    private var findTorrent: (Digest20) -> InfoHash? = { _ in nil }

    /// Whether S began with a zero byte: libtorrent before 2.0.13 hashed such an S
    /// without its leading zeros for 'req3', so a failure then is worth a retry with a
    /// fresh key (one handshake in 256) rather than a fallback.
    public var secretHasLeadingZero: Bool { sharedSecret.first == 0 }

    /// An initiator for `infoHash` offering `provide`; its key and PadA drawn from `generator`.
    public static func initiator<G: RandomNumberGenerator>(infoHash: InfoHash, provide: MSECryptoMethods,
                                                           using generator: inout G) -> MSEHandshake {
        var handshake = MSEHandshake(role: .initiator, using: &generator)
        handshake.infoHash = infoHash
        handshake.provide = provide
        return handshake
    }

    /// A responder accepting the methods `allowed` (choosing `preferred` when offered
    /// more than one); `findTorrent` maps HASH('req2', info hash) to one of our torrents.
    public static func responder<G: RandomNumberGenerator>(allowed: MSECryptoMethods, preferred: MSECryptoMethods,
                                                           findTorrent: @escaping (Digest20) -> InfoHash?,
                                                           using generator: inout G) -> MSEHandshake {
        var handshake = MSEHandshake(role: .responder, using: &generator)
        handshake.allowed = allowed
        handshake.preferred = preferred
        handshake.findTorrent = findTorrent
        return handshake
    }

    private init<G: RandomNumberGenerator>(role: Role, using generator: inout G) {
        self.role = role
        key = MSEKeyExchange(using: &generator)
        padding = (0..<Int.random(in: 0...Self.maxPadding, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        state = role == .initiator ? .awaitingYb : .awaitingYa
    }

    /// HASH('req2', info hash): what a responder's `findTorrent` is asked about.
    public static func torrentKey(_ infoHash: InfoHash) -> Digest20 {
        hash("req2", infoHash.bytes)
    }

    /// What a connection's first bytes are: a plaintext BitTorrent handshake (19, then
    /// "BitTorrent protocol") or, anything else, an MSE public key.
    public enum Stream: Sendable { case plaintext, encrypted }

    /// Tells the two apart from the first bytes; nil until it can (at most 20 bytes).
    public static func classify(_ prefix: some Collection<UInt8>) -> Stream? {
        let expected: [UInt8] = [19] + Array("BitTorrent protocol".utf8)
        for (byte, wanted) in zip(prefix, expected) where byte != wanted { return .encrypted }
        return prefix.count >= expected.count ? .plaintext : nil
    }

    /// What the initiator sends first: Ya and PadA. The responder sends nothing first.
    public func start() -> [UInt8] {
        role == .initiator ? key.publicKey + padding : []
    }

    /// Feeds bytes from the other side. Throws once the handshake cannot succeed; after
    /// an outcome, no more input is taken (the rest of the stream is the caller's).
    public mutating func received(_ bytes: some Collection<UInt8>) throws(MSEError) -> Output {
        switch state {
        case .failed: throw .alreadyFailed
        case .done: preconditionFailure("MSE input after the handshake")
        default: break
        }
        input.append(contentsOf: bytes)
        var output = Output()
        do {
            while try step(&output) {}
        } catch {
            state = .failed
            throw error
        }
        if output.outcome != nil { input = [] }
        return output
    }

    /// One step of the state machine; false when it needs more input or is done.
    private mutating func step(_ output: inout Output) throws(MSEError) -> Bool {
        switch state {
        case .awaitingYb:
            guard let remote = take(MSEKeyExchange.keyLength) else { return false }
            try agree(remote)
            output.send += stepThree()
            let keyB = Self.hash("keyB", sharedSecret, infoHash!.bytes)
            var patternCipher = RC4.mse(key: keyB.bytes)
            let pattern = patternCipher.applied(Self.verificationConstant)
            windowStart = position
            state = .seekingVC(pattern: pattern, patternCipher: patternCipher, searchedTo: position)
            return true

        case .seekingVC(let pattern, let patternCipher, let searchedTo):
            guard let found = try search(pattern, from: searchedTo) else {
                state = .seekingVC(pattern: pattern, patternCipher: patternCipher, searchedTo: max(searchedTo, input.count - pattern.count + 1))
                return false
            }
            position = found + pattern.count
            decryptor = patternCipher
            state = .readingSelect
            return true

        case .readingSelect:
            guard let fields = takeDecrypted(6) else { return false }
            let selected = MSECryptoMethods(rawValue: Self.uint32(fields[0..<4]))
            guard selected == .plaintext || selected == .rc4, provide.contains(selected) else {
                throw .invalidSelection(selected.rawValue)
            }
            let padLength = Int(fields[4]) << 8 | Int(fields[5])
            guard padLength <= Self.maxPadding else { throw .paddingTooLong(padLength) }
            state = .skippingPadD(remaining: padLength, selected: selected)
            return true

        case .skippingPadD(let remaining, let selected):
            guard takeDecrypted(remaining) != nil else { return false }
            output.outcome = finish(selected, payload: [])
            return false

        case .awaitingYa:
            guard let remote = take(MSEKeyExchange.keyLength) else { return false }
            try agree(remote)
            output.send += key.publicKey + padding
            windowStart = position
            state = .seekingReq1(marker: Self.hash("req1", sharedSecret).bytes, searchedTo: position)
            return true

        case .seekingReq1(let marker, let searchedTo):
            guard let found = try search(marker, from: searchedTo) else {
                state = .seekingReq1(marker: marker, searchedTo: max(searchedTo, input.count - marker.count + 1))
                return false
            }
            position = found + marker.count
            state = .readingObfuscatedHash
            return true

        case .readingObfuscatedHash:
            guard let obfuscated = take(20) else { return false }
            guard let found = lookUp(obfuscated) else { throw .unknownTorrent }
            infoHash = found
            decryptor = RC4.mse(key: Self.hash("keyA", sharedSecret, found.bytes).bytes)
            encryptor = RC4.mse(key: Self.hash("keyB", sharedSecret, found.bytes).bytes)
            state = .readingProvide
            return true

        case .readingProvide:
            guard let fields = takeDecrypted(14) else { return false }
            guard Array(fields[0..<8]) == Self.verificationConstant else { throw .badVerificationConstant }
            let provided = MSECryptoMethods(rawValue: Self.uint32(fields[8..<12]))
            let padLength = Int(fields[12]) << 8 | Int(fields[13])
            guard padLength <= Self.maxPadding else { throw .paddingTooLong(padLength) }
            state = .skippingPadC(remaining: padLength, provided: provided)
            return true

        case .skippingPadC(let remaining, let provided):
            guard takeDecrypted(remaining) != nil else { return false }
            state = .readingPayloadLength(provided: provided)
            return true

        case .readingPayloadLength(let provided):
            guard let fields = takeDecrypted(2) else { return false }
            let length = Int(fields[0]) << 8 | Int(fields[1])
            guard length <= Self.maxInitialPayload else { throw .initialPayloadTooLong(length) }
            state = .readingPayload(length: length, provided: provided)
            return true

        case .readingPayload(let length, let provided):
            guard let payload = takeDecrypted(length) else { return false }
            let common = provided.intersection(allowed)
            let selected: MSECryptoMethods
            if common.contains(preferred) {
                selected = preferred
            } else if common.contains(.rc4) {
                selected = .rc4
            } else if common.contains(.plaintext) {
                selected = .plaintext
            } else {
                throw .noCommonMethod(offered: provided.rawValue)
            }
            var reply = Self.verificationConstant + Self.bytes(selected.rawValue) + [0, 0]  // no PadD
            encryptor!.apply(&reply)
            output.send += reply
            output.outcome = finish(selected, payload: payload)
            return false

        case .done, .failed:
            return false
        }
    }

    /// Computes S from the other side's public key.
    private mutating func agree(_ remote: ArraySlice<UInt8>) throws(MSEError) {
        guard let secret = key.sharedSecret(with: remote) else { throw .invalidPublicKey }
        self.sharedSecret = secret
    }

    /// Step 3, with the initiator's ciphers set up.
    private mutating func stepThree() -> [UInt8] {
        let skey = infoHash!.bytes
        var encryptor = RC4.mse(key: Self.hash("keyA", sharedSecret, skey).bytes)
        let payload = initialPayload
        precondition(payload.count <= Self.maxInitialPayload, "MSE initial payload too long")
        var message = Self.hash("req1", sharedSecret).bytes
        message += Self.xor(Self.hash("req2", skey).bytes, Self.hash("req3", sharedSecret).bytes)
        var encrypted = Self.verificationConstant + Self.bytes(provide.rawValue) + [0, 0]  // no PadC
        encrypted += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload
        encryptor.apply(&encrypted)
        self.encryptor = encryptor
        return message + encrypted
    }

    /// The info hash whose HASH('req2', ·) is `obfuscated` xor HASH('req3', S), also
    /// trying S without its leading zeros (libtorrent before 2.0.13 hashed it so).
    private func lookUp(_ obfuscated: ArraySlice<UInt8>) -> InfoHash? {
        var secrets = [sharedSecret]
        if sharedSecret.first == 0 { secrets.append(Array(sharedSecret.drop { $0 == 0 })) }
        for candidate in secrets {
            let unmasked = Self.xor(Array(obfuscated), Self.hash("req3", candidate).bytes)
            if let found = findTorrent(Digest20(unmasked)!) { return found }
        }
        return nil
    }

    private mutating func finish(_ selected: MSECryptoMethods, payload: [UInt8]) -> Outcome {
        var rest = Array(input[position...])
        position = input.count
        if selected == .rc4 { decryptor!.apply(&rest) }
        state = .done
        let rc4 = selected == .rc4
        return Outcome(infoHash: infoHash!, method: selected, encryptor: rc4 ? encryptor : nil,
                       decryptor: rc4 ? decryptor : nil, payload: payload + rest)
    }

    /// Where `pattern` starts in the input at or after `from`, within the padding window;
    /// nil when more input is needed; throws once the window is passed.
    private func search(_ pattern: [UInt8], from: Int) throws(MSEError) -> Int? {
        let lastStart = windowStart + Self.maxPadding
        var start = max(from, position)
        while start + pattern.count <= input.count && start <= lastStart {
            if input[start] == pattern[0] && input[start..<start + pattern.count].elementsEqual(pattern) { return start }
            start += 1
        }
        if start > lastStart { throw .noSynchronization }
        return nil
    }

    private mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard input.count - position >= count else { return nil }
        defer { position += count }
        return input[position..<position + count]
    }

    private mutating func takeDecrypted(_ count: Int) -> [UInt8]? {
        guard let slice = take(count) else { return nil }
        var bytes = Array(slice)
        decryptor!.apply(&bytes)
        return bytes
    }

    static func hash(_ label: String, _ parts: [UInt8]...) -> Digest20 {
        var hasher = SHA1()
        hasher.update(Array(label.utf8))
        for part in parts { hasher.update(part) }
        return hasher.finalize()
    }

    private static func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] { zip(a, b).map { $0 ^ $1 } }

    private static func uint32(_ bytes: some Collection<UInt8>) -> UInt32 {
        bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    private static func bytes(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }
}
