/// Limits that bound what a bencode decoder will accept, so hostile input can neither
/// exhaust memory nor recurse without end.
public struct BencodeLimits: Sendable, Hashable {
    /// Deepest nesting of lists and dictionaries (libtorrent's default depth limit is 100).
    public var maxDepth: Int
    /// Most values (integers, strings, lists, dictionaries) in one document.
    public var maxTokens: Int
    /// Largest input accepted, in bytes.
    public var maxInputSize: Int
    /// Whether dictionary keys must be sorted and unique (canonical bencode).
    public var requireCanonicalKeys: Bool

    public init(maxDepth: Int = 100, maxTokens: Int = 4_000_000, maxInputSize: Int = 64 << 20,
                requireCanonicalKeys: Bool = true) {
        self.maxDepth = maxDepth
        self.maxTokens = maxTokens
        self.maxInputSize = maxInputSize
        self.requireCanonicalKeys = requireCanonicalKeys
    }

    /// Strict canonical bencode, for protocol messages.
    public static let strict = BencodeLimits()
    /// Torrent files in the wild: unsorted or duplicate keys are tolerated (the first of
    /// duplicates wins), because the info hash is the SHA-1 of the bytes as received.
    public static let torrentFile = BencodeLimits(requireCanonicalKeys: false)
}

/// Why bencoded input was refused, and where.
public struct BencodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case invalidInteger
        case integerOverflow
        case leadingZero
        case negativeZero
        case invalidStringLength
        case stringLengthExceedsInput(declared: Int, available: Int)
        case nonStringKey
        case unsortedKey
        case duplicateKey
        case depthLimitExceeded(limit: Int)
        case tokenLimitExceeded(limit: Int)
        case inputTooLarge(size: Int, limit: Int)
        case trailingData
    }

    public var reason: Reason
    /// Byte offset into the input where the problem was found.
    public var offset: Int

    public init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String {
        let what: String
        switch reason {
        case .unexpectedEnd: what = "input ends in the middle of a value"
        case .unexpectedByte(let byte): what = "unexpected byte 0x\(String(byte, radix: 16))"
        case .invalidInteger: what = "malformed integer"
        case .integerOverflow: what = "integer does not fit in 64 bits"
        case .leadingZero: what = "number with a leading zero"
        case .negativeZero: what = "negative zero"
        case .invalidStringLength: what = "malformed string length"
        case .stringLengthExceedsInput(let declared, let available):
            what = "string length \(declared) exceeds the \(available) bytes left"
        case .nonStringKey: what = "dictionary key is not a string"
        case .unsortedKey: what = "dictionary keys are not sorted"
        case .duplicateKey: what = "duplicate dictionary key"
        case .depthLimitExceeded(let limit): what = "nesting deeper than \(limit)"
        case .tokenLimitExceeded(let limit): what = "more than \(limit) values"
        case .inputTooLarge(let size, let limit): what = "input of \(size) bytes exceeds the \(limit)-byte limit"
        case .trailingData: what = "data after the end of the value"
        }
        return "bencode: \(what) at byte \(offset)"
    }
}

/// A decoded document together with the byte ranges of its top-level dictionary values,
/// so a caller can hash exactly the bytes it received (the info hash).
public struct BencodeDocument: Sendable {
    public var value: BValue
    /// For a top-level dictionary: the raw byte range of each entry's value (first wins).
    public var topLevelSpans: [[UInt8]: Range<Int>]
    /// Bytes consumed from the input.
    public var consumed: Int
}

public enum Bencode {
    /// Decodes exactly one value that must span the whole input.
    public static func decode(_ bytes: [UInt8], limits: BencodeLimits = .strict) throws(BencodeError) -> BValue {
        let document = try decodeDocument(bytes, limits: limits, allowTrailingData: false)
        return document.value
    }

    /// Decodes one value at the start of `bytes`; the rest is left to the caller
    /// (ut_metadata data messages carry raw bytes after the dictionary).
    public static func decodePrefix(_ bytes: [UInt8], limits: BencodeLimits = .strict) throws(BencodeError)
        -> (value: BValue, consumed: Int)
    {
        let document = try decodeDocument(bytes, limits: limits, allowTrailingData: true)
        return (document.value, document.consumed)
    }

    /// Decodes one value and records the spans of its top-level dictionary values.
    public static func decodeDocument(_ bytes: [UInt8], limits: BencodeLimits = .strict,
                                      allowTrailingData: Bool = false) throws(BencodeError) -> BencodeDocument
    {
        guard bytes.count <= limits.maxInputSize else {
            throw BencodeError(.inputTooLarge(size: bytes.count, limit: limits.maxInputSize), at: 0)
        }
        var parser = Parser(bytes: bytes, limits: limits)
        let value = try parser.parseValue(depth: 0)
        if !allowTrailingData && parser.position != bytes.count {
            throw BencodeError(.trailingData, at: parser.position)
        }
        return BencodeDocument(value: value, topLevelSpans: parser.topLevelSpans, consumed: parser.position)
    }

    /// Canonical encoding: dictionary keys sorted by their raw bytes, duplicates dropped.
    public static func encode(_ value: BValue) -> [UInt8] {
        var out: [UInt8] = []
        encode(value, into: &out)
        return out
    }

    public static func encode(_ value: BValue, into out: inout [UInt8]) {
        switch value {
        case .integer(let number):
            out.append(UInt8(ascii: "i"))
            out.append(contentsOf: String(number).utf8)
            out.append(UInt8(ascii: "e"))
        case .bytes(let bytes):
            out.append(contentsOf: String(bytes.count).utf8)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: bytes)
        case .list(let items):
            out.append(UInt8(ascii: "l"))
            for item in items { encode(item, into: &out) }
            out.append(UInt8(ascii: "e"))
        case .dictionary(let dictionary):
            out.append(UInt8(ascii: "d"))
            var seen = Set<[UInt8]>()
            let firsts = dictionary.entries.filter { seen.insert($0.key).inserted }
            for entry in firsts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                encode(.bytes(entry.key), into: &out)
                encode(entry.value, into: &out)
            }
            out.append(UInt8(ascii: "e"))
        }
    }
}

private struct Parser {
    let bytes: [UInt8]
    let limits: BencodeLimits
    var position = 0
    var tokens = 0
    var topLevelSpans: [[UInt8]: Range<Int>] = [:]

    init(bytes: [UInt8], limits: BencodeLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    mutating func parseValue(depth: Int) throws(BencodeError) -> BValue {
        guard position < bytes.count else { throw BencodeError(.unexpectedEnd, at: position) }
        tokens += 1
        guard tokens <= limits.maxTokens else {
            throw BencodeError(.tokenLimitExceeded(limit: limits.maxTokens), at: position)
        }
        switch bytes[position] {
        case UInt8(ascii: "i"):
            return .integer(try parseInteger())
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .bytes(try parseString())
        case UInt8(ascii: "l"):
            guard depth < limits.maxDepth else {
                throw BencodeError(.depthLimitExceeded(limit: limits.maxDepth), at: position)
            }
            position += 1
            var items: [BValue] = []
            while true {
                guard position < bytes.count else { throw BencodeError(.unexpectedEnd, at: position) }
                if bytes[position] == UInt8(ascii: "e") { position += 1; break }
                items.append(try parseValue(depth: depth + 1))
            }
            return .list(items)
        case UInt8(ascii: "d"):
            guard depth < limits.maxDepth else {
                throw BencodeError(.depthLimitExceeded(limit: limits.maxDepth), at: position)
            }
            position += 1
            var entries: [BDictionary.Entry] = []
            var seen = Set<[UInt8]>()
            while true {
                guard position < bytes.count else { throw BencodeError(.unexpectedEnd, at: position) }
                if bytes[position] == UInt8(ascii: "e") { position += 1; break }
                let keyOffset = position
                guard bytes[position] >= UInt8(ascii: "0") && bytes[position] <= UInt8(ascii: "9") else {
                    throw BencodeError(.nonStringKey, at: position)
                }
                tokens += 1
                let key = try parseString()
                if limits.requireCanonicalKeys, let last = entries.last {
                    if last.key == key { throw BencodeError(.duplicateKey, at: keyOffset) }
                    if !last.key.lexicographicallyPrecedes(key) { throw BencodeError(.unsortedKey, at: keyOffset) }
                }
                let valueStart = position
                let value = try parseValue(depth: depth + 1)
                if seen.insert(key).inserted {
                    entries.append(BDictionary.Entry(key: key, value: value))
                    if depth == 0 { topLevelSpans[key] = valueStart..<position }
                }
            }
            return .dictionary(BDictionary(entries: entries))
        case let byte:
            throw BencodeError(.unexpectedByte(byte), at: position)
        }
    }

    /// `i<digits>e` with an optional minus; no leading zeros, no `-0`, 64-bit range.
    mutating func parseInteger() throws(BencodeError) -> Int64 {
        let start = position
        position += 1  // "i"
        var negative = false
        if position < bytes.count && bytes[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        let digitsStart = position
        // Accumulate as a negative number so Int64.min is representable.
        var value: Int64 = 0
        while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
            let digit = Int64(bytes[position] - UInt8(ascii: "0"))
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = times10.subtractingReportingOverflow(digit)
            if overflow1 || overflow2 { throw BencodeError(.integerOverflow, at: start) }
            value = next
            position += 1
        }
        guard position < bytes.count else { throw BencodeError(.unexpectedEnd, at: position) }
        guard bytes[position] == UInt8(ascii: "e") else {
            throw BencodeError(.unexpectedByte(bytes[position]), at: position)
        }
        let digitCount = position - digitsStart
        guard digitCount > 0 else { throw BencodeError(.invalidInteger, at: start) }
        if bytes[digitsStart] == UInt8(ascii: "0") {
            if digitCount > 1 { throw BencodeError(.leadingZero, at: digitsStart) }
            if negative { throw BencodeError(.negativeZero, at: start) }
        }
        position += 1  // "e"
        if negative { return value }
        let (positive, overflow) = Int64(0).subtractingReportingOverflow(value)
        if overflow { throw BencodeError(.integerOverflow, at: start) }
        return positive
    }

    /// `<length>:<bytes>`; the length is checked against the input before any allocation.
    mutating func parseString() throws(BencodeError) -> [UInt8] {
        let start = position
        var length = 0
        while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
            let (times10, overflow1) = length.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = times10.addingReportingOverflow(Int(bytes[position] - UInt8(ascii: "0")))
            if overflow1 || overflow2 || next > limits.maxInputSize {
                throw BencodeError(.stringLengthExceedsInput(declared: Int.max, available: bytes.count - start),
                                   at: start)
            }
            length = next
            position += 1
        }
        guard position < bytes.count else { throw BencodeError(.unexpectedEnd, at: position) }
        guard bytes[position] == UInt8(ascii: ":") else { throw BencodeError(.invalidStringLength, at: start) }
        if position - start > 1 && bytes[start] == UInt8(ascii: "0") { throw BencodeError(.leadingZero, at: start) }
        position += 1
        let available = bytes.count - position
        guard length <= available else {
            throw BencodeError(.stringLengthExceedsInput(declared: length, available: available), at: start)
        }
        let value = Array(bytes[position..<(position + length)])
        position += length
        return value
    }
}
