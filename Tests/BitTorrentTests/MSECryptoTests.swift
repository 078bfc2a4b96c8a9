import Foundation
import TestSupport
import Testing

@testable import BitTorrent

@Suite("MSE crypto: RC4 and the 768-bit Diffie-Hellman")
struct MSECryptoTests {
    /// RFC 6229 keystream at the RFC's offsets (the same bytes OpenSSL's RC4 gives).
    static let rfc6229: [(key: String, vectors: [Int: String])] = [
        ("0102030405", [0: "b2396305f03dc027ccc3524a0a1118a8", 16: "6982944f18fc82d589c403a47a0d0919",
                        240: "28cb1132c96ce286421dcaadb8b69eae", 256: "1cfcf62b03eddb641d77dfcf7f8d8c93",
                        1520: "3294f744d8f9790507e70f62e5bbceea", 1536: "d8729db41882259bee4f825325f5a130",
                        4080: "068326a2118416d21f9d04b2cd1ca050", 4096: "ff25b58995996707e51fbdf08b34d875"]),
        ("0102030405060708090a0b0c0d0e0f10",
         [0: "9ac7cc9a609d1ef7b2932899cde41b97", 16: "5248c4959014126a6e8a84f11d1a9e1c",
          1520: "b40110c4190b5622a96116b0017ed297", 4096: "a36a4c301ae8ac13610ccbc12256cacc"]),
        ("1ada31d5cf688221c109163908ebe51debb46227c6cc8b37641910833222772a",
         [0: "dd5bcb0018e922d494759d7c395d02d3", 256: "f8cb6274db99b80b1d2012a98ed48f0e",
          1536: "8c3c13f8c2388bb73f38576e65b7c446", 4080: "d5a39e3dfcc50280bac4a6b5aa0dca7d"]),
    ]

    @Test("RC4 keystream matches RFC 6229")
    func rc4Vectors() {
        for (key, vectors) in Self.rfc6229 {
            var cipher = RC4(key: Hex.decode(key)!)
            var stream = [UInt8](repeating: 0, count: 4112)
            cipher.apply(&stream)
            for (offset, expected) in vectors {
                #expect(Hex.encode(Array(stream[offset..<offset + 16])) == expected, "key \(key) offset \(offset)")
            }
        }
    }

    @Test("MSE's RC4 starts 1024 bytes in, and applying it in pieces equals applying it at once")
    func rc4Discard() {
        let key = Hex.decode("0102030405")!
        var whole = RC4(key: key)
        var stream = [UInt8](repeating: 0, count: 1024 + 4096)
        whole.apply(&stream)
        var mse = RC4.mse(key: key)
        var pieces: [UInt8] = []
        var random = SplitMix64(seed: 7)
        while pieces.count < 4096 {
            var chunk = [UInt8](repeating: 0, count: min(Int(random.next() % 300), 4096 - pieces.count))
            mse.apply(&chunk)
            pieces += chunk
        }
        #expect(pieces == Array(stream[1024...]))
        var back = RC4.mse(key: key)
        let plain = random.bytes(100)
        var twice = RC4.mse(key: key)
        #expect(back.applied(twice.applied(plain)) == plain)
    }

    /// Runs python3 (an independent big-integer implementation) on `script`; its output lines.
    static func python(_ script: String) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test("public keys and secrets agree with Python's pow(g, x, P), leading zeros kept")
    func diffieHellmanAgainstPython() throws {
        var random = SplitMix64(seed: 768)
        var cases: [(a: MSEKeyExchange, b: MSEKeyExchange)] = []
        for _ in 0..<6 { cases.append((MSEKeyExchange(using: &random), MSEKeyExchange(using: &random))) }
        // Edge exponents: 1, 2, all ones over three limbs.
        cases.append((MSEKeyExchange(exponent: [1]), MSEKeyExchange(exponent: [2])))
        cases.append((MSEKeyExchange(exponent: [.max, .max, .max]), MSEKeyExchange(exponent: [3, 0, 1 << 31])))
        func hexNumber(_ limbs: [UInt64]) -> String {
            "0x" + limbs.reversed().map { String(repeating: "0", count: 16 - String($0, radix: 16).count) + String($0, radix: 16) }.joined()
        }
        var script = "P=int('\(Hex.encode(MSEKeyExchange.prime))',16)\n"
        for (a, b) in cases {
            script += "a=\(hexNumber(a.exponent)); b=\(hexNumber(b.exponent))\n"
            script += "print(pow(2,a,P).to_bytes(96,'big').hex(), pow(2,b,P).to_bytes(96,'big').hex(), pow(pow(2,b,P),a,P).to_bytes(96,'big').hex())\n"
        }
        let lines = try Self.python(script)
        try #require(lines.count == cases.count)
        for ((a, b), line) in zip(cases, lines) {
            let fields = line.split(separator: " ").map(String.init)
            #expect(Hex.encode(a.publicKey) == fields[0])
            #expect(Hex.encode(b.publicKey) == fields[1])
            let secretA = try #require(a.sharedSecret(with: b.publicKey))
            let secretB = try #require(b.sharedSecret(with: a.publicKey))
            #expect(secretA.count == 96 && Hex.encode(secretA) == fields[2])
            #expect(secretA == secretB)
        }
    }

    @Test("a secret with a leading zero byte stays 96 bytes long")
    func leadingZeroSecret() throws {
        var random = SplitMix64(seed: 256)
        let a = MSEKeyExchange(using: &random)
        var found: [UInt8]?
        for _ in 0..<2000 {
            let b = MSEKeyExchange(using: &random)
            if let secret = a.sharedSecret(with: b.publicKey), secret[0] == 0 {
                found = secret
                #expect(b.sharedSecret(with: a.publicKey) == secret)
                break
            }
        }
        let secret = try #require(found)
        #expect(secret.count == 96)
    }

    @Test("degenerate public keys are refused")
    func degenerateKeys() {
        var random = SplitMix64(seed: 1)
        let key = MSEKeyExchange(using: &random)
        var pMinusOne = MSEKeyExchange.prime
        pMinusOne[95] -= 1
        var two = [UInt8](repeating: 0, count: 96)
        two[95] = 2
        #expect(key.sharedSecret(with: [UInt8](repeating: 0, count: 96)) == nil)
        #expect(key.sharedSecret(with: [UInt8](repeating: 0, count: 95) + [1]) == nil)
        #expect(key.sharedSecret(with: pMinusOne) == nil)
        #expect(key.sharedSecret(with: MSEKeyExchange.prime) == nil)
        #expect(key.sharedSecret(with: [UInt8](repeating: 0xFF, count: 96)) == nil)
        #expect(key.sharedSecret(with: [UInt8](repeating: 1, count: 95)) == nil)
        #expect(key.sharedSecret(with: two) != nil)
    }
}
