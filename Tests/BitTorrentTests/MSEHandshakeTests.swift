import TestSupport
import Testing

@testable import BitTorrent

@Suite("MSE handshake state machine")
struct MSEHandshakeTests {
    static let torrent = SHA1.hash(Array("torrent one".utf8))
    static let other = SHA1.hash(Array("torrent two".utf8))
    static let payload = Handshake(infoHash: torrent, peerID: SHA1.hash([1])).encoded

    static func responder(knowing hashes: [InfoHash] = [torrent, other], allowed: MSECryptoMethods = [.plaintext, .rc4],
                          preferred: MSECryptoMethods = .rc4, seed: UInt64) -> MSEHandshake {
        var random = SplitMix64(seed: seed)
        let keys = Dictionary(uniqueKeysWithValues: hashes.map { (MSEHandshake.torrentKey($0), $0) })
        return .responder(allowed: allowed, preferred: preferred, findTorrent: { keys[$0] }, using: &random)
    }

    static func initiator(for hash: InfoHash = torrent, provide: MSECryptoMethods = [.plaintext, .rc4],
                          seed: UInt64) -> MSEHandshake {
        var random = SplitMix64(seed: seed)
        var handshake = MSEHandshake.initiator(infoHash: hash, provide: provide, using: &random)
        handshake.initialPayload = payload
        return handshake
    }

    /// Feeds `bytes` in pieces of `chunk` bytes (0: all at once); every output's bytes joined.
    static func feed(_ machine: inout MSEHandshake, _ bytes: [UInt8], chunk: Int) throws(MSEError)
        -> (sent: [UInt8], outcome: MSEHandshake.Outcome?) {
        var sent: [UInt8] = []
        var start = 0
        repeat {
            let end = chunk == 0 ? bytes.count : min(bytes.count, start + chunk)
            let output = try machine.received(bytes[start..<end])
            sent += output.send
            start = end
            if let outcome = output.outcome {
                // What arrived after the handshake, decrypted as the caller would.
                var decryptor = outcome.decryptor
                var rest = Array(bytes[end...])
                decryptor?.apply(&rest)
                return (sent, MSEHandshake.Outcome(infoHash: outcome.infoHash, method: outcome.method,
                                                   encryptor: outcome.encryptor, decryptor: decryptor,
                                                   payload: outcome.payload + rest))
            }
        } while start < bytes.count
        return (sent, nil)
    }

    /// A whole handshake between two machines; `trailer` is stream data the responder
    /// sends right behind step 4 (encrypted when RC4 is selected).
    static func run(_ initiator: inout MSEHandshake, _ responder: inout MSEHandshake, chunk: Int = 0,
                    trailer: [UInt8] = []) throws(MSEError) -> (MSEHandshake.Outcome, MSEHandshake.Outcome) {
        let (yb, none) = try feed(&responder, initiator.start(), chunk: chunk)
        #expect(none == nil)
        let (step3, noneYet) = try feed(&initiator, yb, chunk: chunk)
        #expect(noneYet == nil)
        let (step4, responded) = try feed(&responder, step3, chunk: chunk)
        guard var responded else { Issue.record("responder did not finish"); throw .noSynchronization }
        var stream = trailer
        if responded.method == .rc4 { responded.encryptor!.apply(&stream) }
        let (nothing, initiated) = try feed(&initiator, step4 + stream, chunk: chunk)
        #expect(nothing.isEmpty)
        guard let initiated else { Issue.record("initiator did not finish"); throw .noSynchronization }
        return (initiated, responded)
    }

    static let offers: [(provide: MSECryptoMethods, preferred: MSECryptoMethods, expected: MSECryptoMethods)] = [
        (.rc4, .rc4, .rc4), ([.plaintext, .rc4], .rc4, .rc4), ([.plaintext, .rc4], .plaintext, .plaintext),
        (.plaintext, .rc4, .plaintext), (.rc4, .plaintext, .rc4),
    ]

    @Test("our initiator and responder agree on RC4 and plaintext, for every kind of offer")
    func bothModes() throws {
        for (provide, preferred, expected) in Self.offers { try agree(provide, preferred, expected) }
    }

    func agree(_ provide: MSECryptoMethods, _ preferred: MSECryptoMethods, _ expected: MSECryptoMethods) throws {
        for seed in UInt64(0)..<8 {
            var initiator = Self.initiator(provide: provide, seed: seed)
            var responder = Self.responder(preferred: preferred, seed: seed + 100)
            let trailer = Array("stream after the handshake".utf8)
            var (a, b) = try Self.run(&initiator, &responder, trailer: trailer)
            #expect(a.method == expected && b.method == expected)
            #expect(a.infoHash == Self.torrent && b.infoHash == Self.torrent)
            #expect(b.payload == Self.payload, "the responder gets the initial payload")
            #expect(a.payload == trailer, "the initiator gets the stream after PadD, decrypted")
            #expect((a.encryptor == nil) == (expected == .plaintext))
            if expected == .rc4 {
                var message = Array("have 7".utf8)
                a.encryptor!.apply(&message)
                #expect(message != Array("have 7".utf8))
                b.decryptor!.apply(&message)
                #expect(message == Array("have 7".utf8))
            }
        }
    }

    @Test("input split at every byte boundary gives the same outcome as input all at once")
    func everyBoundary() throws {
        for chunk in [1, 2, 3, 7, 20, 95, 97, 513] {
            var initiator = Self.initiator(seed: 3)
            var responder = Self.responder(seed: 4)
            let (a, b) = try Self.run(&initiator, &responder, chunk: chunk, trailer: [9, 9, 9])
            #expect(a.method == .rc4 && b.payload == Self.payload && a.payload == [9, 9, 9], "chunk \(chunk)")
        }
    }

    @Test("every prefix of a valid exchange asks for more: no outcome, no error")
    func truncated() throws {
        let initiator = Self.initiator(seed: 5)
        var responder = Self.responder(seed: 6)
        let first = initiator.start()
        for cut in 0..<first.count {
            var copy = responder
            let output = try copy.received(first[..<cut])
            #expect(output.outcome == nil && (cut < 96) == output.send.isEmpty, "cut \(cut)")
        }
        let yb = try responder.received(first).send
        var afterYb = initiator
        let step3 = try afterYb.received(yb).send
        for cut in 0..<step3.count {
            var copy = responder
            #expect(try copy.received(step3[..<cut]).outcome == nil, "step 3 cut \(cut)")
        }
        let step4 = try responder.received(step3).send
        for cut in 0..<step4.count {
            var copy = afterYb
            #expect(try copy.received(step4[..<cut]).outcome == nil, "step 4 cut \(cut)")
        }
        #expect(try afterYb.received(step4).outcome?.method == .rc4)
    }

    @Test("a torrent the responder does not have: unknown torrent")
    func wrongInfoHash() {
        var initiator = Self.initiator(for: SHA1.hash([0xEE]), seed: 8)
        var responder = Self.responder(seed: 9)
        #expect(throws: MSEError.unknownTorrent) { try Self.run(&initiator, &responder) }
        #expect(throws: MSEError.alreadyFailed) { try responder.received([1]) }
    }

    @Test("no method in common: refused")
    func noCommonMethod() {
        var initiator = Self.initiator(provide: .plaintext, seed: 10)
        var responder = Self.responder(allowed: .rc4, seed: 11)
        #expect(throws: MSEError.noCommonMethod(offered: 1)) { try Self.run(&initiator, &responder) }
    }

    @Test("a crypto_select that is not exactly one offered method is refused by the initiator",
          arguments: [UInt32(1), 3, 0, 4])
    func invalidSelection(select: UInt32) throws {
        var initiator = Self.initiator(provide: .rc4, seed: 12)
        var responder = Self.responder(seed: 13)
        let yb = try responder.received(initiator.start()).send
        _ = try initiator.received(yb)
        let step4 = try Self.forgedStepFour(initiator: initiator, select: select)
        #expect(throws: MSEError.invalidSelection(select)) { try initiator.received(step4) }
    }

    /// Step 4 as a responder would send it with `select`, built from the initiator's view
    /// of the keys (`MSEHandshake.hash`), for the selection test.
    static func forgedStepFour(initiator: MSEHandshake, select: UInt32) throws -> [UInt8] {
        let secret = try #require(initiator.sharedSecret)
        var cipher = RC4.mse(key: MSEHandshake.hash("keyB", secret, torrent.bytes).bytes)
        var message = [UInt8](repeating: 0, count: 8) + [0, 0, 0, UInt8(select)] + [0, 0]
        cipher.apply(&message)
        return message
    }

    @Test("garbage instead of a handshake fails within the padding limit")
    func garbage() throws {
        var random = SplitMix64(seed: 42)
        for seed in UInt64(0)..<20 {
            var responder = Self.responder(seed: seed)
            let junk = random.bytes(96 + 600)
            do {
                for byte in junk { _ = try responder.received([byte]) }
                Issue.record("600 bytes of padding without the marker were accepted")
            } catch {
                #expect(error == .noSynchronization || error == .invalidPublicKey)
            }
            var initiator = Self.initiator(seed: seed)
            _ = initiator.start()
            do {
                _ = try initiator.received(random.bytes(96 + 600))
                Issue.record("600 bytes after Yb without VC were accepted")
            } catch {
                #expect(error == .noSynchronization || error == .invalidPublicKey)
            }
        }
    }

    @Test("padding up to 512 bytes is found; 513 is not")
    func paddingLimit() throws {
        for padding in [0, 1, 511, 512, 513] {
            var initiator = Self.initiator(seed: 20)
            var responder = Self.responder(seed: 21)
            let ya = Array(initiator.start().prefix(96)) + [UInt8](repeating: 0x55, count: padding)
            let yb = try responder.received(ya).send
            let step3 = try initiator.received(yb).send
            if padding <= 512 {
                #expect(try responder.received(step3).outcome != nil, "padding \(padding)")
            } else {
                #expect(throws: MSEError.noSynchronization) { try responder.received(step3) }
            }
        }
    }

    @Test("an initiator hashing S without its leading zeros for req3 (libtorrent < 2.0.13) is understood")
    func unpaddedSecret() throws {
        // Find seeds whose secret starts with a zero byte.
        var seed: UInt64 = 1000
        while true {
            var initiator = Self.initiator(seed: seed)
            var responder = Self.responder(seed: seed + 1)
            let yb = try responder.received(initiator.start()).send
            _ = try initiator.received(yb)
            if initiator.secretHasLeadingZero { break }
            seed += 2
        }
        var initiator = Self.initiator(seed: seed)
        var responder = Self.responder(seed: seed + 1)
        let yb = try responder.received(initiator.start()).send
        var step3 = try initiator.received(yb).send
        let secret = try #require(initiator.sharedSecret)
        let right = MSEHandshake.hash("req3", secret).bytes
        let buggy = MSEHandshake.hash("req3", Array(secret.drop { $0 == 0 })).bytes
        for index in 0..<20 { step3[20 + index] ^= right[index] ^ buggy[index] }
        let outcome = try #require(try responder.received(step3).outcome)
        #expect(outcome.infoHash == Self.torrent && outcome.payload == Self.payload)
    }

    @Test("the first bytes tell a plaintext handshake from an encrypted one")
    func classify() {
        let plain = Self.payload
        for cut in 0..<20 { #expect(MSEHandshake.classify(plain[..<cut]) == nil, "cut \(cut)") }
        #expect(MSEHandshake.classify(plain[..<20]) == .plaintext)
        #expect(MSEHandshake.classify(plain[...]) == .plaintext)
        #expect(MSEHandshake.classify([0x14]) == .encrypted)
        #expect(MSEHandshake.classify([19, 0x41]) == .encrypted)
        #expect(MSEHandshake.classify([19] + Array("BitTorrent protocoX".utf8)) == .encrypted)
    }
}
