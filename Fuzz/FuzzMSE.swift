// libFuzzer target: the MSE handshake parser. The input's first byte picks what is fed
// and how it is cut; the rest is either raw bytes for a fresh machine or an XOR mask laid
// over a genuine exchange (RC4 is a stream cipher, so masking the ciphertext sets the
// plaintext fields — VC, crypto_provide/select, padding and payload lengths — to what the
// fuzzer chooses) plus bytes appended behind it. Never crashes; byte-by-byte input and the
// same input at once end the same way (the same outcome or the same error); an outcome's
// payload never exceeds what came in.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMSE(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let control = bytes.first else { return 0 }
    let rest = Array(bytes.dropFirst())
    let torrent = SHA1.hash(Array("fuzz torrent".utf8))
    var random = FuzzRandom(seed: UInt64(control >> 3))
    let keys = [MSEHandshake.torrentKey(torrent): torrent]
    func responder() -> MSEHandshake {
        .responder(allowed: control & 4 == 0 ? [.plaintext, .rc4] : .rc4, preferred: .plaintext,
                   findTorrent: { keys[$0] }, using: &random)
    }
    func initiator() -> MSEHandshake {
        var machine = MSEHandshake.initiator(infoHash: torrent, provide: control & 4 == 0 ? [.plaintext, .rc4] : .rc4,
                                             using: &random)
        machine.initialPayload = Array(rest.prefix(68))
        return machine
    }
    let chunk = Int(control >> 3) % 7 + 1
    switch control & 3 {
    case 0:
        compare(responder(), rest, chunk: chunk)
    case 1:
        var machine = initiator()
        _ = machine.start()
        compare(machine, rest, chunk: chunk)
    case 2:
        // A genuine step 3, masked and extended, into the responder.
        var a = initiator(), b = responder()
        guard let yb = try? b.received(a.start()).send, let step3 = try? a.received(yb).send else { fatalError("genuine exchange failed") }
        compare(b, mask(step3, rest), chunk: chunk)
    default:
        // A genuine step 4, masked and extended, into the initiator.
        var a = initiator(), b = responder()
        guard let yb = try? b.received(a.start()).send, let step3 = try? a.received(yb).send,
              let step4 = try? b.received(step3).send
        else { fatalError("genuine exchange failed") }
        compare(a, mask(step4, rest), chunk: chunk)
    }
    return 0
}

/// `message` XOR `mask` over their common length, then the rest of `mask` appended.
private func mask(_ message: [UInt8], _ mask: [UInt8]) -> [UInt8] {
    zip(message, mask).map { $0 ^ $1 } + message.dropFirst(mask.count) + mask.dropFirst(message.count)
}

/// Feeds `input` at once and in `chunk`-byte pieces to copies of `machine`; both must end alike.
private func compare(_ machine: MSEHandshake, _ input: [UInt8], chunk: Int) {
    let whole = run(machine, input, chunk: input.count)
    let pieces = run(machine, input, chunk: chunk)
    guard whole == pieces else { fatalError("at once: \(whole); in \(chunk)-byte pieces: \(pieces)") }
}

private enum Ending: Equatable {
    case failed(MSEError)
    case incomplete(sent: Int)
    case done(method: MSECryptoMethods, infoHash: InfoHash, stream: [UInt8], sent: Int)
}

private func run(_ start: MSEHandshake, _ input: [UInt8], chunk: Int) -> Ending {
    var machine = start
    var sent = 0
    var offset = 0
    repeat {
        let end = min(input.count, offset + max(chunk, 1))
        let output: MSEHandshake.Output
        do {
            output = try machine.received(input[offset..<end])
        } catch {
            return .failed(error)
        }
        sent += output.send.count
        if let outcome = output.outcome {
            var after = Array(input[end...])
            var decryptor = outcome.decryptor
            decryptor?.apply(&after)
            let stream = outcome.payload + after
            guard stream.count <= input.count else { fatalError("more stream than input") }
            guard (outcome.method == .rc4) == (outcome.encryptor != nil) else { fatalError("ciphers do not match the method") }
            return .done(method: outcome.method, infoHash: outcome.infoHash, stream: stream, sent: sent)
        }
        offset = end
    } while offset < input.count
    return .incomplete(sent: sent)
}

/// SplitMix64, for keys and padding (the fuzz target has no test-support module).
private struct FuzzRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
