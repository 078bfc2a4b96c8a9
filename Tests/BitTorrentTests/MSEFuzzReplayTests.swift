import Foundation
import TestSupport
import Testing

@testable import BitTorrent

/// Replays the `mse` fuzz target's corpus and crashers (Fuzz/corpus/mse, Fuzz/crashers/mse)
/// through its check: a genuine exchange with the input's mask laid over step 3 or 4 (or
/// raw input for a fresh machine) ends the same way fed at once and in small pieces.
@Suite("MSE fuzz inputs")
struct MSEFuzzReplayTests {
    static let inputs = FuzzInputs.files("mse")

    @Test("the corpus is there")
    func corpusExists() { #expect(!Self.inputs.isEmpty) }

    @Test("inputs end alike at once and in pieces", arguments: inputs)
    func replay(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        guard let control = bytes.first else { return }
        let rest = Array(bytes.dropFirst())
        let torrent = SHA1.hash(Array("fuzz torrent".utf8))
        let keys = [MSEHandshake.torrentKey(torrent): torrent]
        // The same machines, in the same order from the same seed, as Fuzz/FuzzMSE.swift.
        var random = SplitMix64(seed: UInt64(control >> 3))
        let methods: MSECryptoMethods = control & 4 == 0 ? [.plaintext, .rc4] : .rc4
        func responder() -> MSEHandshake {
            .responder(allowed: methods, preferred: .plaintext, findTorrent: { keys[$0] }, using: &random)
        }
        func initiator() -> MSEHandshake {
            var machine = MSEHandshake.initiator(infoHash: torrent, provide: methods, using: &random)
            machine.initialPayload = Array(rest.prefix(68))
            return machine
        }
        func masked(_ message: [UInt8]) -> [UInt8] {
            zip(message, rest).map { $0 ^ $1 } + message.dropFirst(rest.count) + rest.dropFirst(message.count)
        }
        let chunk = Int(control >> 3) % 7 + 1
        let machine: MSEHandshake
        var input = rest
        switch control & 3 {
        case 0:
            machine = responder()
        case 1:
            let a = initiator()
            _ = a.start()
            machine = a
        case 2:
            var a = initiator(), b = responder()
            let step3 = try a.received(try b.received(a.start()).send).send
            machine = b
            input = masked(step3)
        default:
            var a = initiator(), b = responder()
            let step3 = try a.received(try b.received(a.start()).send).send
            input = masked(try b.received(step3).send)
            machine = a
        }
        #expect(Self.ending(machine, input, chunk: max(input.count, 1)) == Self.ending(machine, input, chunk: chunk))
    }

    /// How feeding `input` in `chunk`-byte pieces ends: an error, the stream, or "more".
    static func ending(_ start: MSEHandshake, _ input: [UInt8], chunk: Int) -> String {
        var machine = start
        var offset = 0
        repeat {
            let end = min(input.count, offset + chunk)
            do {
                let output = try machine.received(input[offset..<end])
                if let outcome = output.outcome {
                    var after = Array(input[end...])
                    var decryptor = outcome.decryptor
                    decryptor?.apply(&after)
                    return "done \(outcome.method) \(outcome.payload + after)"
                }
            } catch {
                return "failed \(error)"
            }
            offset = end
        } while offset < input.count
        return "incomplete"
    }
}
