/// The escape sequences of the view: what it writes to the terminal (a frame, entering and
/// leaving the full screen) and what it reads from it (keys). The system calls that go
/// with them (raw mode, window size, signals) are in the executable's `Terminal.swift`.
public enum ANSI {
    static let esc = "\u{1B}["

    /// Alternate screen, cursor hidden, no autowrap (a line as wide as the terminal
    /// must not push the cursor to the next one), screen cleared.
    public static let enterScreen = esc + "?1049h" + esc + "?25l" + esc + "?7l" + esc + "H" + esc + "2J"
    /// The reverse of `enterScreen`: the shell's screen comes back as it was.
    public static let leaveScreen = esc + "0m" + esc + "?7h" + esc + "?25h" + esc + "?1049l"

    /// One frame, to be written at once: every line written over the previous frame's at
    /// its row and padded with spaces to `columns` (nothing is cleared first, so nothing
    /// flickers), anything below the last line cleared, inside a synchronized update
    /// (terminals that do not know it ignore it).
    public static func frame(_ lines: [Line], size: TerminalSize, colors: Bool = true) -> String {
        var out = esc + "?2026h"
        for (row, line) in lines.enumerated() {
            out += esc + "\(row + 1);1H"
            var current: Style? = nil
            for span in line.spans where !span.text.isEmpty {
                if span.style != current { out += sgr(span.style, colors: colors) }
                current = span.style
                out += span.text
            }
            let fill = size.columns - line.width
            if fill > 0 {
                if current != .normal { out += sgr(.normal, colors: colors) }
                out += String(repeating: " ", count: fill)
            }
        }
        out += esc + "0m"
        if lines.count < size.rows { out += esc + "\(lines.count + 1);1H" + esc + "J" }
        out += esc + "?2026l"
        return out
    }

    /// Select Graphic Rendition for `style`; without colours, only bold, faint and inverse.
    public static func sgr(_ style: Style, colors: Bool) -> String {
        let code: String
        switch style {
        case .normal: code = "0"
        case .strong: code = "0;1"
        case .faint: code = "0;2"
        case .bar: code = "0;7"
        case .selected: code = "0;1;7"
        case .good: code = colors ? "0;32" : "0"
        case .busy: code = colors ? "0;33" : "0"
        case .bad: code = colors ? "0;31" : "0;1"
        case .accent: code = colors ? "0;36" : "0"
        }
        return esc + code + "m"
    }

    /// The keys in bytes read from the terminal. A lone ESC at the end is the Escape key;
    /// sequences the view has no use for are skipped.
    public static func keys(_ bytes: [UInt8]) -> [Key] {
        var keys: [Key] = []
        var i = 0
        while i < bytes.count {
            let byte = bytes[i]
            switch byte {
            case 0x1B:
                guard i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "[") || bytes[i + 1] == UInt8(ascii: "O") else {
                    keys.append(.escape)
                    i += 1
                    continue
                }
                // CSI or SS3: parameter and intermediate bytes, then one final byte.
                var j = i + 2
                while j < bytes.count, (0x20...0x3F).contains(bytes[j]) { j += 1 }
                guard j < bytes.count else { return keys }
                let parameters = String(decoding: bytes[(i + 2)..<j], as: UTF8.self)
                if let key = sequenceKey(final: bytes[j], parameters: parameters) { keys.append(key) }
                i = j + 1
            case 0x03: keys.append(.interrupt); i += 1
            case 0x0C: keys.append(.repaint); i += 1
            case 0x0D, 0x0A: keys.append(.enter); i += 1
            case 0x09: keys.append(.character("\t")); i += 1
            case 0x00..<0x20, 0x7F: i += 1
            default:
                let length = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                let end = min(bytes.count, i + length)
                if let character = String(decoding: bytes[i..<end], as: UTF8.self).first { keys.append(.character(character)) }
                i = end
            }
        }
        return keys
    }

    private static func sequenceKey(final: UInt8, parameters: String) -> Key? {
        switch final {
        case UInt8(ascii: "A"): return .up
        case UInt8(ascii: "B"): return .down
        case UInt8(ascii: "C"): return .right
        case UInt8(ascii: "D"): return .left
        case UInt8(ascii: "H"): return .home
        case UInt8(ascii: "F"): return .end
        case UInt8(ascii: "~"):
            switch parameters.split(separator: ";").first {
            case "1", "7": return .home
            case "4", "8": return .end
            case "5": return .pageUp
            case "6": return .pageDown
            default: return nil
            }
        default: return nil
        }
    }
}
