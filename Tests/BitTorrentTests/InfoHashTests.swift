import BitTorrent
import TestSupport
import Testing

@Suite("InfoHash / Digest20")
struct InfoHashTests {
    static let knownHex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
    static let knownBase32 = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK"
    static let knownBytes: [UInt8] = [
        0xC1, 0x2F, 0xE1, 0xC0, 0x6B, 0xBA, 0x25, 0x4A, 0x9D, 0xC9,
        0xF5, 0x19, 0xB3, 0x35, 0xAA, 0x7C, 0x13, 0x67, 0xA8, 0x8A,
    ]

    @Test("known vector: hex ↔ base32 ↔ bytes")
    func knownVector() throws {
        let fromHex = try #require(InfoHash(string: Self.knownHex))
        let fromBase32 = try #require(InfoHash(string: Self.knownBase32))
        #expect(fromHex == fromBase32)
        #expect(fromHex.bytes == Self.knownBytes)
        #expect(fromHex.hex == Self.knownHex)
        #expect(fromHex.base32 == Self.knownBase32)
        #expect(fromHex.description == Self.knownHex)
        #expect(InfoHash(Self.knownBytes) == fromHex)
    }

    @Test("both cases are accepted", arguments: [
        knownHex.uppercased(), "C12fe1C06BBA254a9dc9f519b335aa7c1367A88A",
        knownBase32.lowercased(), "yEx6DqDlXiSuVhOj6Um3GnNkPqJwPkEk",
    ])
    func casesAccepted(text: String) {
        #expect(InfoHash(string: text)?.hex == Self.knownHex)
    }

    @Test("wrong lengths and alphabets are rejected", arguments: [
        "", String(knownHex.dropLast()), knownHex + "0", String(knownBase32.dropLast()), knownBase32 + "A",
        "g12fe1c06bba254a9dc9f519b335aa7c1367a88a",  // 'g' is not hex
        "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1",  // '1' is not base32
        "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE=",
        "c12fe1c06bba254a9dc9f519b335aa7c1367a8 a",
        String(repeating: "0", count: 64),
    ])
    func rejected(text: String) {
        #expect(InfoHash(string: text) == nil)
    }

    @Test("byte initializer takes exactly 20 bytes", arguments: [0, 19, 21, 40])
    func wrongByteCount(count: Int) {
        #expect(Digest20([UInt8](repeating: 1, count: count)) == nil)
    }

    @Test("random digests round-trip through bytes, hex and base32")
    func randomRoundTrips() throws {
        var generator = SplitMix64(seed: 20)
        for _ in 0..<200 {
            let raw = generator.bytes(20)
            let digest = try #require(Digest20(raw))
            #expect(digest.bytes == raw)
            #expect(digest.hex.utf8.count == 40)
            #expect(digest.base32.utf8.count == 32)
            #expect(Digest20(string: digest.hex) == digest)
            #expect(Digest20(string: digest.hex.uppercased()) == digest)
            #expect(Digest20(string: digest.base32) == digest)
            #expect(Digest20(string: digest.base32.lowercased()) == digest)
        }
    }

    @Test("ordering follows the bytes")
    func ordering() throws {
        var generator = SplitMix64(seed: 21)
        let digests = (0..<50).map { _ in Digest20(generator.bytes(20))! }
        let byDigest = digests.sorted()
        let byBytes = digests.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        #expect(byDigest == byBytes)
        var low = [UInt8](repeating: 0, count: 20)
        var high = low
        low[19] = 0xFF
        high[0] = 0x01
        #expect(try #require(Digest20(low)) < #require(Digest20(high)))
    }

    @Test("peer ids start with -TF0100- and are 20 printable bytes")
    func peerID() {
        var generator = SplitMix64(seed: 7)
        let first = PeerID.generatePeerID(using: &generator)
        let second = PeerID.generatePeerID(using: &generator)
        for id in [first, second, PeerID.generatePeerID()] {
            #expect(id.bytes.count == 20)
            #expect(id.bytes.starts(with: Array("-TF0100-".utf8)))
            #expect(id.bytes.allSatisfy { $0 >= 0x21 && $0 < 0x7F })
        }
        #expect(PeerID.peerIDPrefix == "-TF0100-")
        #expect(first != second)
        var replay = SplitMix64(seed: 7)
        #expect(PeerID.generatePeerID(using: &replay) == first)
    }
}
