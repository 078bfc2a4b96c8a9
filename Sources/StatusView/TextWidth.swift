/// Terminal columns of text, and text made safe to print.
///
/// Names of torrents and peers' client strings come from the network: before they reach the
/// terminal, control characters become `?` (an ESC would otherwise start an escape sequence)
/// and bidirectional overrides are dropped (they would reorder the rest of the line).
/// Widths follow what terminals do (wcwidth): East Asian wide characters and emoji take two
/// columns, combining marks and zero-width characters none, everything else one. A
/// character is a grapheme cluster, so a letter with its accents or a flag counts once.
public enum TextWidth {
    /// Columns `text` takes on a terminal (after `clean`).
    public static func of(_ text: String) -> Int {
        text.reduce(0) { $0 + of($1) }
    }

    /// Columns one grapheme cluster takes.
    public static func of(_ character: Character) -> Int {
        let scalars = character.unicodeScalars
        guard let first = scalars.first else { return 0 }
        if first.value < 0x20 || (0x7F..<0xA0).contains(first.value) { return 1 }  // shown as `?` by `clean`
        if scalars.contains(where: { $0.value == 0xFE0F }) { return 2 }  // emoji presentation selector
        if first.properties.isEmojiPresentation || isWide(first.value) { return 2 }
        if isZeroWidth(first) { return 0 }
        return 1
    }

    /// `text` safe to print: control characters as `?`, bidirectional controls removed.
    public static func clean(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsCleaning) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isBidiControl(scalar.value) { continue }
            out.append(isControl(scalar.value) ? "?" : scalar)
        }
        return String(out)
    }

    /// The longest prefix of `text` that fits in `width` columns; when something was cut,
    /// it ends with `ellipsis` (itself within the width).
    public static func truncate(_ text: String, to width: Int, ellipsis: String = "…") -> String {
        guard width > 0 else { return "" }
        if of(text) <= width { return text }
        let room = width - of(ellipsis)
        guard room >= 0 else { return prefix(text, width) }
        return prefix(text, room) + ellipsis
    }

    /// The longest prefix of `text` (whole characters) within `width` columns.
    public static func prefix(_ text: String, _ width: Int) -> String {
        var used = 0
        var out = ""
        for character in text {
            let w = of(character)
            if used + w > width { break }
            used += w
            out.append(character)
        }
        return out
    }

    /// `text` truncated or padded with spaces to exactly `width` columns.
    public static func pad(_ text: String, to width: Int, alignRight: Bool = false, ellipsis: String = "…") -> String {
        let cut = truncate(text, to: width, ellipsis: ellipsis)
        let fill = String(repeating: " ", count: max(0, width - of(cut)))
        return alignRight ? fill + cut : cut + fill
    }

    private static func needsCleaning(_ scalar: Unicode.Scalar) -> Bool {
        isControl(scalar.value) || isBidiControl(scalar.value)
    }

    private static func isControl(_ value: UInt32) -> Bool {
        value < 0x20 || (0x7F..<0xA0).contains(value)
    }

    private static func isBidiControl(_ value: UInt32) -> Bool {
        (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value) || value == 0x200E || value == 0x200F
            || value == 0x061C
    }

    private static func isZeroWidth(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return true
        default: return (0x1160...0x11FF).contains(scalar.value)  // Hangul medial vowels and final consonants
        }
    }

    /// East Asian Wide and Fullwidth ranges (as in Markus Kuhn's wcwidth, with the
    /// emoji blocks terminals draw two columns wide).
    private static func isWide(_ value: UInt32) -> Bool {
        guard value >= 0x1100 else { return false }
        return (0x1100...0x115F).contains(value)
            || value == 0x2329 || value == 0x232A
            || ((0x2E80...0xA4CF).contains(value) && value != 0x303F)
            || (0xAC00...0xD7A3).contains(value)
            || (0xF900...0xFAFF).contains(value)
            || (0xFE10...0xFE19).contains(value)
            || (0xFE30...0xFE6F).contains(value)
            || (0xFF00...0xFF60).contains(value)
            || (0xFFE0...0xFFE6).contains(value)
            || (0x1F300...0x1F64F).contains(value)
            || (0x1F900...0x1F9FF).contains(value)
            || (0x20000...0x2FFFD).contains(value)
            || (0x30000...0x3FFFD).contains(value)
    }
}
