import TorrentEngine

/// The peer table of the detail view: columns that fit the width (the least useful
/// dropped first on a narrow terminal), busiest peers first.
struct PeerTable {
    struct Column {
        var title: String
        var width: Int
        var alignRight: Bool
        /// Lower goes first when the table is too wide; nil never goes.
        var dropOrder: Int?
        var value: (TorrentStats.Peer) -> (String, Style)
    }

    let sorted: [TorrentStats.Peer]
    let columns: [Column]
    let glyphs: Glyphs

    init(_ peers: [TorrentStats.Peer], width: Int, glyphs: Glyphs) {
        self.glyphs = glyphs
        sorted = peers.sorted {
            ($0.downloadRate, $0.uploadRate, $1.address) > ($1.downloadRate, $1.uploadRate, $0.address)
        }
        func rate(_ value: Double, _ style: Style) -> (String, Style) { (Format.rate(value), value > 0 ? style : .faint) }
        func column(_ title: String, cap: Int, alignRight: Bool = false, dropOrder: Int?,
                    _ value: @escaping (TorrentStats.Peer) -> (String, Style)) -> Column {
            let widest = peers.map { TextWidth.of(value($0).0) }.max() ?? 0
            return Column(title: title, width: min(cap, max(TextWidth.of(title), widest)), alignRight: alignRight,
                          dropOrder: dropOrder, value: value)
        }
        var columns = [
            column("ADDRESS", cap: 40, dropOrder: nil) { (TextWidth.clean($0.address), .normal) },
            column("CLIENT", cap: 24, dropOrder: 4) { ($0.client.map(TextWidth.clean) ?? "-", .normal) },
            column("DOWN", cap: 11, alignRight: true, dropOrder: nil) { rate($0.downloadRate, .good) },
            column("UP", cap: 11, alignRight: true, dropOrder: 5) { rate($0.uploadRate, .accent) },
            column("HAVE", cap: 4, alignRight: true, dropOrder: 3) {
                (String(Int((min(1, max(0, $0.progress.isFinite ? $0.progress : 0)) * 100).rounded(.down))) + "%", .normal)
            },
            column("TRANSPORT", cap: 10, dropOrder: 1) { (TextWidth.clean($0.transport), .normal) },
            column("SOURCE", cap: 10, dropOrder: 2) {
                (TextWidth.clean($0.source ?? ($0.incoming ? "incoming" : "-")), .normal)
            },
            column("FLAGS", cap: 5, dropOrder: nil) { (PeerTable.flags($0), .normal) },
        ]
        func total(_ columns: [Column]) -> Int { 2 + columns.reduce(0) { $0 + $1.width } + 2 * (columns.count - 1) }
        while total(columns) > width,
              let drop = columns.indices.filter({ columns[$0].dropOrder != nil })
                .min(by: { columns[$0].dropOrder! < columns[$1].dropOrder! }) {
            columns.remove(at: drop)
        }
        self.columns = columns
    }

    /// `I` incoming, `D`/`d` the peer unchokes/chokes us, `U`/`u` we unchoke/choke it, `S` seed.
    static func flags(_ peer: TorrentStats.Peer) -> String {
        (peer.incoming ? "I" : ".") + (peer.peerChoking ? "d" : "D") + (peer.amChoking ? "u" : "U")
            + (peer.progress >= 1 ? "S" : ".")
    }

    var header: Line {
        line(columns.map { ($0.title, Style.strong) })
    }

    func row(_ peer: TorrentStats.Peer) -> Line {
        line(columns.map { $0.value(peer) })
    }

    private func line(_ cells: [(String, Style)]) -> Line {
        var out = Line("  ")
        for (index, (column, cell)) in zip(columns, cells).enumerated() {
            if index > 0 { out.append("  ") }
            out.append(TextWidth.pad(cell.0, to: column.width, alignRight: column.alignRight, ellipsis: glyphs.ellipsis),
                       cell.1)
        }
        return out
    }
}
