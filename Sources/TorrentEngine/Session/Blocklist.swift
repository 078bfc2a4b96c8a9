import BitTorrent

/// IP ranges never to talk to: P2P format (`name:1.2.3.4-1.2.3.255`) and CIDR lines
/// (`10.0.0.0/8`, `2001:db8::/32`); `#` starts a comment.
public struct Blocklist: Sendable, Hashable {
    struct Range: Hashable, Sendable {
        var low: [UInt8]
        var high: [UInt8]
    }

    private var ranges: [Range] = []

    public init() {}

    public var count: Int { ranges.count }

    /// Parses the text; returns the line numbers (1-based) that were not understood.
    @discardableResult
    public mutating func load(_ text: String) -> [Int] {
        var bad: [Int] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.trimmingCharacters()
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]).trimmingCharacters() }
            if line.isEmpty { continue }
            if let range = Blocklist.parseLine(line) { ranges.append(range) } else { bad.append(number + 1) }
        }
        return bad
    }

    static func parseLine(_ line: String) -> Range? {
        if let slash = line.lastIndex(of: "/"), !line.contains("-") {
            guard let address = IPAddress.parse(String(line[..<slash])),
                  let bits = Int(line[line.index(after: slash)...]), bits >= 0, bits <= address.count * 8 else { return nil }
            var low = address
            var high = address
            for bit in bits..<(address.count * 8) {
                let mask = UInt8(0x80) >> UInt8(bit % 8)
                low[bit / 8] &= ~mask
                high[bit / 8] |= mask
            }
            return Range(low: low, high: high)
        }
        // P2P format: the range follows the last colon that precedes the dash.
        guard let dash = line.lastIndex(of: "-") else { return nil }
        let left = line[..<dash]
        let start = left.lastIndex(of: ":").map { String(left[left.index(after: $0)...]) } ?? String(left)
        guard let low = IPAddress.parse(start.trimmingCharacters()),
              let high = IPAddress.parse(String(line[line.index(after: dash)...]).trimmingCharacters()),
              low.count == high.count, !high.lexicographicallyPrecedes(low) else { return nil }
        return Range(low: low, high: high)
    }

    public func isBlocked(_ host: String) -> Bool {
        guard let address = IPAddress.parse(host) else { return false }
        return ranges.contains { range in
            range.low.count == address.count && !address.lexicographicallyPrecedes(range.low)
                && !range.high.lexicographicallyPrecedes(address)
        }
    }
}

/// Textual IP addresses to bytes.
public enum IPAddress {
    public static func parse(_ text: String) -> [UInt8]? {
        if text.contains(":") { return parse6(text) }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, let value = UInt8(part) else { return nil }
            out.append(value)
        }
        return out
    }

    static func parse6(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        var halves: [String] = []
        var start = 0
        var index = 0
        while index + 1 < utf8.count {
            if utf8[index] == UInt8(ascii: ":") && utf8[index + 1] == UInt8(ascii: ":") {
                halves.append(String(decoding: utf8[start..<index], as: UTF8.self))
                index += 2
                start = index
            } else {
                index += 1
            }
        }
        halves.append(String(decoding: utf8[start...], as: UTF8.self))
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !group.isEmpty, group.count <= 4, let value = UInt16(group, radix: 16) else { return nil }
                out.append(value)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
