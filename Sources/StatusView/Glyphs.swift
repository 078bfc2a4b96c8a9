import TorrentEngine

/// The characters the view draws with: block elements on a UTF-8 terminal, ASCII elsewhere.
public struct Glyphs: Sendable, Hashable {
    /// Progress bar: filled cell, empty cell, and the partial cells from 1/8 to 7/8.
    public var barFull: String
    public var barEmpty: String
    public var barEighths: [String]
    /// Sparkline levels, lowest (no traffic) first.
    public var spark: [String]
    /// Piece map cells, by `PiecePicker.MapCell`.
    public var verified: String
    public var partly: String
    public var inFlight: String
    public var wanted: String
    public var missing: String
    public var ellipsis: String
    public var marker: String
    public var down: String
    public var up: String
    public var separator: String
    /// Between the title and a torrent's name in the detail view.
    public var crumb: String

    public static let unicode = Glyphs(
        barFull: "█", barEmpty: "░", barEighths: ["▏", "▎", "▍", "▌", "▋", "▊", "▉"],
        spark: ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"],
        verified: "█", partly: "▓", inFlight: "▒", wanted: "░", missing: "·",
        ellipsis: "…", marker: "▶", down: "↓", up: "↑", separator: "·", crumb: "›")

    public static let ascii = Glyphs(
        barFull: "#", barEmpty: "-", barEighths: [],
        spark: ["_", ".", ":", "-", "=", "+", "*", "#"],
        verified: "#", partly: "+", inFlight: ">", wanted: "-", missing: ".",
        ellipsis: "~", marker: ">", down: "down", up: "up", separator: "|", crumb: ">")

    /// Block elements when the locale (`LC_ALL`, `LC_CTYPE`, `LANG`, the first one set)
    /// is UTF-8; ASCII otherwise.
    public static func forLocale(_ environment: [String: String]) -> Glyphs {
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"].lazy.compactMap { environment[$0] }.first { !$0.isEmpty } ?? ""
        let lowered = locale.lowercased()
        return lowered.contains("utf-8") || lowered.contains("utf8") ? .unicode : .ascii
    }

    /// A progress bar of `width` cells (no brackets): filled cells in `.good`, the rest faint.
    public func bar(_ fraction: Double, width: Int) -> Line {
        guard width > 0 else { return Line() }
        let f = min(1, max(0, fraction.isFinite ? fraction : 0))
        let eighths = Int((f * Double(width * 8)).rounded(.down))
        var full = eighths / 8
        var partial = ""
        if full < width, eighths % 8 > 0 {
            if barEighths.isEmpty {
                if eighths % 8 >= 4 { full += 1 }
            } else {
                partial = barEighths[eighths % 8 - 1]
            }
        }
        var line = Line(String(repeating: barFull, count: full), .good)
        line.append(partial, .good)
        line.append(String(repeating: barEmpty, count: width - full - (partial.isEmpty ? 0 : 1)), .faint)
        return line
    }

    /// The last `width` samples as a sparkline scaled to their maximum, newest on the
    /// right; columns without a sample yet are blank.
    public func sparkline(_ samples: [Double], width: Int) -> String {
        guard width > 0 else { return "" }
        let shown = samples.suffix(width)
        let top = shown.max() ?? 0
        var out = String(repeating: " ", count: width - shown.count)
        let levels = spark.count - 1
        for value in shown {
            guard top > 0, value > 0, value.isFinite else { out += spark[0]; continue }
            out += spark[min(levels, max(1, Int((value / top * Double(levels)).rounded(.up))))]
        }
        return out
    }

    /// The piece map scaled to `width` columns, each cell in the style of what it shows.
    public func pieceMap(_ map: String, width: Int) -> Line {
        var line = Line()
        for cell in PieceMap.scale(map, to: width) {
            switch cell {
            case .verified: line.append(verified, .good)
            case .partly: line.append(partly, .good)
            case .inFlight: line.append(inFlight, .busy)
            case .wanted: line.append(wanted, .normal)
            case .missing: line.append(missing, .faint)
            }
        }
        return line
    }
}
