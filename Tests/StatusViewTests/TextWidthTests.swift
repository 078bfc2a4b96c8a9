import Testing
@testable import StatusView

@Suite("Text width")
struct TextWidthTests {
    @Test("Columns of text as a terminal draws it", arguments: [
        ("abc", 3),
        ("", 0),
        ("Ünïcødé", 7),
        ("e\u{301}te\u{301}", 3),  // decomposed accents count once
        ("日本語", 6),
        ("ファイル", 8),
        ("emoji 🎬", 8),
        ("🇫🇷", 2),
        ("한국어", 6),
        ("a\u{200B}b", 2),
    ])
    func widths(text: String, width: Int) {
        #expect(TextWidth.of(text) == width)
    }

    @Test("Control characters and bidi overrides never reach the terminal")
    func clean() {
        #expect(TextWidth.clean("evil\u{1B}[2Jname") == "evil?[2Jname")
        #expect(TextWidth.clean("a\u{7}b\u{9B}c\nd") == "a?b?c?d")
        #expect(TextWidth.clean("abc\u{202E}fdp.exe") == "abcfdp.exe")
        #expect(TextWidth.clean("plain ファイル") == "plain ファイル")
    }

    @Test("Truncation keeps whole characters within the width")
    func truncate() {
        #expect(TextWidth.truncate("hello world", to: 8) == "hello w…")
        #expect(TextWidth.truncate("hello", to: 5) == "hello")
        #expect(TextWidth.truncate("日本語です", to: 6) == "日本…")
        #expect(TextWidth.truncate("日本語です", to: 5) == "日本…")
        #expect(TextWidth.truncate("e\u{301}e\u{301}e\u{301}e\u{301}", to: 3) == "e\u{301}e\u{301}…")
        #expect(TextWidth.truncate("abc", to: 0) == "")
        #expect(TextWidth.truncate("abcdef", to: 1) == "…")
        #expect(TextWidth.pad("日本", to: 5) == "日本 ")
        #expect(TextWidth.pad("12", to: 4, alignRight: true) == "  12")
        for width in 0...12 {
            #expect(TextWidth.of(TextWidth.truncate("emoji 🎬 日本語 ok", to: width)) <= width)
        }
    }
}
