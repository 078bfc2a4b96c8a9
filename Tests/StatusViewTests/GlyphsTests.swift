import Testing
import TorrentEngine
@testable import StatusView

@Suite("Bars, sparklines, piece maps")
struct GlyphsTests {
    typealias Cell = PiecePicker.MapCell

    @Test("The piece map scaled down merges runs, scaled up repeats cells", arguments: [
        ("##>>--..", 4, "#>-."),
        ("##>>--..", 8, "##>>--.."),
        ("#>-.", 8, "##>>--.."),
        ("#.", 1, "+"),
        ("#-", 1, "-"),
        ("#>", 1, ">"),
        ("++", 1, "+"),
        ("..", 1, "."),
        ("####", 1, "#"),
        ("#-.", 2, "#-"),
        ("", 10, ""),
        ("#?", 2, "#."),
    ])
    func scale(map: String, width: Int, expected: String) {
        #expect(String(PieceMap.scale(map, to: width).map(\.rawValue)) == expected)
    }

    @Test("Scaling 120 cells to any width gives that many columns")
    func scaleWidths() {
        let map = String(repeating: "#>-.+", count: 24)
        for width in 1...300 { #expect(PieceMap.scale(map, to: width).count == width) }
        #expect(PieceMap.scale("#", to: 0).isEmpty)
    }

    @Test("Bars: width exact, eighths on a UTF-8 terminal, halves rounded in ASCII", arguments: [
        (0.0, 8, "░░░░░░░░", "--------"),
        (1.0, 8, "████████", "########"),
        (0.5, 8, "████░░░░", "####----"),
        (0.53, 8, "████▏░░░", "####----"),
        (0.56, 8, "████▍░░░", "####----"),
        (0.6, 8, "████▊░░░", "#####---"),
        (2.0, 4, "████", "####"),
        (-1.0, 4, "░░░░", "----"),
        (Double.nan, 4, "░░░░", "----"),
    ])
    func bar(fraction: Double, width: Int, unicode: String, ascii: String) {
        #expect(Glyphs.unicode.bar(fraction, width: width).text == unicode)
        #expect(Glyphs.ascii.bar(fraction, width: width).text == ascii)
    }

    @Test("Sparklines: newest on the right, scaled to the highest, zero on the baseline, blanks before the first sample")
    func sparkline() {
        #expect(Glyphs.unicode.sparkline([0, 1, 2, 4, 8], width: 5) == "▁▂▃▅█")
        #expect(Glyphs.unicode.sparkline([8, 8], width: 5) == "   ██")
        #expect(Glyphs.unicode.sparkline([1, 2, 3, 100], width: 2) == "▂█")
        #expect(Glyphs.unicode.sparkline([0, 0, 0], width: 3) == "▁▁▁")
        #expect(Glyphs.ascii.sparkline([0, 8], width: 3) == " _#")
        #expect(Glyphs.unicode.sparkline([], width: 0) == "")
    }

    @Test("UTF-8 locales get block elements, others ASCII")
    func locale() {
        #expect(Glyphs.forLocale(["LANG": "en_US.UTF-8"]) == .unicode)
        #expect(Glyphs.forLocale(["LANG": "C.utf8"]) == .unicode)
        #expect(Glyphs.forLocale(["LC_ALL": "C", "LANG": "en_US.UTF-8"]) == .ascii)
        #expect(Glyphs.forLocale(["LC_ALL": "", "LC_CTYPE": "de_DE.UTF-8"]) == .unicode)
        #expect(Glyphs.forLocale([:]) == .ascii)
    }

    @Test("Rate history: a minute per torrent, removed torrents forgotten, session totals")
    func history() {
        var history = RateHistory(capacity: 3)
        for rate in 1...5 {
            history.record(Fixtures.document([Fixtures.torrent("a", hash: "a", down: Double(rate), up: 1),
                                              Fixtures.torrent("b", hash: "b", down: 10, up: 0)]))
        }
        #expect(history[String(repeating: "a", count: 40)].down == [3, 4, 5])
        #expect(history.total.down == [13, 14, 15])
        #expect(history.total.up == [1, 1, 1])
        history.record(Fixtures.document([Fixtures.torrent("b", hash: "b", down: 10, up: 0)]))
        #expect(history[String(repeating: "a", count: 40)].down.isEmpty)
        #expect(history[String(repeating: "b", count: 40)].down == [10, 10, 10])
    }

    @Test("Durations", arguments: [
        (0.0, "0:00"), (42.0, "0:42"), (605.0, "10:05"), (3723.0, "1:02:03"), (90_000.0, "1d 01h"),
        (1e9, ">99d"), (-1.0, "-"), (Double.infinity, "-"),
    ])
    func durations(seconds: Double, text: String) {
        #expect(Format.duration(seconds) == text)
    }
}
