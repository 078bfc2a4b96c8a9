import Foundation

/// A `Range` header of the `bytes` unit (RFC 9110 §14.1.2), resolved against an entity
/// of known size. A value: text in, byte ranges out.
public enum ByteRanges: Equatable, Sendable {
    /// No `Range` header, or one to ignore (another unit, a syntax error): the whole entity.
    case whole
    /// The satisfiable ranges, each within the entity, none overlapping or touching another
    /// (those are merged), in the order the first of each merged group was asked.
    case partial([Range<Int64>])
    /// No range overlaps the entity: 416.
    case unsatisfiable

    /// Most ranges honoured in one request; more is treated as no `Range` (whole entity).
    public static let maxRanges = 16

    public static func parse(_ header: String?, size: Int64) -> ByteRanges {
        guard let header else { return .whole }
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes=") else { return .whole }
        let specs = trimmed.dropFirst(6).split(separator: ",", omittingEmptySubsequences: false)
        guard !specs.isEmpty, specs.count <= maxRanges else { return .whole }
        var ranges: [Range<Int64>] = []
        for raw in specs {
            let spec = raw.trimmingCharacters(in: .whitespaces)
            guard let dash = spec.firstIndex(of: "-") else { return .whole }
            let first = spec[..<dash]
            let last = spec[spec.index(after: dash)...]
            if first.isEmpty {
                // A suffix: the last n bytes (all of them when the entity is shorter).
                guard let count = digits(last) else { return .whole }
                if count > 0 && size > 0 { ranges.append(max(0, size - count)..<size) }
                continue
            }
            guard let start = digits(first) else { return .whole }
            var end = size - 1
            if !last.isEmpty {
                guard let value = digits(last), value >= start else { return .whole }
                end = min(value, size - 1)
            }
            if start < size { ranges.append(start..<(end + 1)) }
        }
        return ranges.isEmpty ? .unsatisfiable : .partial(coalesce(ranges))
    }

    /// Merges ranges that overlap or touch (RFC 9110 §14.2: `bytes=0-,0-,…` would otherwise
    /// send the entity once per range), so the parts never add up to more than the entity.
    /// Each merged range takes the place of the earliest range asked among those it covers;
    /// the others keep their order (§14.6).
    static func coalesce(_ ranges: [Range<Int64>]) -> [Range<Int64>] {
        let byStart = ranges.indices.sorted { (ranges[$0].lowerBound, $0) < (ranges[$1].lowerBound, $1) }
        var merged: [(range: Range<Int64>, first: Int)] = []
        for index in byStart {
            let range = ranges[index]
            if let last = merged.last, range.lowerBound <= last.range.upperBound {
                merged[merged.count - 1] = (last.range.lowerBound..<max(last.range.upperBound, range.upperBound),
                                            min(last.first, index))
            } else {
                merged.append((range, index))
            }
        }
        return merged.sorted { $0.first < $1.first }.map(\.range)
    }

    /// A non-negative decimal without sign or spaces; nil otherwise (or too long for Int64).
    static func digits(_ text: Substring) -> Int64? {
        guard !text.isEmpty, text.count <= 18, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int64(text)
    }
}
