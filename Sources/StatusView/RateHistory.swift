import TorrentEngine

/// The last rates of each torrent and of the whole session, one sample per status read
/// (the view reads once a second), for the sparklines.
public struct RateHistory: Sendable, Hashable {
    /// Samples kept: about a minute at one a second.
    public static let defaultCapacity = 60

    public struct Samples: Sendable, Hashable {
        public var down: [Double] = []
        public var up: [Double] = []

        mutating func add(down: Double, up: Double, capacity: Int) {
            self.down.append(down)
            self.up.append(up)
            if self.down.count > capacity { self.down.removeFirst(self.down.count - capacity) }
            if self.up.count > capacity { self.up.removeFirst(self.up.count - capacity) }
        }
    }

    public let capacity: Int
    /// By info hash.
    public private(set) var torrents: [String: Samples] = [:]
    /// The sums over all torrents.
    public private(set) var total = Samples()

    public init(capacity: Int = RateHistory.defaultCapacity) {
        self.capacity = max(1, capacity)
    }

    /// Adds a sample of every torrent in `document`; torrents no longer in it are forgotten.
    public mutating func record(_ document: StatusDocument) {
        var next: [String: Samples] = [:]
        for torrent in document.torrents {
            var samples = torrents[torrent.infoHash] ?? Samples()
            samples.add(down: torrent.downloadRate, up: torrent.uploadRate, capacity: capacity)
            next[torrent.infoHash] = samples
        }
        torrents = next
        total.add(down: document.torrents.reduce(0) { $0 + $1.downloadRate },
                  up: document.torrents.reduce(0) { $0 + $1.uploadRate }, capacity: capacity)
    }

    public subscript(infoHash: String) -> Samples { torrents[infoHash] ?? Samples() }
}
