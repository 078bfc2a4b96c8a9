import TorrentEngine

extension StatusDocument {
    var withoutCache: StatusDocument {
        var document = self
        document.cache = nil
        return document
    }
}

/// A terminal's size in character cells.
public struct TerminalSize: Sendable, Hashable {
    public var rows: Int
    public var columns: Int

    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
    }
}

/// The live status view as lines: a title bar, the torrents (list) or one torrent with its
/// peers (detail), a message line, and a key bar. Pure: the same document, history, state
/// and size give the same frame, at most `size.rows` lines, none wider than `size.columns`.
public struct StatusView: Sendable {
    /// The title bar's text, e.g. `torrentfs status /mnt/t`.
    public var title: String
    public var glyphs: Glyphs
    /// Shown when there are no torrents.
    public var emptyHint: String

    public init(title: String, glyphs: Glyphs = .unicode, emptyHint: String = "no torrents") {
        self.title = title
        self.glyphs = glyphs
        self.emptyHint = emptyHint
    }

    /// The frame. `document` is nil until a status could be read; `message` (an error
    /// reading it, for instance) takes the line above the key bar.
    public func render(_ document: StatusDocument?, history: RateHistory, state: ViewState, size: TerminalSize,
                       message: String? = nil) -> [Line] {
        let width = size.columns
        guard size.rows > 0, width > 0 else { return [] }
        let detail = state.mode == .detail ? document.flatMap { d in state.selectedIndex(in: d).map { d.torrents[$0] } } : nil
        var lines = [titleBar(document, torrent: detail, width: width)]
        guard size.rows > 1 else { return lines }
        let note = message.map { ($0, Style.bad) }
            ?? document?.addErrors.last.map { ("last refused .add: " + $0.error, Style.faint) }
        let bodyRows = size.rows - 2 - (note != nil && size.rows > 3 ? 1 : 0)
        var body: [Line]
        if let detail {
            body = detailBody(detail, history: history[detail.infoHash], peerOffset: state.peerOffset,
                              width: width, rows: bodyRows)
        } else if let document, !document.torrents.isEmpty {
            body = listBody(document, history: history, selected: state.selectedIndex(in: document) ?? 0,
                            width: width, rows: bodyRows)
        } else {
            body = [Line(), Line("  " + (document == nil ? "reading the status" + glyphs.ellipsis : emptyHint), .faint)]
        }
        body = Array(body.prefix(max(0, bodyRows)))
        lines += body.map { $0.fitted(to: width, ellipsis: glyphs.ellipsis) }
        lines += Array(repeating: Line(), count: max(0, bodyRows - body.count))
        if let note, size.rows > 3 {
            lines.append(Line(" " + TextWidth.clean(note.0), note.1).fitted(to: width, ellipsis: glyphs.ellipsis))
        }
        lines.append(keyBar(detail: detail != nil, width: width))
        return Array(lines.prefix(size.rows))
    }

    // MARK: Bars

    func titleBar(_ document: StatusDocument?, torrent: TorrentStats?, width: Int) -> Line {
        var left = Line(" " + TextWidth.clean(title), .bar)
        if let torrent { left.append(" \(glyphs.crumb) " + TextWidth.clean(torrent.folder ?? torrent.name), .bar) }
        var right = Line()
        if let document {
            let down = document.torrents.reduce(0) { $0 + $1.downloadRate }
            let up = document.torrents.reduce(0) { $0 + $1.uploadRate }
            let count = document.torrents.count
            let rates = "\(glyphs.down) \(Format.rate(down))  \(glyphs.up) \(Format.rate(up)) "
            let full = "\(glyphs.down) \(Format.rate(down))  \(glyphs.up) \(Format.rate(up))  "
                + "\(count) torrent\(count == 1 ? "" : "s")  port \(document.listenPort) "
            // The torrent count and port go first when the title would be cut.
            right = Line(left.width + 1 + TextWidth.of(full) <= width ? full : rates, .bar)
        }
        return Line.justified(left, right, width: width, minLeft: 12, fill: .bar, ellipsis: glyphs.ellipsis)
            .padded(to: width, style: .bar, ellipsis: glyphs.ellipsis)
    }

    func keyBar(detail: Bool, width: Int) -> Line {
        let ascii = glyphs == .ascii
        let text = detail
            ? " q quit  b back  \(ascii ? "j/k" : "↑↓") scroll peers  n next torrent"
            : " q quit  \(ascii ? "j/k" : "↑↓") select  \(ascii ? "enter" : "⏎") details"
        return Line(text, .bar).padded(to: width, style: .bar, ellipsis: glyphs.ellipsis)
    }

    // MARK: List

    func listBody(_ document: StatusDocument, history: RateHistory, selected: Int, width: Int, rows: Int) -> [Line] {
        if let cache = document.cache, rows > 1 {
            return [cacheLine(cache, width: width)]
                + listBody(document.withoutCache, history: history, selected: selected, width: width, rows: rows - 1)
        }
        let blocks = document.torrents.enumerated().map { index, torrent in
            block(torrent, history: history[torrent.infoHash], selected: index == selected, width: width)
        }
        // Blocks from the first one on, or from later ones when the selected would not fit;
        // a line is kept for "n more" while blocks follow.
        func height(_ range: ClosedRange<Int>) -> Int { range.reduce(0) { $0 + blocks[$1].count + 1 } }
        func room(after index: Int) -> Int { index < blocks.count - 1 ? rows - 1 : rows }
        var first = 0
        while first < selected && height(first...selected) > room(after: selected) { first += 1 }
        var out: [Line] = []
        var shown = 0
        for (index, block) in blocks.enumerated().dropFirst(first) {
            guard out.count + 1 + block.count <= room(after: index) else { break }
            out += [Line()] + block
            shown += 1
        }
        if shown == 0 { return Array(blocks[first].prefix(max(0, rows))) }  // not even the selected one fits
        if first > 0 { out[0] = Line("  \(glyphs.up) \(first) more", .faint) }
        let hidden = blocks.count - first - shown
        if hidden > 0 {
            let room = rows - out.count - 1
            if room >= 2 { out += [Line()] + blocks[first + shown].prefix(room - 1) }
            out.append(Line("  \(glyphs.down) \(hidden) more", .faint))
        }
        return out
    }

    /// The bounded cache (`cache_size`): verified data on disk against the limit.
    func cacheLine(_ cache: CacheStatus, width: Int) -> Line {
        let fraction = cache.limit > 0 ? Double(cache.size) / Double(cache.limit) : 0
        let figures = "\(Format.bytes(cache.size)) / \(Format.bytes(cache.limit))  \(glyphs.separator) "
            + "\(cache.evictions) evicted"
        var line = Line("  cache [")
        line.append(glyphs.bar(fraction, width: min(20, max(4, width - 12 - TextWidth.of(figures)))))
        line.append("] " + figures)
        return line
    }

    /// One torrent in the list: name and state, progress bar, piece map, rates, peers.
    func block(_ torrent: TorrentStats, history: RateHistory.Samples, selected: Bool, width: Int) -> [Line] {
        var name = Line(selected ? glyphs.marker + " " : "  ", .strong)
        name.append(TextWidth.clean(torrent.folder ?? torrent.name), selected ? .selected : .strong)
        var lines = [Line.justified(name, stateLine(torrent), width: width, minLeft: 12, ellipsis: glyphs.ellipsis)]
        let inner = barWidth(torrent, width: width)
        lines.append(progressLine(torrent, inner: inner))
        // Blank until the pieces are known: every block keeps its height.
        var map = Line("   ")
        map.append(glyphs.pieceMap(torrent.pieceMap, width: inner))
        lines.append(map)
        lines.append(ratesLine(torrent, history: history, width: width))
        lines.append(peersLine(torrent))
        if let error = torrent.error { lines.append(Line("  error: " + TextWidth.clean(error), .bad)) }
        return lines
    }

    func stateLine(_ torrent: TorrentStats) -> Line {
        let style: Style
        switch torrent.state {
        case .seeding: style = .good
        case .downloading, .checking, .fetchingMetadata: style = .busy
        case .idle: style = .faint
        case .paused, .error: style = .bad
        }
        return Line(torrent.state.rawValue, style)
    }

    /// Cells of the progress bar (and piece map) at `width`: what the figures after it leave.
    func barWidth(_ torrent: TorrentStats, width: Int) -> Int {
        max(min(10, width - 4), width - 5 - TextWidth.of(progressFigures(torrent)))
    }

    func progressFigures(_ torrent: TorrentStats) -> String {
        var text = Format.percent(torrent.progress)
        if let total = torrent.totalSize {
            text += "  \(Format.bytes(torrent.verifiedBytes)) / \(Format.bytes(total))"
            if torrent.wantedBytes > 0 && torrent.wantedBytes < total && torrent.verifiedWantedBytes < torrent.wantedBytes {
                text += " (wanted \(Format.percent(torrent.wantedProgress)))"
            }
        }
        if torrent.state == .downloading || torrent.state == .fetchingMetadata {
            text += "  ETA " + (torrent.eta.map { Format.duration($0) } ?? "-")
        }
        return text
    }

    func progressLine(_ torrent: TorrentStats, inner: Int) -> Line {
        var line = Line("  [")
        line.append(glyphs.bar(torrent.progress, width: inner))
        line.append("] ")
        line.append(progressFigures(torrent))
        return line
    }

    func ratesLine(_ torrent: TorrentStats, history: RateHistory.Samples, width: Int) -> Line {
        let down = glyphs.down + " " + TextWidth.pad(Format.rate(torrent.downloadRate), to: 11)
        let up = glyphs.up + " " + TextWidth.pad(Format.rate(torrent.uploadRate), to: 11)
        let spark = min(RateHistory.defaultCapacity, (width - 2 - 3 - 2 - TextWidth.of(down) - TextWidth.of(up)) / 2)
        var line = Line("  ")
        line.append(down, .good)
        if spark >= 4 { line.append(" " + glyphs.sparkline(history.down, width: spark), .good) }
        line.append("   ")
        line.append(up, .accent)
        if spark >= 4 { line.append(" " + glyphs.sparkline(history.up, width: spark), .accent) }
        return line
    }

    func peersLine(_ torrent: TorrentStats) -> Line {
        var line = Line("  " + connectedSummary(torrent))
        line.append("  \(glyphs.separator) known \(torrent.knownPeers)", .faint)
        if torrent.bannedPeers > 0 { line.append("  \(glyphs.separator) banned \(torrent.bannedPeers)", .bad) }
        if torrent.hashFailures > 0 { line.append("  \(glyphs.separator) hash failures \(torrent.hashFailures)", .bad) }
        return line
    }

    /// `peers 3: tracker 2, incoming 1 · tcp 3`.
    func connectedSummary(_ torrent: TorrentStats) -> String {
        let count = torrent.peers.count
        var text = "\(count) peer\(count == 1 ? "" : "s")"
        guard count > 0 else { return text }
        text += ": " + Self.counted(torrent.peers.map { $0.source ?? ($0.incoming ? "incoming" : "unknown") })
        text += " \(glyphs.separator) " + Self.counted(torrent.peers.map(\.transport))
        return text
    }

    /// `tracker 2, pex 1`: the most frequent first.
    static func counted(_ names: [String]) -> String {
        counted(Dictionary(names.map { (TextWidth.clean($0), 1) }, uniquingKeysWith: +))
    }

    static func counted(_ counts: [String: Int]) -> String {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}
