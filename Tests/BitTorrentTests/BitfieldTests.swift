import BitTorrent
import TestSupport
import Testing

/// A bitfield from a picture: "1" set, anything else clear ("10_01" reads as "10001"
/// minus the separator: underscores are skipped).
func bitfield(_ picture: String) -> Bitfield {
    let bits = picture.filter { $0 != "_" && $0 != " " }
    var out = Bitfield(count: bits.count)
    for (index, bit) in bits.enumerated() where bit == "1" { out[index] = true }
    return out
}

/// The picture of a bitfield, "1"/"0" per piece.
func picture(_ bits: Bitfield) -> String {
    String((0..<bits.count).map { bits[$0] ? "1" : "0" })
}

@Suite("Bitfield")
struct BitfieldTests {
    /// (pieces, wire bytes, picture): MSB first, spare bits zero.
    static let golden: [(String, [UInt8])] = [
        ("1", [0x80]),
        ("0", [0x00]),
        ("10000000", [0x80]),
        ("00000001", [0x01]),
        ("101", [0xA0]),
        ("11111111_1", [0xFF, 0x80]),
        ("00000000_00000000_01", [0x00, 0x00, 0x40]),
        ("11111111_11111111_11111111_11111111_11111111_11111111_11111111_11111111_1", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80]),
    ]

    @Test("wire form, MSB first, both ways")
    func wireGolden() throws {
        for (text, wire) in Self.golden {
            let bits = bitfield(text)
            #expect(bits.wire == wire, "\(text)")
            let decoded = try #require(Bitfield(wire: wire, count: bits.count), "\(text)")
            #expect(decoded == bits, "\(text)")
            #expect(picture(decoded) == text.filter { $0 != "_" })
        }
    }

    @Test("random bitfields round-trip, counts agree", arguments: [1, 7, 8, 9, 63, 64, 65, 127, 128, 129, 1000])
    func randomRoundTrip(count: Int) throws {
        var generator = SplitMix64(seed: UInt64(count))
        var bits = Bitfield(count: count)
        var expected: [Int] = []
        for index in 0..<count where generator.next() % 3 == 0 {
            bits[index] = true
            expected.append(index)
        }
        #expect(bits.setIndices == expected)
        #expect(bits.setCount == expected.count)
        #expect(bits.wire.count == (count + 7) / 8)
        #expect(Bitfield(wire: bits.wire, count: count) == bits)
    }

    @Test("wrong wire length is refused", arguments: [(10, 1), (10, 3), (8, 0), (8, 2), (9, 1), (1, 0), (64, 9)])
    func wrongLength(count: Int, bytes: Int) {
        #expect(Bitfield(wire: [UInt8](repeating: 0, count: bytes), count: count) == nil)
    }

    @Test("a set spare bit is refused (our policy: protocol violation)")
    func spareBits() {
        // 10 pieces: 2 bytes, the low 6 bits of the second byte are spare.
        for bit in 0..<6 {
            #expect(Bitfield(wire: [0x00, UInt8(1 << bit)], count: 10) == nil, "spare bit \(bit)")
        }
        #expect(Bitfield(wire: [0x00, 0xC0], count: 10) != nil)
        #expect(Bitfield(wire: [0xFF, 0xFF], count: 10) == nil)
        #expect(Bitfield(wire: [0x01], count: 7) == nil)
        #expect(Bitfield(wire: [0xFE], count: 7) != nil)
    }

    @Test("allSet leaves no spare bit set")
    func allSet() {
        for count in [1, 5, 8, 63, 64, 65, 100] {
            let bits = Bitfield(count: count, allSet: true)
            #expect(bits.setCount == count)
            #expect(bits.isComplete)
            #expect(!bits.isEmpty)
            #expect(bits.setIndices == Array(0..<count), "count \(count)")
            #expect(Bitfield(wire: bits.wire, count: count) == bits, "count \(count)")
            // Equal to one set bit by bit: no hidden spare bits.
            var manual = Bitfield(count: count)
            for index in 0..<count { manual[index] = true }
            #expect(manual == bits, "count \(count)")
        }
    }

    @Test("setting twice and clearing keep setCount exact")
    func counts() {
        var bits = Bitfield(count: 70)
        #expect(bits.isEmpty)
        #expect(!bits.isComplete)
        bits[3] = true
        bits[3] = true
        bits[69] = true
        #expect(bits.setCount == 2)
        bits[3] = false
        bits[3] = false
        bits[5] = false
        #expect(bits.setCount == 1)
        #expect(bits.setIndices == [69])
        #expect(!bits[3])
        #expect(bits[69])
    }

    @Test("lacksAny: whether the other has something we lack", arguments: [
        ("0000", "0000", false),
        ("0000", "0100", true),
        ("1111", "1111", false),
        ("1010", "0101", true),
        ("1110", "0110", false),
        ("1110", "0001", true),
        ("1111111111_1111111111_1111111111_1111111111_1111111111_1111111111_1111", "1111111111_1111111111_1111111111_1111111111_1111111111_1111111111_1111", false),
        ("1111111111_1111111111_1111111111_1111111111_1111111111_1111111111_1110", "0000000000_0000000000_0000000000_0000000000_0000000000_0000000000_0001", true),
    ])
    func lacksAny(ours: String, theirs: String, expected: Bool) {
        #expect(bitfield(ours).lacksAny(of: bitfield(theirs)) == expected)
    }
}
