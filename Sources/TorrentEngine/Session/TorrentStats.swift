import BitTorrent

/// A snapshot of one torrent for the CLI and the filesystem.
public struct TorrentStats: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable {
        case checking, fetchingMetadata = "fetching metadata", downloading, idle, seeding, paused, error
    }

    public struct Peer: Sendable, Codable, Hashable {
        public var address: String
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
    public var state: State
    /// Fraction of wanted bytes verified (0…1); 0 until metadata is known.
    public var progress: Double
    public var totalSize: Int64?
    public var verifiedBytes: Int64
    public var downloaded: Int64
    public var uploaded: Int64
    public var downloadRate: Double
    public var uploadRate: Double
    /// Seconds to completion at the current rate, when it can be estimated.
    public var eta: Double?
    public var peers: [Peer]
    public var knownPeers: Int
    public var hashFailures: Int
    public var bannedPeers: Int
    public var trackers: [TrackerStatus]
    public var error: String?
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
