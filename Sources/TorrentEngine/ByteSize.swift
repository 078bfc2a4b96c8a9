/// Sizes and rates as people write them: a number with an optional K, M or G suffix
/// (powers of 1024), optionally followed by `B` or `iB`, in any case: `262144`, `256K`,
/// `256KiB`, `1M`, `2mb`.
public enum ByteSize {
    public static func parse(_ text: String) -> Int64? {
        var digits = Substring(text.lowercased())
        if digits.hasSuffix("ib") { digits = digits.dropLast(2) } else if digits.hasSuffix("b") { digits = digits.dropLast() }
        var scale: Int64 = 1
        switch digits.last {
        case "k": scale = 1 << 10
        case "m": scale = 1 << 20
        case "g": scale = 1 << 30
        default: break
        }
        if scale > 1 { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let value = Int64(digits), value >= 0,
              value <= Int64.max / scale else { return nil }
        return value * scale
    }
}
