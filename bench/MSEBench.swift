// MSE micro-benchmark, compiled with the BitTorrent sources (bench/mse_bench.sh):
// one 768-bit modexp of each kind, 1000 complete handshakes between our initiator and
// responder (both sides' CPU, in one process), and RC4 throughput in place.
//
// `mse-bench dial HOST PORT INFOHASH COUNT`: our MSE initiator against another client
// (bench/mse_interop_bench.py runs it against libtorrent): COUNT times, a blocking TCP
// connection to HOST:PORT, the MSE handshake offering RC4 only with our BitTorrent
// handshake as the initial payload, then the peer's BitTorrent handshake read through
// the negotiated stream and its info hash checked; successes and failures by kind.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@main
struct MSEBench {
    static func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func main() {
        let arguments = CommandLine.arguments
        if arguments.count > 1, arguments[1] == "dial" {
            guard arguments.count == 6, let port = UInt16(arguments[3]), let torrent = InfoHash(string: arguments[4]),
                  let count = Int(arguments[5]) else {
                print("usage: mse-bench dial HOST PORT INFOHASH COUNT")
                exit(2)
            }
            Dialer.run(host: arguments[2], port: port, infoHash: torrent, count: count)
            return
        }
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

/// Our MSE initiator over plain blocking sockets, one connection at a time.
enum Dialer {
    /// How one attempt ended: "ok" or a failure kind.
    struct Attempt {
        var result: String
        /// S began with a zero byte (libtorrent before 2.0.13 mishandles that S).
        var leadingZero = false
        var seconds = 0.0
    }

    static func run(host: String, port: UInt16, infoHash: InfoHash, count: Int) {
        var kinds: [String: Int] = [:]
        var leadingZeroFailures = 0
        var leadingZeroSuccesses = 0
        var retried = 0
        var retriedOK = 0
        var times: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<count {
            let attempt = once(host: host, port: port, infoHash: infoHash)
            kinds[attempt.result, default: 0] += 1
            if attempt.result == "ok" {
                times.append(attempt.seconds)
                if attempt.leadingZero { leadingZeroSuccesses += 1 }
            } else if attempt.leadingZero {
                leadingZeroFailures += 1
                // What the engine does with such a failure: one retry with a fresh key.
                retried += 1
                if once(host: host, port: port, infoHash: infoHash).result == "ok" { retriedOK += 1 }
            }
        }
        let total = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        times.sort()
        let median = times.isEmpty ? 0 : times[times.count / 2] * 1e3
        let ok = kinds["ok", default: 0]
        print("\(ok)/\(count) handshakes succeeded (MSE, RC4 stream, then the BitTorrent handshakes), " +
              String(format: "%.1f s in all, median %.2f ms each", total, median))
        for (kind, number) in kinds.sorted(by: { $0.value > $1.value }) where kind != "ok" {
            print("  failed: \(number) x \(kind)")
        }
        print("  S with a leading zero byte: \(leadingZeroFailures) failed, \(leadingZeroSuccesses) succeeded; " +
              "retried once with a fresh key: \(retriedOK)/\(retried) succeeded")
        print("RESULT ok=\(ok) total=\(count) leading_zero_failed=\(leadingZeroFailures) retried_ok=\(retriedOK)")
    }

    static func once(host: String, port: UInt16, infoHash: InfoHash) -> Attempt {
        let begin = DispatchTime.now().uptimeNanoseconds
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return Attempt(result: "socket() failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return Attempt(result: "connect: " + String(cString: strerror(errno))) }

        var random = SystemRandomNumberGenerator()
        var handshake = MSEHandshake.initiator(infoHash: infoHash, provide: .rc4, using: &random)
        let peerID = PeerID((0..<20).map { _ in UInt8.random(in: 0...255) })!
        handshake.initialPayload = Handshake(infoHash: infoHash, peerID: peerID).encoded
        guard sendAll(fd, handshake.start()) else { return Attempt(result: "send failed") }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var outcome: MSEHandshake.Outcome?
        while outcome == nil {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 {
                let why = n == 0 ? "closed by the peer" : (errno == EAGAIN ? "timed out (5 s)" : String(cString: strerror(errno)))
                return Attempt(result: "MSE: \(why)", leadingZero: handshake.secretHasLeadingZero)
            }
            do {
                let output = try handshake.received(buffer[0..<n])
                guard sendAll(fd, output.send) else { return Attempt(result: "send failed", leadingZero: handshake.secretHasLeadingZero) }
                outcome = output.outcome
            } catch {
                return Attempt(result: error.description, leadingZero: handshake.secretHasLeadingZero)
            }
        }
        guard var stream = outcome, stream.method == .rc4, var decryptor = stream.decryptor else {
            return Attempt(result: "MSE: not RC4 selected", leadingZero: handshake.secretHasLeadingZero)
        }
        var received = stream.payload
        while received.count < Handshake.length {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 {
                let why = n == 0 ? "closed by the peer" : (errno == EAGAIN ? "timed out (5 s)" : String(cString: strerror(errno)))
                return Attempt(result: "BitTorrent handshake: \(why)", leadingZero: handshake.secretHasLeadingZero)
            }
            received += decryptor.applied(buffer[0..<n])
        }
        stream.decryptor = decryptor
        guard let theirs = try? Handshake.decode(received[...]) else {
            return Attempt(result: "BitTorrent handshake: malformed", leadingZero: handshake.secretHasLeadingZero)
        }
        guard theirs.infoHash == infoHash else {
            return Attempt(result: "BitTorrent handshake: wrong info hash", leadingZero: handshake.secretHasLeadingZero)
        }
        return Attempt(result: "ok", leadingZero: handshake.secretHasLeadingZero,
                       seconds: Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e9)
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
