import Testing
import TorrentEngine
@testable import StatusView

@Suite("Status view layout")
struct StatusViewTests {
    let view = StatusView(title: "torrentfs status /mnt/t", glyphs: .unicode, emptyHint: "no torrents")

    func history(_ document: StatusDocument, seconds: Int = 70) -> RateHistory {
        var history = RateHistory()
        for second in 0..<seconds {
            var sample = document
            for index in sample.torrents.indices { sample.torrents[index].downloadRate *= Double(second % 7) }
            history.record(sample)
        }
        return history
    }

    func frame(_ document: StatusDocument?, _ state: ViewState = ViewState(), rows: Int = 40, columns: Int = 100,
               glyphs: Glyphs = .unicode, message: String? = nil) -> [String] {
        var view = view
        view.glyphs = glyphs
        return view.render(document, history: document.map { history($0) } ?? RateHistory(), state: state,
                           size: TerminalSize(rows: rows, columns: columns), message: message).map(\.text)
    }

    @Test("No line is wider than the terminal, none past its last row, at any size, in both views")
    func fitsEverySize() {
        var document = Fixtures.busy
        document.cache = Fixtures.document([], cache: ["size": 48 << 20, "limit": 64 << 20, "evictions": 12]).cache
        let states = [ViewState(), ViewState(mode: .list, selected: String(repeating: "d", count: 40)),
                      ViewState(mode: .detail, selected: String(repeating: "d", count: 40)),
                      ViewState(mode: .detail, selected: String(repeating: "d", count: 40), peerOffset: 30),
                      ViewState(mode: .detail, selected: String(repeating: "c", count: 40))]
        for glyphs in [Glyphs.unicode, .ascii] {
            var view = view
            view.glyphs = glyphs
            for state in states {
                for rows in [1, 2, 3, 4, 5, 8, 12, 24, 50] {
                    for columns in [1, 2, 5, 10, 19, 20, 33, 40, 59, 60, 80, 81, 100, 132, 200, 300] {
                        let lines = view.render(document, history: history(document, seconds: 3), state: state,
                                                size: TerminalSize(rows: rows, columns: columns), message: "an error")
                        #expect(lines.count == rows, "\(rows)x\(columns) \(state)")
                        for line in lines {
                            #expect(line.width <= columns, "\(rows)x\(columns) \(state): \(line.text)")
                            #expect(TextWidth.of(line.text) == line.width)
                            #expect(!line.text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F },
                                    "control character in \(line.text)")
                        }
                    }
                }
            }
        }
    }

    @Test("Each torrent: name and state, a bar with its figures, the piece map, rates, peers")
    func listBlock() {
        let lines = frame(Fixtures.document([Fixtures.torrent("Sample Album", peers: [
            Fixtures.peer("127.0.0.1:6881", down: 1000), Fixtures.peer("127.0.0.1:6882", source: "pex"),
            Fixtures.peer("127.0.0.1:6883", source: nil, incoming: true)])]))
        #expect(lines[0].hasPrefix(" torrentfs status /mnt/t"))
        #expect(lines[0].hasSuffix("1 torrent  port 6881 "))
        #expect(lines[2].hasPrefix("▶ Sample Album"))
        #expect(lines[2].hasSuffix("downloading"))
        #expect(lines[3].hasPrefix("  [████"))
        #expect(lines[3].hasSuffix("] 25.0%  1.0 MiB / 4.0 MiB  ETA 0:42"))
        #expect(lines[4].hasPrefix("   ████"))
        #expect(lines[4].contains("▒▒▒▒") && lines[4].contains("░░░░") && lines[4].hasSuffix("···"))
        #expect(lines[5].hasPrefix("  ↓ 293.0 KiB/s"))
        #expect(lines[5].contains("↑ 1000 B/s"))
        #expect(lines[6] == "  3 peers: incoming 1, pex 1, tracker 1 · tcp 3  · known 5")
        #expect(lines.last!.contains("q quit"))
    }

    @Test("The bar and the piece map take the width the figures leave, and line up")
    func barScales() {
        let document = Fixtures.document([Fixtures.torrent("x", progress: 0.5, map: "##..")])
        for columns in [40, 60, 80, 100, 160, 250] {
            let lines = frame(document, columns: columns)
            let bar = lines[3]
            let open = bar.firstIndex(of: "[")!, close = bar.firstIndex(of: "]")!
            let cells = bar.distance(from: bar.index(after: open), to: close)
            #expect(cells == max(min(10, columns - 4), columns - 5 - TextWidth.of("50.0%  2.0 MiB / 4.0 MiB  ETA 0:42")))
            let filled = bar.filter { $0 == "█" }.count
            #expect(abs(filled - cells / 2) <= 1, "\(columns): \(bar)")
            #expect(TextWidth.of(bar) == columns)
            // The map sits under the bar's cells, half verified, half not wanted.
            let map = lines[4]
            let verified = (0..<cells).filter { $0 * 4 / cells < 2 }.count
            #expect(map == "   " + String(repeating: "█", count: verified) + String(repeating: "·", count: cells - verified),
                    "\(columns): \(map)")
        }
    }

    @Test("With a bounded cache, its use against the limit heads the list")
    func cache() {
        let document = Fixtures.document([Fixtures.torrent("Sample")],
                                         cache: ["size": 48 << 20, "limit": 64 << 20, "evictions": 12])
        let lines = frame(document, columns: 80)
        #expect(lines[1] == "  cache [███████████████░░░░░] 48.0 MiB / 64.0 MiB  · 12 evicted")
        #expect(lines[3].hasPrefix("▶ Sample"))
        #expect(frame(Fixtures.document([Fixtures.torrent("Sample")]), columns: 80)[2].hasPrefix("▶ Sample"))
    }

    @Test("A long name is cut with an ellipsis and the state stays on the right")
    func longName() {
        let lines = frame(Fixtures.busy, columns: 60)
        #expect(lines[2].hasPrefix("▶ A torrent whose name goes on"))
        #expect(lines[2].contains("…"))
        #expect(lines[2].hasSuffix(" downloading"))
        #expect(TextWidth.of(lines[2]) == 60)
    }

    @Test("Names from the network are printed clean: wide characters measured, escapes neutralized")
    func unicodeName() {
        let lines = frame(Fixtures.busy, rows: 60, columns: 80)
        let name = lines.first { $0.contains("Ünïcødé") }!
        #expect(name.contains("ファイル 🎬 e\u{301}?[2J"))
        #expect(TextWidth.of(name) == 80)
        #expect(name.hasSuffix("seeding"))
    }

    @Test("ASCII glyphs on a terminal that is not UTF-8")
    func asciiGlyphs() {
        let lines = frame(Fixtures.document([Fixtures.torrent("x", progress: 0.5, map: "#>-.+")]), columns: 60,
                          glyphs: .ascii)
        let detail = frame(Fixtures.busy, ViewState(mode: .detail, selected: String(repeating: "d", count: 40)),
                           columns: 60, glyphs: .ascii)
        // All but the torrent named in Unicode.
        for line in lines + detail + frame(nil, glyphs: .ascii) + frame(Fixtures.busy, columns: 30, glyphs: .ascii)
            where !line.contains("Ün") {
            #expect(line.unicodeScalars.allSatisfy { $0.isASCII }, "\(line)")
        }
        #expect(lines[3].hasPrefix("  [#####"))
        #expect(lines[4].hasPrefix("   #") && lines[4].hasSuffix("+"))
        #expect([">", "-", "."].allSatisfy { lines[4].contains($0) })
    }

    @Test("The selected torrent stays visible when the list is taller than the screen")
    func scrollsToSelection() {
        let torrents = (0..<10).map { Fixtures.torrent("torrent \($0)", hash: Character(String($0))) }
        let document = Fixtures.document(torrents)
        let top = frame(document, rows: 20)
        #expect(top.contains { $0.hasPrefix("▶ torrent 0") })
        #expect(top.contains { $0.contains("↓ 8 more") })  // the third partly shown
        let state = ViewState(selected: String(repeating: "7", count: 40))
        let lower = frame(document, state, rows: 20)
        #expect(lower.contains { $0.hasPrefix("▶ torrent 7") })
        #expect(lower.contains { $0.contains("↑ 6 more") || $0.contains("↑ 5 more") })
        #expect(!lower.contains { $0.hasPrefix("  torrent 0") })
    }

    @Test("The detail view lists the peers: address, client, rates, share, transport, source, flags")
    func detailPeers() {
        let document = Fixtures.document([Fixtures.torrent("Sample", peers: [
            Fixtures.peer("127.0.0.1:6881", client: "libtorrent 2.0.8", down: 1000, source: "tracker"),
            Fixtures.peer("[::1]:51413", client: "Transmission 4.0", down: 5000, up: 300, source: "pex", progress: 0.5,
                          peerChoking: true, amChoking: false),
            Fixtures.peer("127.0.0.2:7000", client: nil, source: nil, incoming: true, progress: 0),
        ], trackers: [["url": "udp://127.0.0.1:6969", "tier": 0, "peersReceived": 3]])])
        let state = ViewState(mode: .detail, selected: String(repeating: "a", count: 40))
        let lines = frame(document, state, columns: 120)
        #expect(lines[0].hasPrefix(" torrentfs status /mnt/t › Sample"))
        let header = lines.firstIndex { $0.hasPrefix("  ADDRESS") }!
        #expect(lines[header].split(separator: " ") == ["ADDRESS", "CLIENT", "DOWN", "UP", "HAVE", "TRANSPORT", "SOURCE",
                                                         "FLAGS"])
        let rows = lines[(header + 1)...(header + 3)].map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        // Busiest first.
        #expect(rows[0] == ["[::1]:51413", "Transmission", "4.0", "4.9", "KiB/s", "300", "B/s", "50%", "tcp", "pex", ".dUS"]
                || rows[0] == ["[::1]:51413", "Transmission", "4.0", "4.9", "KiB/s", "300", "B/s", "50%", "tcp", "pex", ".dU."])
        #expect(rows[1] == ["127.0.0.1:6881", "libtorrent", "2.0.8", "1000", "B/s", "0", "B/s", "100%", "tcp", "tracker",
                            ".DuS"])
        #expect(rows[2] == ["127.0.0.2:7000", "-", "0", "B/s", "0", "B/s", "0%", "tcp", "incoming", "IDu."])
        #expect(lines.contains { $0.contains("tracker udp://127.0.0.1:6969") })
        #expect(lines.contains { $0.hasPrefix("  info hash aaaa") })
        #expect(lines.contains { $0.contains("flags: I incoming") })
        #expect(lines.contains { $0.contains("known 5: tracker 4, pex 1") })
    }

    @Test("A narrow detail view drops the least useful columns, never the address, rate or flags")
    func narrowDetail() {
        let state = ViewState(mode: .detail, selected: String(repeating: "d", count: 40))
        let wide = frame(Fixtures.busy, state, columns: 120).first { $0.hasPrefix("  ADDRESS") }!
        let middle = frame(Fixtures.busy, state, columns: 90).first { $0.hasPrefix("  ADDRESS") }!
        let narrow = frame(Fixtures.busy, state, columns: 50).first { $0.hasPrefix("  ADDRESS") }!
        #expect(wide.contains("SOURCE") && wide.contains("CLIENT") && wide.contains("TRANSPORT"))
        #expect(middle.split(separator: " ") == ["ADDRESS", "CLIENT", "DOWN", "UP", "HAVE", "SOURCE", "FLAGS"])
        #expect(!narrow.contains("SOURCE") && !narrow.contains("CLIENT"))
        #expect(narrow.contains("DOWN") && narrow.contains("FLAGS"))
    }

    @Test("Scrolling the peer list: the busiest first, then further down, bounded")
    func detailScroll() {
        let document = Fixtures.busy
        var state = ViewState(mode: .detail, selected: String(repeating: "d", count: 40))
        let size = TerminalSize(rows: 24, columns: 100)
        let first = frame(document, state, rows: 24).first { $0.hasPrefix("  10.0.") }!
        #expect(first.hasPrefix("  10.0.3.39:6920"))
        #expect(frame(document, state, rows: 24).contains { $0.contains("more (↑↓, PgUp/PgDn)") })
        let page = view.peerRows(document, state: state, size: size)
        #expect(state.handle(.pageDown, document: document, pageSize: page) == .redraw)
        let next = frame(document, state, rows: 24).first { $0.hasPrefix("  10.0.") }!
        #expect(next.hasPrefix("  10.0.\((39 - page) / 10).\(39 - page):"), "\(page): \(next)")
        for _ in 0..<20 { _ = state.handle(.pageDown, document: document, pageSize: page) }
        let last = frame(document, state, rows: 24)
        #expect(last.contains { $0.hasPrefix("  10.0.0.0:6881") })
        #expect(last.contains { $0.contains("↑") && $0.contains("more") })
    }

    @Test("Before the first status, with no torrents, with an error reading it")
    func emptyStates() {
        #expect(frame(nil).contains("  reading the status…"))
        #expect(frame(Fixtures.document([])).contains("  no torrents"))
        let lines = frame(Fixtures.document([]), rows: 10, message: "cannot read /mnt/t/.status")
        #expect(lines[8] == " cannot read /mnt/t/.status")
        #expect(lines[9].hasPrefix(" q quit"))
        #expect(frame(Fixtures.busy, rows: 30)[28] == " last refused .add: line 1: not a magnet link")
    }

    @Test("A torrent's error is shown in red under it")
    func torrentError() {
        let lines = view.render(Fixtures.busy, history: RateHistory(),
                                state: ViewState(selected: String(repeating: "d", count: 40)),
                                size: TerminalSize(rows: 50, columns: 100))
        let error = lines.first { $0.text.contains("No space left") }!
        #expect(error.spans.map(\.style) == [.bad])
    }
}
