// MSE micro-benchmark, compiled with the BitTorrent sources (bench/mse_bench.sh):
// one 768-bit modexp of each kind, 1000 complete handshakes between our initiator and
// responder (both sides' CPU, in one process), and RC4 throughput in place.
import Foundation

@main
struct MSEBench {
    static func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func main() {
        var random = SystemRandomNumberGenerator()
        let a = MSEKeyExchange(using: &random)
        let b = MSEKeyExchange(using: &random)
        let rounds = 2000
        var sink = 0
        let keyTime = seconds { for _ in 0..<rounds { sink &+= Int(MSEKeyExchange(using: &random).publicKey[0]) } }
        let secretTime = seconds { for _ in 0..<rounds { sink &+= Int(a.sharedSecret(with: b.publicKey)![0]) } }
        print(String(format: "public key 2^x mod P (160-bit x): %.3f ms", keyTime / Double(rounds) * 1e3))
        print(String(format: "shared secret y^x mod P:          %.3f ms", secretTime / Double(rounds) * 1e3))

        let torrent = SHA1.hash(Array("bench".utf8))
        let key = MSEHandshake.torrentKey(torrent)
        let payload = Handshake(infoHash: torrent, peerID: SHA1.hash([1])).encoded
        var succeeded = 0
        let handshakes = 1000
        let total = seconds {
            for _ in 0..<handshakes {
                var initiator = MSEHandshake.initiator(infoHash: torrent, provide: [.rc4, .plaintext], using: &random)
                initiator.initialPayload = payload
                var responder = MSEHandshake.responder(allowed: [.rc4, .plaintext], preferred: .rc4,
                                                       findTorrent: { $0 == key ? torrent : nil }, using: &random)
                guard let yb = try? responder.received(initiator.start()).send,
                      let step3 = try? initiator.received(yb).send,
                      let reply = try? responder.received(step3), reply.outcome?.payload == payload,
                      let done = try? initiator.received(reply.send), done.outcome?.method == .rc4
                else { continue }
                succeeded += 1
            }
        }
        let each: Double = total / Double(handshakes) * 1e3
        print("\(succeeded)/\(handshakes) handshakes, " + String(format: "%.3f ms each (both sides), %.3f ms per side", each, each / 2))

        var cipher = RC4.mse(key: Array(repeating: 7, count: 20))
        var block = [UInt8](repeating: 0, count: 1 << 20)
        let megabytes = 512
        let rc4Time = seconds { for _ in 0..<megabytes { cipher.apply(&block) } }
        print(String(format: "RC4 in place: %.0f MiB/s", Double(megabytes) / rc4Time))
        if sink == 42 { print("") }
    }
}
