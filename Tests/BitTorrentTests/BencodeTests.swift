import BitTorrent
import Testing

@Suite("Bencode decoding")
struct BencodeTests {
    // MARK: Accepted values

    static let accepted: [(String, BValue)] = [
        ("i0e", 0),
        ("i42e", 42),
        ("i-42e", -42),
        ("i9223372036854775807e", .integer(.max)),
        ("i-9223372036854775808e", .integer(.min)),
        ("0:", .bytes([])),
        ("4:spam", "spam"),
        ("le", []),
        ("l4:spam4:eggse", ["spam", "eggs"]),
        ("de", .dictionary(BDictionary())),
        ("d3:cow3:moo4:spam4:eggse", ["cow": "moo", "spam": "eggs"]),
        ("d4:spaml1:a1:bee", ["spam": ["a", "b"]]),
        ("d1:ai1e2:aai2ee", ["a": 1, "aa": 2]),
    ]

    @Test("valid documents decode to the expected value", arguments: accepted)
    func decodesValid(input: String, expected: BValue) throws {
        #expect(try Bencode.decode(bytes(input)) == expected)
    }

    @Test("string values are raw bytes, not text")
    func stringsAreRawBytes() throws {
        let input: [UInt8] = [UInt8(ascii: "3"), UInt8(ascii: ":"), 0x00, 0xFF, 0x80]
        let value = try Bencode.decode(input)
        #expect(value == .bytes([0x00, 0xFF, 0x80]))
        #expect(value.stringValue == nil)
    }

    // MARK: Rejected values: reason and byte offset

    static let rejected: [(String, BencodeError)] = [
        // Integers.
        ("i18446744073709551615e", BencodeError(.integerOverflow, at: 0)),
        ("i9223372036854775808e", BencodeError(.integerOverflow, at: 0)),
        ("i-9223372036854775809e", BencodeError(.integerOverflow, at: 0)),
        ("i" + String(repeating: "1", count: 21) + "e", BencodeError(.integerOverflow, at: 0)),
        ("i-" + String(repeating: "9", count: 25) + "e", BencodeError(.integerOverflow, at: 0)),
        ("li1ei18446744073709551616ee", BencodeError(.integerOverflow, at: 4)),
        ("i03e", BencodeError(.leadingZero, at: 1)),
        ("i00e", BencodeError(.leadingZero, at: 1)),
        ("i-03e", BencodeError(.leadingZero, at: 2)),
        ("i-e", BencodeError(.invalidInteger, at: 0)),
        ("ie", BencodeError(.invalidInteger, at: 0)),
        ("li1eiee", BencodeError(.invalidInteger, at: 4)),
        ("i-0e", BencodeError(.negativeZero, at: 0)),
        ("i+1e", BencodeError(.unexpectedByte(UInt8(ascii: "+")), at: 1)),
        ("i 1e", BencodeError(.unexpectedByte(0x20), at: 1)),
        ("i1.5e", BencodeError(.unexpectedByte(UInt8(ascii: ".")), at: 2)),
        ("i--1e", BencodeError(.unexpectedByte(UInt8(ascii: "-")), at: 2)),
        ("i12", BencodeError(.unexpectedEnd, at: 3)),
        // Strings.
        ("-3:abc", BencodeError(.unexpectedByte(UInt8(ascii: "-")), at: 0)),
        ("l-3:abce", BencodeError(.unexpectedByte(UInt8(ascii: "-")), at: 1)),
        ("03:abc", BencodeError(.leadingZero, at: 0)),
        ("00:", BencodeError(.leadingZero, at: 0)),
        ("3abc", BencodeError(.invalidStringLength, at: 0)),
        ("5:abc", BencodeError(.stringLengthExceedsInput(declared: 5, available: 3), at: 0)),
        ("1000:x", BencodeError(.stringLengthExceedsInput(declared: 1000, available: 1), at: 0)),
        ("l5:abce", BencodeError(.stringLengthExceedsInput(declared: 5, available: 4), at: 1)),
        ("12", BencodeError(.unexpectedEnd, at: 2)),
        // Structure.
        ("", BencodeError(.unexpectedEnd, at: 0)),
        ("x", BencodeError(.unexpectedByte(UInt8(ascii: "x")), at: 0)),
        ("e", BencodeError(.unexpectedByte(UInt8(ascii: "e")), at: 0)),
        ("l", BencodeError(.unexpectedEnd, at: 1)),
        ("li1e", BencodeError(.unexpectedEnd, at: 4)),
        ("d1:a", BencodeError(.unexpectedEnd, at: 4)),
        ("d1:ae", BencodeError(.unexpectedByte(UInt8(ascii: "e")), at: 4)),
        ("i1ei2e", BencodeError(.trailingData, at: 3)),
        ("0:0:", BencodeError(.trailingData, at: 2)),
        ("le ", BencodeError(.trailingData, at: 2)),
        ("de\n", BencodeError(.trailingData, at: 2)),
        // Keys.
        ("di1ei2ee", BencodeError(.nonStringKey, at: 1)),
        ("dli1ee1:ae", BencodeError(.nonStringKey, at: 1)),
        ("d1:ai1ede1:be", BencodeError(.nonStringKey, at: 7)),
        ("d1:bi1e1:ai2ee", BencodeError(.unsortedKey, at: 7)),
        ("d2:aai1e1:ai2ee", BencodeError(.unsortedKey, at: 8)),
        ("d1:ai1e1:ai2ee", BencodeError(.duplicateKey, at: 7)),
        ("d1:xd1:bi1e1:ai2eee", BencodeError(.unsortedKey, at: 11)),
    ]

    @Test("malformed input is refused with a reason and the byte offset", arguments: rejected)
    func rejectsMalformed(input: String, expected: BencodeError) {
        #expect(bencodeError(input) == expected)
    }

    @Test("huge string length prefixes are refused before any allocation",
          arguments: ["99999999999999999999:x", "4294967296:x", "18446744073709551616:x",
                      "9223372036854775807:x", String(repeating: "9", count: 40) + ":x"])
    func rejectsHugeStringLength(input: String) {
        let error = bencodeError(input)
        // The declared length exceeds both the input and the input-size limit.
        guard case .stringLengthExceedsInput(let declared, _)? = error?.reason else {
            Issue.record("expected stringLengthExceedsInput, got \(String(describing: error))")
            return
        }
        #expect(declared > input.utf8.count)
        #expect(error?.offset == 0)
    }

    @Test("a length that fits in Int but not in the input is refused with its real size")
    func rejectsLengthBeyondInputWithoutSizeLimit() {
        let unlimited = BencodeLimits(maxInputSize: .max)
        #expect(bencodeError("4294967296:x", limits: unlimited)
            == BencodeError(.stringLengthExceedsInput(declared: 4_294_967_296, available: 1), at: 0))
        #expect(bencodeError("l4294967296:xe", limits: unlimited)
            == BencodeError(.stringLengthExceedsInput(declared: 4_294_967_296, available: 2), at: 1))
    }

    // MARK: Truncation

    static let documents = [
        "i-42e",
        "4:spam",
        "l4:spami7ee",
        "d3:cow3:moo4:spam4:eggse",
        "d4:infod6:lengthi12345e4:name5:a.txt12:piece lengthi16384e6:pieces0:ee",
        "lld1:ali1ei-2ee1:b0:eee",
    ]

    @Test("every proper prefix of a valid document fails at its end", arguments: documents)
    func truncatedInputFails(document: String) throws {
        let full = bytes(document)
        _ = try Bencode.decode(full)
        for cut in 0..<full.count {
            let prefix = Array(full[..<cut])
            let error = bencodeError(prefix)
            switch error?.reason {
            case .unexpectedEnd?:
                #expect(error?.offset == cut, "prefix \(cut) of \(document)")
            case .stringLengthExceedsInput(let declared, let available)?:
                #expect(declared > available, "prefix \(cut) of \(document)")
                #expect(error!.offset < cut)
            default:
                Issue.record("prefix \(cut) of \(document): unexpected \(String(describing: error))")
            }
        }
    }

    // MARK: Key order

    @Test("unsorted keys: refused when strict, kept in input order for torrent files")
    func unsortedKeysTolerated() throws {
        let input = bytes("d1:bi1e1:ai2ee")
        #expect(bencodeError(input) == BencodeError(.unsortedKey, at: 7))
        let value = try Bencode.decode(input, limits: .torrentFile)
        #expect(value.dictionaryValue?.entries.map(\.key) == [bytes("b"), bytes("a")])
        #expect(value["a"] == 2)
        #expect(value["b"] == 1)
        // Re-encoding sorts, which is why info hashes must use the raw bytes.
        #expect(Bencode.encode(value) == bytes("d1:ai2e1:bi1ee"))
    }

    @Test("duplicate keys: refused when strict, first one wins for torrent files")
    func duplicateKeysFirstWins() throws {
        let input = bytes("d1:ai1e1:bi5e1:ai2ee")
        // Strict mode compares each key with the previous one, so a later repeat is "unsorted".
        #expect(bencodeError(input) == BencodeError(.unsortedKey, at: 13))
        let value = try Bencode.decode(input, limits: .torrentFile)
        #expect(value["a"] == 1)
        #expect(value.dictionaryValue?.count == 2)
        let document = try Bencode.decodeDocument(input, limits: .torrentFile)
        #expect(document.topLevelSpans[bytes("a")] == 4..<7)
    }

    @Test("non-string keys are refused even when key order is not checked")
    func nonStringKeyInTorrentFile() {
        #expect(bencodeError("di1ei2ee", limits: .torrentFile) == BencodeError(.nonStringKey, at: 1))
    }

    // MARK: Limits

    static func nestedLists(_ depth: Int) -> [UInt8] {
        Array(repeating: UInt8(ascii: "l"), count: depth) + Array(repeating: UInt8(ascii: "e"), count: depth)
    }

    static func nestedDictionaries(_ depth: Int) -> [UInt8] {
        Array(String(repeating: "d1:a", count: depth).utf8) + bytes("i0e")
            + Array(repeating: UInt8(ascii: "e"), count: depth)
    }

    @Test("nesting: 100 levels accepted, 101 refused at the 101st opener")
    func depthLimit() throws {
        _ = try Bencode.decode(Self.nestedLists(100))
        #expect(bencodeError(Self.nestedLists(101)) == BencodeError(.depthLimitExceeded(limit: 100), at: 100))
        _ = try Bencode.decode(Self.nestedDictionaries(100))
        #expect(bencodeError(Self.nestedDictionaries(101))
            == BencodeError(.depthLimitExceeded(limit: 100), at: 400))
        // Far deeper than the limit must fail the same way, not overflow the stack.
        #expect(bencodeError(Self.nestedLists(1_000_000), limits: .torrentFile)
            == BencodeError(.depthLimitExceeded(limit: 100), at: 100))
    }

    @Test("a custom depth limit counts lists and dictionaries alike")
    func customDepthLimit() throws {
        let limits = BencodeLimits(maxDepth: 2)
        _ = try Bencode.decode(bytes("lld1:ai1eeee"), limits: BencodeLimits(maxDepth: 3))
        _ = try Bencode.decode(bytes("llee"), limits: limits)
        #expect(bencodeError("ld1:aleee", limits: limits) == BencodeError(.depthLimitExceeded(limit: 2), at: 5))
        // Scalars do not count as a level.
        _ = try Bencode.decode(bytes("lli1e4:spamee"), limits: limits)
    }

    @Test("token limit: the value past the limit is refused at its offset")
    func tokenLimit() throws {
        let limits = BencodeLimits(maxTokens: 3)
        _ = try Bencode.decode(bytes("li1ei2ee"), limits: limits)
        #expect(bencodeError("li1ei2ei3ee", limits: limits) == BencodeError(.tokenLimitExceeded(limit: 3), at: 7))
        #expect(bencodeError("lllleeee", limits: limits) == BencodeError(.tokenLimitExceeded(limit: 3), at: 3))
    }

    @Test("the default token limit stops a document of millions of tiny values")
    func defaultTokenLimit() {
        let limit = BencodeLimits.strict.maxTokens
        var input = [UInt8]()
        input.reserveCapacity(2 * limit + 2)
        input.append(UInt8(ascii: "l"))
        for _ in 0..<limit { input += [UInt8(ascii: "0"), UInt8(ascii: ":")] }
        input.append(UInt8(ascii: "e"))
        // The list itself is a token, so the last empty string is one too many.
        #expect(bencodeError(input) == BencodeError(.tokenLimitExceeded(limit: limit), at: 1 + 2 * (limit - 1)))
    }

    @Test("input size limit is checked before parsing")
    func inputSizeLimit() throws {
        let limits = BencodeLimits(maxInputSize: 10)
        _ = try Bencode.decode(bytes("8:abcdefgh"), limits: limits)
        #expect(bencodeError("9:abcdefghi", limits: limits) == BencodeError(.inputTooLarge(size: 11, limit: 10), at: 0))
        // Even garbage is reported as too large rather than parsed.
        #expect(bencodeError("xxxxxxxxxxx", limits: limits) == BencodeError(.inputTooLarge(size: 11, limit: 10), at: 0))

        let defaultLimit = BencodeLimits.strict.maxInputSize
        #expect(defaultLimit == 64 << 20)
        let huge = [UInt8](repeating: UInt8(ascii: "l"), count: defaultLimit + 1)
        #expect(bencodeError(huge) == BencodeError(.inputTooLarge(size: defaultLimit + 1, limit: defaultLimit), at: 0))
    }

    // MARK: Prefix and document decoding

    @Test("decodePrefix returns the value and the bytes it consumed")
    func decodePrefixConsumed() throws {
        let head = bytes("d8:msg_typei1e5:piecei0ee")
        let tail: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF, UInt8(ascii: "e")]
        let (value, consumed) = try Bencode.decodePrefix(head + tail)
        #expect(consumed == head.count)
        #expect(value == ["msg_type": 1, "piece": 0])
        let (whole, wholeConsumed) = try Bencode.decodePrefix(bytes("i7e"))
        #expect(whole == 7)
        #expect(wholeConsumed == 3)
        #expect(throws: BencodeError(.unexpectedEnd, at: 4)) { try Bencode.decodePrefix(bytes("li1e")) }
    }

    @Test("decodeDocument spans point at the exact raw bytes of each top-level value")
    func topLevelSpans() throws {
        let parts: [(key: String, raw: String)] = [
            ("announce", "15:http://t.ex/ann"),
            ("info", "d6:lengthi5e4:name1:x12:piece lengthi16384ee"),
            ("list", "li1ed1:ai2eee"),
            ("n", "i-7e"),
        ]
        let input = bytes("d" + parts.map { "\($0.key.utf8.count):\($0.key)\($0.raw)" }.joined() + "e")
        let document = try Bencode.decodeDocument(input)
        #expect(document.consumed == input.count)
        #expect(document.topLevelSpans.count == parts.count)
        for part in parts {
            let span = try #require(document.topLevelSpans[bytes(part.key)])
            #expect(Array(input[span]) == bytes(part.raw), "span of \(part.key)")
            #expect(try Bencode.decode(Array(input[span])) == document.value[part.key])
        }
        // Nested dictionaries contribute no spans.
        #expect(document.topLevelSpans[bytes("length")] == nil)
        #expect(document.topLevelSpans[bytes("a")] == nil)
    }

    @Test("decodeDocument of a non-dictionary has no spans; trailing data can be allowed")
    func documentOfList() throws {
        let document = try Bencode.decodeDocument(bytes("ld1:ai1eeexyz"), allowTrailingData: true)
        #expect(document.topLevelSpans.isEmpty)
        #expect(document.consumed == 10)
        #expect(throws: BencodeError(.trailingData, at: 10)) {
            try Bencode.decodeDocument(bytes("ld1:ai1eeexyz"))
        }
    }

    @Test("error descriptions name the byte offset")
    func errorDescription() {
        let error = BencodeError(.leadingZero, at: 17)
        #expect(error.description.contains("17"))
    }
}

@Suite("Bencode encoding")
struct BencodeEncodingTests {
    static let golden: [(BValue, String)] = [
        (0, "i0e"),
        (-1, "i-1e"),
        (.integer(.max), "i9223372036854775807e"),
        (.integer(.min), "i-9223372036854775808e"),
        ("", "0:"),
        ("spam", "4:spam"),
        (["spam", "eggs"], "l4:spam4:eggse"),
        (["spam": "eggs", "cow": "moo"], "d3:cow3:moo4:spam4:eggse"),
        (["b": 1, "a": ["x": []], "B": 0], "d1:Bi0e1:ad1:xlee1:bi1ee"),
        (["aa": 1, "a": 2], "d1:ai2e2:aai1ee"),
    ]

    @Test("encoding is canonical: sorted keys, minimal integers", arguments: golden)
    func encodes(value: BValue, expected: String) {
        #expect(Bencode.encode(value) == bytes(expected))
    }

    @Test("keys sort by raw bytes, not by text")
    func keysSortByBytes() {
        var dictionary = BDictionary()
        dictionary[[0xFF]] = 1
        dictionary[[0x80]] = 2
        dictionary[[0x7F]] = 3
        dictionary[[]] = 4
        let expected: [UInt8] = bytes("d0:i4e1:") + [0x7F] + bytes("i3e1:") + [0x80] + bytes("i2e1:") + [0xFF]
            + bytes("i1ee")
        #expect(Bencode.encode(.dictionary(dictionary)) == expected)
    }

    @Test("encode(into:) appends")
    func encodeInto() {
        var out = bytes("xx")
        Bencode.encode(["a", 1], into: &out)
        #expect(out == bytes("xxl1:ai1ee"))
    }

    @Test("BDictionary setting nil removes, setting again replaces in place")
    func dictionaryMutation() {
        var dictionary = BDictionary(["a": 1, "b": 2])
        dictionary["a"] = 3
        #expect(dictionary.entries.map(\.key) == [bytes("a"), bytes("b")])
        #expect(dictionary["a"] == 3)
        dictionary["a"] = nil
        #expect(dictionary.count == 1)
        #expect(dictionary["a"] == nil)
    }
}
