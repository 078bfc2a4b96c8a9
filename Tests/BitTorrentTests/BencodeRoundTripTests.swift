import BitTorrent
import TestSupport
import Testing

/// Random bencode trees. Dictionaries are built with sorted, unique keys, which is the
/// order the decoder reports for canonical input, so decoded values compare equal.
enum RandomBValue {
    static func make<G: RandomNumberGenerator>(depth: Int = 0, using generator: inout G) -> BValue {
        let kinds = depth >= 5 ? 2 : 4
        switch Int.random(in: 0..<kinds, using: &generator) {
        case 0: return .integer(integer(using: &generator))
        case 1: return .bytes(byteString(maxLength: 24, using: &generator))
        case 2:
            let count = Int.random(in: 0...5, using: &generator)
            return .list((0..<count).map { _ in make(depth: depth + 1, using: &generator) })
        default:
            let count = Int.random(in: 0...5, using: &generator)
            var keys = Set<[UInt8]>()
            for _ in 0..<count { keys.insert(byteString(maxLength: 6, using: &generator)) }
            var dictionary = BDictionary()
            for key in keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                dictionary[key] = make(depth: depth + 1, using: &generator)
            }
            return .dictionary(dictionary)
        }
    }

    static func integer<G: RandomNumberGenerator>(using generator: inout G) -> Int64 {
        switch Int.random(in: 0..<6, using: &generator) {
        case 0: return [Int64.min, .max, 0, -1, 1, .min + 1, .max - 1].randomElement(using: &generator)!
        case 1: return Int64.random(in: -100...100, using: &generator)
        default: return Int64(bitPattern: generator.next())
        }
    }

    /// Bytes biased towards the bencode alphabet, so strings look like syntax.
    static func byteString<G: RandomNumberGenerator>(maxLength: Int, using generator: inout G) -> [UInt8] {
        let syntax = Array("0123456789:eidl-".utf8)
        return (0..<Int.random(in: 0...maxLength, using: &generator)).map { _ in
            Bool.random(using: &generator) ? syntax.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
        }
    }
}

@Suite("Bencode round trips")
struct BencodeRoundTripTests {
    @Test("decode(encode(x)) == x and the encoding is stable, for 500 random values")
    func randomValuesRoundTrip() throws {
        var generator = SplitMix64(seed: 0x5EED_BE4C_0DE0_0001)
        for index in 0..<500 {
            let value = RandomBValue.make(using: &generator)
            let encoded = Bencode.encode(value)
            let decoded = try Bencode.decode(encoded)
            #expect(decoded == value, "value \(index)")
            #expect(Bencode.encode(decoded) == encoded, "value \(index)")
            // The torrent-file mode accepts everything strict mode does, identically.
            #expect(try Bencode.decode(encoded, limits: .torrentFile) == value, "value \(index)")
        }
    }

    @Test("canonical input re-encodes byte-exact", arguments: [
        "d3:cow3:moo4:spam4:eggse",
        "d8:announce15:http://t.ex/ann4:infod6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces0:ee",
        "lli-9223372036854775808ei9223372036854775807ei0ee0:de4:\u{0}\u{1}\u{2}\u{3}e",
    ])
    func canonicalReencodes(input: String) throws {
        #expect(Bencode.encode(try Bencode.decode(bytes(input))) == bytes(input))
    }

    @Test("decode → encode → decode is the identity for unsorted torrent-file input")
    func torrentFileDecodeEncodeDecode() throws {
        let input = bytes("d4:infod4:name1:x6:lengthi3ee1:ai1e1:ai2ee")
        let first = try Bencode.decode(input, limits: .torrentFile)
        let reencoded = Bencode.encode(first)
        #expect(reencoded != input)
        let second = try Bencode.decode(reencoded)
        // Same content; the canonical form is sorted, so compare key by key.
        #expect(second["a"] == 1)
        #expect(second["info"]?["name"] == "x")
        #expect(second["info"]?["length"] == 3)
        #expect(Bencode.encode(second) == reencoded)
    }

    @Test("proper prefixes of random encodings never decode", arguments: 0..<20)
    func randomPrefixesFail(seed: UInt64) {
        var generator = SplitMix64(seed: 0xABCD_0000 + seed)
        let encoded = Bencode.encode(RandomBValue.make(using: &generator))
        for cut in 0..<encoded.count {
            let error = bencodeError(Array(encoded[..<cut]))
            #expect(error != nil, "seed \(seed) cut \(cut)")
            if let error { #expect(error.offset <= cut) }
        }
    }

    @Test("mutated input either fails with an in-range offset or is canonical and re-encodes exactly")
    func mutationsAreSafe() {
        var generator = SplitMix64(seed: 0xF022_0000_0000_0003)
        var accepted = 0
        for _ in 0..<2000 {
            var input = Bencode.encode(RandomBValue.make(using: &generator))
            for _ in 0...Int.random(in: 0...2, using: &generator) where !input.isEmpty {
                let position = Int.random(in: 0..<input.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: input[position] = Array("0123456789:eidl-".utf8).randomElement(using: &generator)!
                case 1: input.remove(at: position)
                default: input.insert(UInt8.random(in: 0...255, using: &generator), at: position)
                }
            }
            do {
                let value = try Bencode.decode(input)
                accepted += 1
                #expect(Bencode.encode(value) == input)
            } catch {
                #expect(error.offset >= 0 && error.offset <= input.count, "\(error)")
            }
        }
        // Some mutations must survive for the property to mean anything.
        #expect(accepted > 0)
    }
}
