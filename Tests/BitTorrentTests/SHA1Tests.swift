import BitTorrent
import TestSupport
import Testing

@Suite("SHA-1")
struct SHA1Tests {
    /// FIPS 180 examples and the NIST short/long message vectors.
    static let vectors: [(String, String)] = [
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "a49b2446a02c645bf419f995b67091253a04a259"),
        ("The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
    ]

    @Test("FIPS vectors", arguments: vectors)
    func vector(message: String, digest: String) {
        #expect(SHA1.hash(bytes(message)).hex == digest)
    }

    @Test("one million 'a'")
    func millionA() {
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA1.hash(message).hex == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test("padding boundaries: 55, 56, 63, 64 and 65 bytes", arguments: [
        (55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"),
        (56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"),
        (63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"),
        (64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"),
        (65, "11655326c708d70319be2610e8a57d9a5b959d3b"),
    ])
    func paddingBoundaries(count: Int, digest: String) {
        #expect(SHA1.hash([UInt8](repeating: UInt8(ascii: "a"), count: count)).hex == digest)
    }

    @Test("incremental updates in odd chunk sizes equal one shot", arguments: [1, 3, 7, 13, 63, 64, 65, 127, 1000])
    func incremental(chunk: Int) {
        var generator = SplitMix64(seed: UInt64(chunk))
        let message = generator.bytes(5000)
        var hasher = SHA1()
        var start = 0
        while start < message.count {
            let end = min(message.count, start + chunk)
            hasher.update(message[start..<end])
            start = end
        }
        #expect(hasher.finalize() == SHA1.hash(message))
    }

    @Test("chunks of varying random size, including empty ones, equal one shot")
    func randomChunks() {
        var generator = SplitMix64(seed: 42)
        for length in [0, 1, 63, 64, 65, 200, 4097] {
            let message = generator.bytes(length)
            var hasher = SHA1()
            var start = 0
            while start < message.count {
                let end = min(message.count, start + Int.random(in: 0...70, using: &generator))
                hasher.update(message[start..<end])
                start = end
            }
            hasher.update([UInt8]())
            #expect(hasher.finalize() == SHA1.hash(message), "length \(length)")
        }
    }

    @Test("the million-'a' vector fed in 4099-byte chunks")
    func millionAIncremental() {
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 4099)
        var hasher = SHA1()
        var left = 1_000_000
        while left > 0 {
            let take = min(left, chunk.count)
            hasher.update(chunk[..<take])
            left -= take
        }
        #expect(hasher.finalize().hex == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }
}
