import BitTorrent

/// The status of a session: what `.status` holds, `torrentfs status` shows and its
/// `--json` prints. One schema, produced by the engine; front ends fill their own fields
/// (`folder`, `addErrors`).
public struct StatusDocument: Sendable, Codable, Hashable {
    /// TCP and UDP port the session listens on.
    public var listenPort: Int
    public var torrents: [TorrentStats]
    /// Inputs the mount's `.add` refused, newest last.
    public var addErrors: [RefusedInput]
    /// The bounded cache (`cache_size`); nil when the cache is not bounded.
    public var cache: CacheStatus?
    /// Local service discovery; nil when it is off.
    public var lsd: LSDStatus?
    /// The mainline DHT; nil when it is off.
    public var dht: DHTStatus?
    /// Port mapping on the gateway; nil when it is off or there is no gateway.
    public var portMapping: PortMappingStatus?

    public struct RefusedInput: Sendable, Codable, Hashable {
        /// ISO 8601.
        public var time: String
        /// What was written (shortened).
        public var input: String
        public var error: String

        public init(time: String, input: String, error: String) {
            self.time = time
            self.input = input
            self.error = error
        }
    }

    public init(listenPort: Int, torrents: [TorrentStats], addErrors: [RefusedInput] = []) {
        self.listenPort = listenPort
        self.torrents = torrents
        self.addErrors = addErrors
    }
}

/// A snapshot of one torrent, part of the `StatusDocument`.
public struct TorrentStats: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable {
        case checking, fetchingMetadata = "fetching metadata", downloading, idle, seeding, paused, error
    }

    public struct Peer: Sendable, Codable, Hashable {
        public var address: String
        /// "tcp" or "utp" (web seeds: "http").
        public var transport: String
        /// Where the address came from ("tracker", "pex", "incoming", …).
        public var source: String?
        public var client: String?
        public var incoming: Bool
        public var downloadRate: Double
        public var uploadRate: Double
        public var downloaded: Int64
        public var uploaded: Int64
        public var peerChoking: Bool
        public var amChoking: Bool
        public var progress: Double
    }

    public var name: String
    public var infoHash: String
    /// A magnet link of the torrent (its trackers included).
    public var magnet: String
    /// The torrent's folder in the mount root (set by the mount; nil elsewhere).
    public var folder: String?
    public var state: State
    /// Bytes of the whole torrent; nil until metadata is known.
    public var totalSize: Int64?
    /// Verified bytes of the whole torrent.
    public var verifiedBytes: Int64
    /// `verifiedBytes / totalSize` (0…1); 0 until metadata is known.
    public var progress: Double
    /// Bytes of the pieces wanted: those of selected files plus those a reader waits for.
    public var wantedBytes: Int64
    /// Verified bytes among the wanted pieces.
    public var verifiedWantedBytes: Int64
    /// `verifiedWantedBytes / wantedBytes` (0…1); 1 when nothing is wanted.
    public var wantedProgress: Double
    public var downloaded: Int64
    public var uploaded: Int64
    public var downloadRate: Double
    public var uploadRate: Double
    /// Seconds until the pieces being fetched are here at the current rate (0 when none
    /// is missing), when it can be estimated.
    public var eta: Double?
    public var peers: [Peer]
    public var knownPeers: Int
    public var hashFailures: Int
    public var bannedPeers: Int
    /// Banned addresses by reason ("bad data", "protocol violation", …).
    public var bansByReason: [String: Int]
    /// Known addresses by where they came from ("tracker", "pex", "magnet", …).
    public var knownPeersBySource: [String: Int]
    public var trackers: [TrackerStatus]
    /// The pieces at a glance: `PiecePicker.MapCell` characters, one per run of pieces
    /// (at most `TorrentStats.mapCells`); empty until metadata is known.
    public var pieceMap: String
    public var error: String?

    /// Cells of `pieceMap`.
    public static let mapCells = 120
}

/// What we last heard from a tracker.
public struct TrackerStatus: Sendable, Codable, Hashable {
    public var url: String
    public var tier: Int
    public var peersReceived: Int
    public var seeders: Int?
    public var leechers: Int?
    /// Completed downloads the tracker counted (from a scrape).
    public var completed: Int?
    public var lastError: String?
    public var lastWarning: String?
    public var nextAnnounceIn: Double?

    public init(url: String, tier: Int) {
        self.url = url
        self.tier = tier
        peersReceived = 0
    }
}
