/// A bencoded value (BEP 3).
///
/// Strings are raw bytes: bencode does not promise UTF-8. Dictionaries keep their entries
/// in the order they were decoded; the encoder sorts keys, so encoding is canonical.
public indirect enum BValue: Hashable, Sendable {
    case integer(Int64)
    case bytes([UInt8])
    case list([BValue])
    case dictionary(BDictionary)

    /// A string value from UTF-8 text.
    public static func string(_ text: String) -> BValue { .bytes(Array(text.utf8)) }

    public var integerValue: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var bytesValue: [UInt8]? {
        if case .bytes(let value) = self { return value }
        return nil
    }

    /// The string as UTF-8 text, if it is valid UTF-8.
    public var stringValue: String? {
        guard case .bytes(let value) = self else { return nil }
        return String(validating: value, as: UTF8.self)
    }

    public var listValue: [BValue]? {
        if case .list(let value) = self { return value }
        return nil
    }

    public var dictionaryValue: BDictionary? {
        if case .dictionary(let value) = self { return value }
        return nil
    }

    /// Looks a key up when the value is a dictionary.
    public subscript(key: String) -> BValue? {
        dictionaryValue?[key]
    }
}

/// A bencoded dictionary: keys are byte strings; entries keep their decoded order.
public struct BDictionary: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var key: [UInt8]
        public var value: BValue

        public init(key: [UInt8], value: BValue) {
            self.key = key
            self.value = value
        }
    }

    public private(set) var entries: [Entry]

    public init() { entries = [] }

    public init(_ pairs: KeyValuePairs<String, BValue>) {
        entries = []
        for (key, value) in pairs { self[key] = value }
    }

    init(entries: [Entry]) { self.entries = entries }

    /// The first value stored under `key`.
    public subscript(key: [UInt8]) -> BValue? {
        get { entries.first { $0.key == key }?.value }
        set {
            if let index = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append(Entry(key: key, value: newValue))
            }
        }
    }

    public subscript(key: String) -> BValue? {
        get { self[Array(key.utf8)] }
        set { self[Array(key.utf8)] = newValue }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }
}

extension BValue: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: BValue...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, BValue)...) {
        var dictionary = BDictionary()
        for (key, value) in elements { dictionary[key] = value }
        self = .dictionary(dictionary)
    }
}
