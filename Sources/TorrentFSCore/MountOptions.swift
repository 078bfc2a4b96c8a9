import TorrentEngine
#if canImport(Glibc)
import Glibc
#endif

/// Settings of a mount, from `-o` options (docs/mount-spec.md lists them).
public struct MountOptions: Sendable, Equatable {
    /// State and data directory.
    public var dataDirectory: String
    /// TCP listen port; nil = 6881, or any free port if that one is taken.
    public var listenPort: Int?
    public var downloadLimit: Int?
    public var uploadLimit: Int?
    public var maxConnections = 200
    public var maxPeers = 50
    /// Largest readahead window per open file, in bytes (0 = none).
    public var readahead = 32 << 20
    /// `cache_size=SIZE`: verified data kept on disk across all torrents stays under it
    /// (least recently read pieces evicted first); nil = unbounded.
    public var cacheSize: Int64?
    /// The readahead window a reader gets: `readahead`, shrunk to a quarter of a bounded
    /// cache so the windows of a few readers fit inside it.
    public var effectiveReadahead: Int { MountOptions.window(readahead, cacheSize: cacheSize) }

    public static func window(_ readahead: Int, cacheSize: Int64?) -> Int {
        guard let cacheSize else { return readahead }
        return Int(min(Int64(readahead), cacheSize / 4))
    }
    /// Seconds a read may wait for its data before failing with EIO (nil = forever).
    public var readTimeout: Double?
    /// Seconds a listing waits for a magnet's metadata.
    public var metadataTimeout: Double = 60
    /// Download every file of every torrent, not only what is read.
    public var fetchAll = false
    /// `rmdir` of a torrent folder deletes its data too.
    public var removeData = false
    public var allowOther = false
    public var debug = false
    /// Stop uploading a torrent once it uploaded this many times its verified bytes
    /// (nil = seed without end; 0 = never upload).
    public var seedRatio: Double?
    /// Daemon log file (nil = `DATA/torrentfs.log`).
    public var logFile: String?
    /// `http=ADDR:PORT`: serve the mount's torrents over HTTP there too (nil = no server).
    public var http: (host: String, port: Int)? { httpAddress.flatMap(MountOptions.hostAndPort) }
    /// `http=` as given (kept as text so the options stay `Equatable`).
    public var httpAddress: String?
    /// `http_host=NAME` (repeatable): names accepted in `Host` besides `localhost`.
    public var httpHosts: [String] = []
    /// `http_add`: `POST /` adds torrents (refused otherwise).
    public var httpAdd = false
    /// `blocklist=FILE`: peers in its ranges are never contacted or accepted (P2P
    /// `name:a.b.c.d-e.f.g.h` or CIDR lines, as `torrentfs download --blocklist`).
    public var blocklistFile: String?
    /// `lsd=on|off`: local service discovery (BEP 14); on by default.
    public var lsd = true
    /// `natpmp=on|off`: map the listen port on the gateway with NAT-PMP; on by default.
    public var natpmp = true
    /// `upnp=on|off`: map it with UPnP IGD when NAT-PMP is off or fails; on by default.
    public var upnp = true
    /// `dht=on|off`: the mainline DHT for public torrents; on by default.
    public var dht = true
    /// `utp=on|off`: uTP (BEP 29) beside TCP; on by default (off: TCP only).
    public var utp = true
    /// `dht_router=HOST:PORT` (repeatable): bootstrap routers replacing the default ones.
    public var dhtRouters: [String] = []
    /// `natpmp_lease=SECONDS`: lifetime asked for each mapping, NAT-PMP or UPnP (renewed
    /// halfway); 7200.
    public var natpmpLease = 7200
    /// `encryption=prefer|require|off`: message stream encryption of peer connections.
    public var encryption = EncryptionPolicy.prefer

    public init(dataDirectory: String = MountOptions.defaultDataDirectory()) {
        self.dataDirectory = dataDirectory
    }

    public var resolvedLogFile: String { logFile ?? dataDirectory + "/torrentfs.log" }

    /// `/var/lib/torrentfs` for root; `$XDG_DATA_HOME/torrentfs` or `~/.local/share/torrentfs`.
    public static func defaultDataDirectory() -> String {
        if getuid() == 0 { return "/var/lib/torrentfs" }
        if let xdg = getenv("XDG_DATA_HOME").map({ String(cString: $0) }), xdg.hasPrefix("/") { return xdg + "/torrentfs" }
        let home = getenv("HOME").map { String(cString: $0) } ?? "/tmp"
        return home + "/.local/share/torrentfs"
    }

    /// The smallest `cache_size`: a few pieces of a typical torrent.
    public static let minimumCache: Int64 = 4 << 20

    /// Options of mount(8) and fstab that mean nothing here.
    static let ignored: Set<String> = ["rw", "ro", "defaults", "auto", "noauto", "user", "nouser", "users", "nofail",
                                       "_netdev", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime",
                                       "noatime", "relatime"]

    /// Applies `-o` option lists (each comma separated).
    public mutating func apply(_ lists: [String]) throws(MountOptionError) {
        for list in lists {
            for item in list.split(separator: ",", omittingEmptySubsequences: true) {
                try apply(String(item))
            }
        }
    }

    private mutating func apply(_ item: String) throws(MountOptionError) {
        let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let key = String(parts[0])
        let value = parts.count > 1 ? String(parts[1]) : nil
        func required() throws(MountOptionError) -> String {
            guard let value, !value.isEmpty else { throw MountOptionError("option \(key) needs a value (\(key)=…)") }
            return value
        }
        func flag() throws(MountOptionError) {
            guard value == nil else { throw MountOptionError("option \(key) takes no value") }
        }
        switch key {
        case "data", "cache":
            let path = try required()
            guard path.hasPrefix("/") else { throw MountOptionError("\(key)=\(path): an absolute path is needed") }
            dataDirectory = path
        case "port":
            guard let port = Int(try required()), (0...65535).contains(port) else {
                throw MountOptionError("port=\(value ?? ""): not a port number (0-65535)")
            }
            listenPort = port
        case "download_limit": downloadLimit = try MountOptions.rate(key, try required())
        case "upload_limit": uploadLimit = try MountOptions.rate(key, try required())
        case "max_connections": maxConnections = try MountOptions.count(key, try required())
        case "max_peers": maxPeers = try MountOptions.count(key, try required())
        case "readahead":
            guard let bytes = ByteSize.parse(try required()), bytes <= 1 << 30 else {
                throw MountOptionError("readahead=\(value ?? ""): not a size up to 1G (e.g. 32M)")
            }
            readahead = Int(bytes)
        case "cache_size":
            guard let bytes = ByteSize.parse(try required()), bytes >= MountOptions.minimumCache else {
                throw MountOptionError("cache_size=\(value ?? ""): not a size of at least 4M (e.g. 2G)")
            }
            cacheSize = bytes
        case "read_timeout":
            let seconds = try MountOptions.seconds(key, try required())
            readTimeout = seconds > 0 ? seconds : nil
        case "metadata_timeout": metadataTimeout = try MountOptions.seconds(key, try required())
        case "seed_ratio":
            guard let ratio = Double(try required()), ratio >= 0, ratio.isFinite else {
                throw MountOptionError("seed_ratio=\(value ?? ""): not a ratio (e.g. 2 or 0.5; 0 = never upload)")
            }
            seedRatio = ratio
        case "fetch_all": try flag(); fetchAll = true
        case "remove_data": try flag(); removeData = true
        case "allow_other": try flag(); allowOther = true
        case "debug": try flag(); debug = true
        case "http":
            guard MountOptions.hostAndPort(try required()) != nil else {
                throw MountOptionError("http=\(value ?? ""): not ADDR:PORT (e.g. 127.0.0.1:8888)")
            }
            httpAddress = value
        case "http_host": httpHosts.append(try required())
        case "http_add": try flag(); httpAdd = true
        case "blocklist":
            let path = try required()
            guard path.hasPrefix("/") else { throw MountOptionError("blocklist=\(path): an absolute path is needed") }
            blocklistFile = path
        case "log":
            let path = try required()
            guard path.hasPrefix("/") else { throw MountOptionError("log=\(path): an absolute path is needed") }
            logFile = path
        case "lsd": lsd = try MountOptions.onOff(key, try required())
        case "natpmp": natpmp = try MountOptions.onOff(key, try required())
        case "upnp": upnp = try MountOptions.onOff(key, try required())
        case "dht": dht = try MountOptions.onOff(key, try required())
        case "utp": utp = try MountOptions.onOff(key, try required())
        case "dht_router":
            let text = try required()
            guard let router = MountOptions.hostAndPort(text), router.port > 0 else {
                throw MountOptionError("dht_router=\(text): not HOST:PORT (e.g. router.bittorrent.com:6881)")
            }
            dhtRouters.append(text)
        case "encryption":
            let text = try required()
            guard let policy = EncryptionPolicy(rawValue: text) else {
                throw MountOptionError("encryption=\(text): prefer, require or off")
            }
            encryption = policy
        case "natpmp_lease":
            guard let seconds = Int(try required()), (2...86_400).contains(seconds) else {
                throw MountOptionError("natpmp_lease=\(value ?? ""): not a number of seconds (2-86400)")
            }
            natpmpLease = seconds
        case "user" where value != nil:
            break  // libmount passes user=NAME for a user mount; the mount runs as that user
        default:
            guard value == nil, MountOptions.ignored.contains(key) else {
                throw MountOptionError("unknown mount option \(item)")
            }
        }
    }

    /// `host:port` or `[v6]:port`, port 0–65535 (0: any free port).
    public static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        let host: Substring
        let port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (0...65535).contains(number) else { return nil }
        return (String(host), number)
    }

    private static func onOff(_ key: String, _ text: String) throws(MountOptionError) -> Bool {
        switch text {
        case "on": return true
        case "off": return false
        default: throw MountOptionError("\(key)=\(text): on or off")
        }
    }

    private static func rate(_ key: String, _ text: String) throws(MountOptionError) -> Int? {
        guard let bytes = ByteSize.parse(text) else {
            throw MountOptionError("\(key)=\(text): not a rate in bytes per second (e.g. 2M)")
        }
        return bytes > 0 ? Int(bytes) : nil
    }

    private static func count(_ key: String, _ text: String) throws(MountOptionError) -> Int {
        guard let value = Int(text), value > 0, value <= 100_000 else {
            throw MountOptionError("\(key)=\(text): not a positive number")
        }
        return value
    }

    private static func seconds(_ key: String, _ text: String) throws(MountOptionError) -> Double {
        guard let value = Double(text), value >= 0, value.isFinite else {
            throw MountOptionError("\(key)=\(text): not a number of seconds")
        }
        return value
    }
}

public struct MountOptionError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
