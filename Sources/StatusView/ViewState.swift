import TorrentEngine

/// A key the view reacts to (`ANSI.keys` decodes them from the terminal's bytes).
public enum Key: Sendable, Hashable {
    case up, down, left, right, pageUp, pageDown, home, end, enter, escape
    /// Ctrl-C (the terminal does not turn it into SIGINT while the view is up).
    case interrupt
    /// Ctrl-L: repaint everything.
    case repaint
    case character(Character)
}

/// What the user chose to look at: the list of torrents with one selected, or one
/// torrent's details with its peer list scrolled.
public struct ViewState: Sendable, Hashable {
    public enum Mode: Sendable, Hashable { case list, detail }

    public enum Action: Sendable, Hashable {
        case none
        /// Draw again with the new state.
        case redraw
        /// Draw every line again, whatever the terminal is believed to show.
        case repaint
        /// `q`: leave the view.
        case quit
        /// Ctrl-C: leave the view as SIGINT would.
        case interrupt
    }

    public var mode: Mode = .list
    /// The selected torrent's info hash (the first torrent when nil or gone).
    public var selected: String?
    /// The first peer shown in the detail view.
    public var peerOffset = 0

    public init(mode: Mode = .list, selected: String? = nil, peerOffset: Int = 0) {
        self.mode = mode
        self.selected = selected
        self.peerOffset = peerOffset
    }

    /// The selected torrent's index in `document` (0 when the selection is unset or gone).
    public func selectedIndex(in document: StatusDocument) -> Int? {
        guard !document.torrents.isEmpty else { return nil }
        return document.torrents.firstIndex { $0.infoHash == selected } ?? 0
    }

    /// Applies `key`; `pageSize` is how many peer rows the detail view shows.
    public mutating func handle(_ key: Key, document: StatusDocument?, pageSize: Int = 10) -> Action {
        switch key {
        case .character("q"), .character("Q"): return .quit
        case .interrupt: return .interrupt
        case .repaint: return .repaint
        default: break
        }
        guard let document, let index = selectedIndex(in: document) else { return .none }
        let torrents = document.torrents
        switch mode {
        case .list:
            switch key {
            case .up, .character("k"): select(max(0, index - 1), in: torrents)
            case .down, .character("j"): select(min(torrents.count - 1, index + 1), in: torrents)
            case .home, .character("g"): select(0, in: torrents)
            case .end, .character("G"): select(torrents.count - 1, in: torrents)
            case .enter, .right, .character("d"), .character("l"):
                select(index, in: torrents)
                mode = .detail
                peerOffset = 0
            default: return .none
            }
        case .detail:
            let page = max(1, pageSize)
            let last = max(0, torrents[index].peers.count - page)
            switch key {
            case .escape, .left, .character("b"), .character("h"), .character("d"): mode = .list
            case .up, .character("k"): peerOffset = max(0, min(last, peerOffset) - 1)
            case .down, .character("j"): peerOffset = min(last, peerOffset + 1)
            case .pageUp: peerOffset = max(0, min(last, peerOffset) - page)
            case .pageDown, .character(" "): peerOffset = min(last, peerOffset + page)
            case .home, .character("g"): peerOffset = 0
            case .end, .character("G"): peerOffset = last
            case .character("n"), .character("\t"):
                select((index + 1) % torrents.count, in: torrents)
                peerOffset = 0
            case .character("p"):
                select((index + torrents.count - 1) % torrents.count, in: torrents)
                peerOffset = 0
            default: return .none
            }
        }
        return .redraw
    }

    private mutating func select(_ index: Int, in torrents: [TorrentStats]) {
        selected = torrents[index].infoHash
    }
}
