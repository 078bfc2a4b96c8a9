import TorrentEngine

/// The detail view: one torrent's figures, then its peers as a table.
extension StatusView {
    func detailBody(_ torrent: TorrentStats, history: RateHistory.Samples, peerOffset: Int, width: Int, rows: Int) -> [Line] {
        let top = detailTop(torrent, history: history, width: width, rows: rows)
        var out = top
        let tableRows = rows - top.count - 2
        guard tableRows > 0 else { return out + [Line()] }
        let table = PeerTable(torrent.peers, width: width, glyphs: glyphs)
        let peers = table.sorted
        let offset = max(0, min(peerOffset, peers.count - tableRows))
        out.append(offset > 0 ? Line("  \(glyphs.up) \(offset) more", .faint) : Line())
        out.append(table.header)
        if peers.isEmpty {
            out.append(Line("  no peers connected", .faint))
            return out
        }
        var shown = Array(peers[offset...].prefix(tableRows))
        let below = peers.count - offset - shown.count
        if below > 0 { shown.removeLast() }
        out += shown.map(table.row)
        if below > 0 {
            out.append(Line("  \(glyphs.down) \(below + 1) more (\(glyphs == .ascii ? "j/k" : "↑↓"), PgUp/PgDn)", .faint))
        } else if out.count < rows {
            out.append(Line("  flags: I incoming  D/d peer unchokes/chokes us  U/u we unchoke/choke it  S seed", .faint))
        }
        return out
    }

    /// Peer rows the detail view has for this torrent at `size` (the page of Page Up / Page Down).
    public func peerRows(_ document: StatusDocument?, state: ViewState, size: TerminalSize) -> Int {
        guard let document, let index = state.selectedIndex(in: document) else { return 1 }
        let rows = size.rows - 3
        let top = detailTop(document.torrents[index], history: RateHistory.Samples(), width: size.columns, rows: rows)
        return max(1, rows - top.count - 2)
    }

    /// The torrent's figures; the optional ones (legend, known peers, trackers, info hash)
    /// only when they leave room for a few peers.
    func detailTop(_ torrent: TorrentStats, history: RateHistory.Samples, width: Int, rows: Int) -> [Line] {
        var essential: [Line] = []
        var status = Line("  ")
        status.append(stateLine(torrent))
        if torrent.totalSize == nil { status.append("  \(glyphs.separator) waiting for the metadata", .faint) }
        essential.append(status)
        let inner = barWidth(torrent, width: width)
        essential.append(progressLine(torrent, inner: inner))
        var map = Line("   ")
        map.append(glyphs.pieceMap(torrent.pieceMap, width: inner))
        essential.append(map)
        essential.append(rateLine(glyphs.down, torrent.downloadRate, total: torrent.downloaded, samples: history.down,
                                  style: .good, width: width))
        essential.append(rateLine(glyphs.up, torrent.uploadRate, total: torrent.uploaded, samples: history.up,
                                  style: .accent, width: width))
        essential.append(Line("  " + connectedSummary(torrent)))
        if let error = torrent.error { essential.append(Line("  error: " + TextWidth.clean(error), .bad)) }

        var optional: [Line] = []
        if !torrent.pieceMap.isEmpty {
            let legend = [(glyphs.verified, "verified", Style.good), (glyphs.partly, "partly", .good),
                          (glyphs.inFlight, "in flight", .busy), (glyphs.wanted, "wanted", .normal),
                          (glyphs.missing, "not wanted", .faint)]
            var line = Line("   ")
            for (glyph, name, style) in legend {
                line.append(glyph, style)
                line.append(" " + name + "  ", .faint)
            }
            optional.append(line)
        }
        var known = Line("  known \(torrent.knownPeers)", .faint)
        if !torrent.knownPeersBySource.isEmpty {
            known.append(": " + Self.counted(Dictionary(torrent.knownPeersBySource.map { (TextWidth.clean($0.key), $0.value) },
                                                        uniquingKeysWith: +)), .faint)
        }
        known.append("  \(glyphs.separator) banned \(torrent.bannedPeers)", torrent.bannedPeers > 0 ? .bad : .faint)
        known.append("  \(glyphs.separator) hash failures \(torrent.hashFailures)", torrent.hashFailures > 0 ? .bad : .faint)
        optional.append(known)
        for tracker in torrent.trackers.prefix(3) {
            var line = Line("  tracker " + TextWidth.clean(tracker.url), .faint)
            var figures: [String] = ["\(tracker.peersReceived) peers"]
            if let seeders = tracker.seeders { figures.append("\(seeders) seeders") }
            if let leechers = tracker.leechers { figures.append("\(leechers) leechers") }
            line.append("  " + figures.joined(separator: ", "), .faint)
            if let error = tracker.lastError { line.append("  " + TextWidth.clean(error), .bad) }
            optional.append(line)
        }
        if torrent.trackers.count > 3 { optional.append(Line("  and \(torrent.trackers.count - 3) more trackers", .faint)) }
        optional.append(Line("  info hash \(TextWidth.clean(torrent.infoHash))", .faint))

        let wantedPeerRows = min(max(1, torrent.peers.count), 3) + 2
        if essential.count + optional.count + wantedPeerRows <= rows { return essential + optional }
        return essential
    }

    func rateLine(_ arrow: String, _ rate: Double, total: Int64, samples: [Double], style: Style, width: Int) -> Line {
        let figure = arrow + " " + TextWidth.pad(Format.rate(rate), to: 11)
        let totalText = "total " + Format.bytes(total)
        let spark = min(RateHistory.defaultCapacity, width - 2 - TextWidth.of(figure) - 2 - 2 - TextWidth.of(totalText))
        var line = Line("  ")
        line.append(figure, style)
        if spark >= 4 { line.append(" " + glyphs.sparkline(samples, width: spark), style) }
        line.append("  " + totalText, .faint)
        return line
    }
}
