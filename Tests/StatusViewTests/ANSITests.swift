import Testing
import TorrentEngine
@testable import StatusView

@Suite("Escape sequences and keys")
struct ANSITests {
    @Test("Keys from the bytes a terminal sends", arguments: [
        ([0x71], [Key.character("q")]),
        ([0x1B, 0x5B, 0x41, 0x1B, 0x5B, 0x42], [.up, .down]),
        ([0x1B, 0x4F, 0x41], [.up]),  // application cursor mode
        ([0x1B, 0x5B, 0x35, 0x7E, 0x1B, 0x5B, 0x36, 0x7E], [.pageUp, .pageDown]),
        ([0x1B, 0x5B, 0x31, 0x3B, 0x35, 0x43], [.right]),  // Ctrl-Right: modifiers ignored
        ([0x1B], [.escape]),
        ([0x1B, 0x62], [.escape, .character("b")]),  // Alt-b
        ([0x0D], [.enter]),
        ([0x03], [.interrupt]),
        ([0x0C], [.repaint]),
        ([0x6A, 0x6B], [.character("j"), .character("k")]),
        ([0xC3, 0xA9], [.character("é")]),
        ([0x1B, 0x5B, 0x32, 0x30, 0x30, 0x7E], []),  // bracketed paste start: ignored
        ([0x1B, 0x5B], []),  // cut short
        ([0x00, 0x7F], []),
    ])
    func keys(bytes: [UInt8], expected: [Key]) {
        #expect(ANSI.keys(bytes) == expected)
    }

    @Test("A frame: lines overwritten in place at their rows, padded, no newline, inside a synchronized update")
    func frame() {
        let lines = [Line("title", .bar), Line("日本", .good), Line("")]
        let out = ANSI.frame(lines, size: TerminalSize(rows: 5, columns: 8))
        #expect(out.hasPrefix("\u{1B}[?2026h"))
        #expect(out.hasSuffix("\u{1B}[?2026l"))
        #expect(!out.contains("\n") && !out.contains("\r"))
        #expect(out.contains("\u{1B}[1;1H\u{1B}[0;7mtitle\u{1B}[0m   "))
        #expect(out.contains("\u{1B}[2;1H\u{1B}[0;32m日本\u{1B}[0m    "))
        #expect(out.contains("\u{1B}[3;1H\u{1B}[0m        "))
        #expect(out.contains("\u{1B}[4;1H\u{1B}[J"))
        #expect(!ANSI.frame(lines, size: TerminalSize(rows: 3, columns: 8)).contains("\u{1B}[J"))
        #expect(!ANSI.frame(lines, size: TerminalSize(rows: 3, columns: 8), colors: false).contains("32m"))
    }

    @Test("Entering and leaving the full screen")
    func screen() {
        #expect(ANSI.enterScreen.contains("\u{1B}[?1049h") && ANSI.enterScreen.contains("\u{1B}[?25l"))
        #expect(ANSI.leaveScreen.contains("\u{1B}[?1049l") && ANSI.leaveScreen.contains("\u{1B}[?25h"))
        #expect(ANSI.leaveScreen.contains("\u{1B}[?7h"))
    }
}

@Suite("Keys in the view")
struct ViewStateTests {
    let document = Fixtures.document([Fixtures.torrent("a", hash: "a", peers: []),
                                      Fixtures.torrent("b", hash: "b", peers: (0..<30).map { Fixtures.peer("10.0.0.\($0):1") }),
                                      Fixtures.torrent("c", hash: "c")])
    let a = String(repeating: "a", count: 40), b = String(repeating: "b", count: 40), c = String(repeating: "c", count: 40)

    @Test("Select with arrows or j/k, open with Enter or d, back with Esc or b, quit with q")
    func navigate() {
        var state = ViewState()
        #expect(state.selectedIndex(in: document) == 0)
        #expect(state.handle(.down, document: document) == .redraw)
        #expect(state.selected == b)
        #expect(state.handle(.character("j"), document: document) == .redraw)
        #expect(state.handle(.character("j"), document: document) == .redraw)
        #expect(state.selected == c)
        #expect(state.handle(.character("k"), document: document) == .redraw)
        #expect(state.handle(.enter, document: document) == .redraw)
        #expect(state.mode == .detail && state.selected == b)
        #expect(state.handle(.down, document: document, pageSize: 10) == .redraw)
        #expect(state.peerOffset == 1)
        #expect(state.handle(.end, document: document, pageSize: 10) == .redraw)
        #expect(state.peerOffset == 20)
        #expect(state.handle(.pageDown, document: document, pageSize: 10) == .redraw)
        #expect(state.peerOffset == 20)
        #expect(state.handle(.escape, document: document) == .redraw)
        #expect(state.mode == .list && state.selected == b)
        #expect(state.handle(.character("d"), document: document) == .redraw)
        #expect(state.mode == .detail && state.peerOffset == 0)
        #expect(state.handle(.character("n"), document: document) == .redraw)
        #expect(state.selected == c)
        #expect(state.handle(.character("b"), document: document) == .redraw)
        #expect(state.mode == .list)
        #expect(state.handle(.character("x"), document: document) == .none)
        #expect(state.handle(.repaint, document: document) == .repaint)
        #expect(state.handle(.interrupt, document: document) == .interrupt)
        #expect(state.handle(.character("q"), document: document) == .quit)
        #expect(state.handle(.character("q"), document: nil) == .quit)
        #expect(state.handle(.down, document: nil) == .none)
    }

    @Test("The selection follows its torrent when the list changes, the first one when it is gone")
    func selectionFollowsTorrent() {
        let state = ViewState(selected: c)
        let reordered = Fixtures.document([Fixtures.torrent("c", hash: "c"), Fixtures.torrent("a", hash: "a")])
        #expect(state.selectedIndex(in: reordered) == 0)
        let gone = Fixtures.document([Fixtures.torrent("a", hash: "a"), Fixtures.torrent("b", hash: "b")])
        #expect(state.selectedIndex(in: gone) == 0)
        #expect(state.selectedIndex(in: Fixtures.document([])) == nil)
    }
}
