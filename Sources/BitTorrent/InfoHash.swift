/// A 20-byte identifier: a v1 info hash (SHA-1 of the bencoded info dictionary), a piece
/// hash, a peer id or a DHT node id. A fixed-size value, so a wrong length cannot exist.
public struct Digest20: Hashable, Comparable, Sendable {
    private var high: UInt64
    private var middle: UInt64
    private var low: UInt32

    /// Exactly 20 bytes, or nil.
    public init?<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        guard bytes.count == 20 else { return nil }
        var iterator = bytes.makeIterator()
        var high: UInt64 = 0
        var middle: UInt64 = 0
        var low: UInt32 = 0
        for _ in 0..<8 { high = high << 8 | UInt64(iterator.next()!) }
        for _ in 0..<8 { middle = middle << 8 | UInt64(iterator.next()!) }
        for _ in 0..<4 { low = low << 8 | UInt32(iterator.next()!) }
        self.high = high
        self.middle = middle
        self.low = low
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(20)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: middle >> UInt64(shift))) }
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt32(shift))) }
        return out
    }

    /// 40 lowercase hex digits.
    public var hex: String { Hex.encode(bytes) }

    /// 32 characters of RFC 4648 base32 (uppercase, no padding), as in older magnets.
    public var base32: String { Base32.encode(bytes) }

    /// Parses 40 hex digits or 32 base32 characters (either case).
    public init?(string: String) {
        let text = string.trimmingASCIIWhitespace()
        if text.utf8.count == 40, let bytes = Hex.decode(text) {
            self.init(bytes)
        } else if text.utf8.count == 32, let bytes = Base32.decode(text) {
            self.init(bytes)
        } else {
            return nil
        }
    }

    public static func < (lhs: Digest20, rhs: Digest20) -> Bool {
        (lhs.high, lhs.middle, lhs.low) < (rhs.high, rhs.middle, rhs.low)
    }
}

extension Digest20: CustomStringConvertible {
    public var description: String { hex }
}

/// The v1 info hash of a torrent.
public typealias InfoHash = Digest20

/// A 20-byte peer id.
public typealias PeerID = Digest20

extension Digest20 {
    /// The client prefix of our peer ids, Azureus style: `-TF0100-` is torrentfs 0.1.0.
    public static let peerIDPrefix = "-TF0100-"

    /// A fresh peer id: the client prefix followed by 12 random printable bytes.
    public static func generatePeerID<G: RandomNumberGenerator>(using generator: inout G) -> PeerID {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        var bytes = Array(peerIDPrefix.utf8)
        while bytes.count < 20 { bytes.append(alphabet.randomElement(using: &generator)!) }
        return PeerID(bytes)!
    }

    public static func generatePeerID() -> PeerID {
        var generator = SystemRandomNumberGenerator()
        return generatePeerID(using: &generator)
    }
}

enum Hex {
    static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = value(utf8[index]), let low = value(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var out = [UInt8]()
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = c - UInt8(ascii: "a")
            case UInt8(ascii: "2")...UInt8(ascii: "7"): v = c - UInt8(ascii: "2") + 26
            default: return nil
            }
            buffer = buffer << 5 | UInt32(v)
            bits += 5
            if bits >= 8 {
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits - 8)))
                bits -= 8
            }
        }
        return out
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let utf8 = Array(self.utf8)
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }
        guard let first = utf8.firstIndex(where: { !isSpace($0) }),
              let last = utf8.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(decoding: utf8[first...last], as: UTF8.self)
    }
}
