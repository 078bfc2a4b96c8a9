import BitTorrent

/// Settings of a session. Defaults are safe for a desktop: any port, modest limits.
public struct SessionConfiguration: Sendable {
    /// TCP port to listen on; 0 picks a free one.
    public var listenPort: Int = 0
    /// Addresses to listen on. The IPv6 wildcard comes first: it is dual-stack on Linux
    /// and then takes IPv4 too (the IPv4 bind that follows fails harmlessly); on a host
    /// without IPv6 the IPv4 wildcard does the job.
    public var listenHosts: [String] = ["::", "0.0.0.0"]
    /// Where torrent data and resume files live.
    public var dataDirectory: String
    /// Where resume files live (defaults to `dataDirectory/.torrentfs`).
    public var stateDirectory: String?
    /// Most peer connections in all.
    public var maxConnections = 200
    /// Most peer connections per torrent.
    public var maxConnectionsPerTorrent = 50
    /// Bytes per second, nil = unlimited.
    public var downloadLimit: Int?
    public var uploadLimit: Int?
    /// Upload slots per torrent (tit-for-tat).
    public var unchokeSlots = 4
    /// Threads for hashing and disk I/O.
    public var diskThreads = max(2, System.coreCount)
    /// The bounded cache: verified bytes kept on disk across all torrents stay under this
    /// (least recently read pieces evicted first); nil = unbounded.
    public var cacheLimit: Int64?
    /// Local service discovery (BEP 14): announce public torrents to the LAN's multicast
    /// groups and take peers from others' announces. Off here; the front ends turn it on.
    public var localDiscovery = false
    /// Map the listen port on the IPv4 default gateway with NAT-PMP (RFC 6886).
    public var natPMP = false
    /// Map it with UPnP IGD (SSDP, SOAP) when NAT-PMP is off or fails.
    public var upnp = false
    /// The gateway to ask instead of the default route's.
    public var portMappingGateway: String?
    /// Seconds a mapping (NAT-PMP or UPnP) is asked for (renewed halfway through).
    public var portMappingLease = 7200
    /// uTP (BEP 29) on the UDP port: incoming uTP connections accepted, outgoing ones
    /// raced over uTP and TCP (uTP 25 ms ahead; see `DialRace`). Off: TCP only.
    public var utp = true
    /// Message stream encryption (MSE/PE) of peer connections; see `EncryptionPolicy`.
    public var encryption = EncryptionPolicy.prefer
    /// Blocklist: peers in these ranges are never contacted or accepted.
    /// The mainline DHT (BEP 5) on the UDP port, for public torrents. Off here; the front
    /// ends turn it on.
    public var dht = false
    /// DHT bootstrap routers, `HOST:PORT`, asked while the routing table is nearly empty.
    public var dhtRouters = SessionConfiguration.defaultDHTRouters
    /// BEP 43 read-only DHT node: it asks, never answers, and stays out of others' tables.
    public var dhtReadOnly = false
    public var blocklist = Blocklist()
    public var peerID = PeerID.generatePeerID()
    /// Client name sent in the extension handshake.
    public var clientName = "torrentfs 0.1.0"
    /// Makes each torrent's storage from its data directory and info dictionary; nil:
    /// files in their real layout (`FileStorage`). Tests inject memory or faulty storage.
    public var makeStorage: (@Sendable (_ root: String, _ info: InfoDictionary) -> PieceStorage)?

    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }

    /// The usual public routers.
    public static let defaultDHTRouters = ["router.bittorrent.com:6881", "dht.transmissionbt.com:6881",
                                           "router.utorrent.com:6881", "dht.libtorrent.org:25401"]

    var resolvedStateDirectory: String { stateDirectory ?? dataDirectory + "/.torrentfs" }
}

/// Where a torrent comes from.
public enum TorrentSource: Sendable {
    case metainfo(Metainfo)
    case magnet(MagnetLink)

    public var infoHash: InfoHash {
        switch self {
        case .metainfo(let metainfo): return metainfo.infoHash
        case .magnet(let magnet): return magnet.infoHash
        }
    }
}

/// Per-torrent options chosen when adding.
public struct TorrentOptions: Sendable {
    /// Peers to contact in addition to what discovery finds.
    public var peers: [PeerAddress] = []
    /// Download pieces in order instead of rarest first.
    public var sequential = false
    /// Per-torrent rate limits in bytes per second.
    public var downloadLimit: Int?
    public var uploadLimit: Int?
    /// Where this torrent's data lives (defaults to the session's data directory).
    public var dataDirectory: String?
    /// Hash every piece already on disk instead of trusting resume data.
    public var forceRecheck = false
    /// Files to download (indices into the visible file list, BEP 53 `so` ranges); nil = all.
    /// Pieces of other files are not fetched unless they share a piece with a wanted file.
    public var selectedFiles: [ClosedRange<Int>]?
    /// Stop uploading once this many times the verified bytes were uploaded (nil = never;
    /// 0 = do not upload at all).
    public var seedRatio: Double?
    /// A failed write (a full disk) fails the torrent instead of pausing it until the
    /// write succeeds (`torrentfs download` exits with the error; a mount waits).
    public var stopOnStorageError = false

    public init() {}
}
