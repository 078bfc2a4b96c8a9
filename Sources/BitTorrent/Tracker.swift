/// What we tell a tracker when announcing (BEP 3, BEP 15).
public struct AnnounceRequest: Hashable, Sendable {
    public enum Event: String, Sendable {
        case none = "", started, completed, stopped

        /// BEP 15 numbering.
        public var udpValue: UInt32 {
            switch self {
            case .none: return 0
            case .completed: return 1
            case .started: return 2
            case .stopped: return 3
            }
        }
    }

    public var infoHash: InfoHash
    public var peerID: PeerID
    public var port: UInt16
    public var uploaded: Int64
    public var downloaded: Int64
    public var left: Int64
    public var event: Event
    public var numWant: Int
    /// Random per-session key, so trackers recognize us across IP changes.
    public var key: UInt32
    public var trackerID: String?

    public init(infoHash: InfoHash, peerID: PeerID, port: UInt16, uploaded: Int64 = 0, downloaded: Int64 = 0,
                left: Int64, event: Event = .none, numWant: Int = 50, key: UInt32 = 0, trackerID: String? = nil) {
        self.infoHash = infoHash
        self.peerID = peerID
        self.port = port
        self.uploaded = uploaded
        self.downloaded = downloaded
        self.left = left
        self.event = event
        self.numWant = numWant
        self.key = key
        self.trackerID = trackerID
    }
}

/// A tracker's answer to an announce.
public struct AnnounceResponse: Hashable, Sendable {
    public var interval: Int
    public var minInterval: Int?
    public var trackerID: String?
    public var seeders: Int?
    public var leechers: Int?
    public var peers: [PeerAddress]
    public var warning: String?

    public init(interval: Int, minInterval: Int? = nil, trackerID: String? = nil, seeders: Int? = nil,
                leechers: Int? = nil, peers: [PeerAddress], warning: String? = nil) {
        self.interval = interval
        self.minInterval = minInterval
        self.trackerID = trackerID
        self.seeders = seeders
        self.leechers = leechers
        self.peers = peers
        self.warning = warning
    }
}

/// Why an announce failed.
public struct TrackerError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        /// The tracker said no (`failure reason`).
        case failure(String)
        case malformed(String)
        case tooLarge(size: Int, limit: Int)
        case timeout
        case transport(String)
    }

    public var reason: Reason
    public init(_ reason: Reason) { self.reason = reason }

    public var description: String {
        switch reason {
        case .failure(let text): return "tracker refused: \(text)"
        case .malformed(let text): return "malformed tracker response: \(text)"
        case .tooLarge(let size, let limit): return "tracker response of \(size) bytes exceeds \(limit)"
        case .timeout: return "tracker did not answer"
        case .transport(let text): return "tracker unreachable: \(text)"
        }
    }
}

/// HTTP(S) tracker protocol (BEP 3, BEP 23 compact peers, BEP 7 `peers6`).
public enum HTTPTrackerProtocol {
    /// Largest response body accepted.
    public static let maxResponseSize = 1 << 20
    /// Interval used when a tracker gives none or a silly one.
    public static let defaultInterval = 1800
    /// Shortest interval honored.
    public static let minimumInterval = 30

    /// The announce URL with its query string; `info_hash` and `peer_id` are raw bytes,
    /// percent-encoded.
    public static func announceURL(_ base: String, _ request: AnnounceRequest) -> String {
        var parts = [
            "info_hash=" + escape(request.infoHash.bytes),
            "peer_id=" + escape(request.peerID.bytes),
            "port=\(request.port)",
            "uploaded=\(request.uploaded)",
            "downloaded=\(request.downloaded)",
            "left=\(request.left)",
            "compact=1",
            "numwant=\(request.numWant)",
            "key=" + String(request.key, radix: 16),
        ]
        if request.event != .none { parts.append("event=\(request.event.rawValue)") }
        if let id = request.trackerID { parts.append("trackerid=" + escape(Array(id.utf8))) }
        return base + (base.contains("?") ? "&" : "?") + parts.joined(separator: "&")
    }

    static func escape(_ bytes: [UInt8]) -> String {
        var out = ""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                 UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + Hex.encode([byte]).uppercased()
            }
        }
        return out
    }

    /// A response body's top dictionary, within the size and depth limits; a `failure
    /// reason` is thrown as the tracker's refusal.
    static func responseDictionary(_ body: [UInt8]) throws(TrackerError) -> BDictionary {
        guard body.count <= maxResponseSize else { throw TrackerError(.tooLarge(size: body.count, limit: maxResponseSize)) }
        let value: BValue
        do {
            value = try Bencode.decode(body, limits: BencodeLimits(maxDepth: 8, maxTokens: 200_000,
                                                                   maxInputSize: maxResponseSize,
                                                                   requireCanonicalKeys: false))
        } catch {
            throw TrackerError(.malformed("\(error)"))
        }
        guard let dict = value.dictionaryValue else { throw TrackerError(.malformed("not a dictionary")) }
        if let failure = dict["failure reason"] {
            throw TrackerError(.failure(failure.stringValue ?? "(unreadable reason)"))
        }
        return dict
    }

    /// Parses an announce response body.
    public static func parseAnnounce(_ body: [UInt8]) throws(TrackerError) -> AnnounceResponse {
        let dict = try responseDictionary(body)
        var peers: [PeerAddress] = []
        switch dict["peers"] {
        case .bytes(let compact)?:
            guard let list = CompactPeer.decodeStrict(compact, ipv6: false) else {
                throw TrackerError(.malformed("compact peers of \(compact.count) bytes, not a multiple of 6"))
            }
            peers += list.map { PeerAddress(host: $0.host, port: $0.port) }
        case .list(let entries)?:
            for entry in entries {
                guard let host = entry["ip"]?.stringValue, let port = entry["port"]?.integerValue,
                      port > 0, port <= 65535, !host.isEmpty else { continue }
                peers.append(PeerAddress(host: host, port: UInt16(port)))
            }
        case nil:
            break
        default:
            throw TrackerError(.malformed("'peers' is neither a string nor a list"))
        }
        if let compact6 = dict["peers6"]?.bytesValue {
            guard let list = CompactPeer.decodeStrict(compact6, ipv6: true) else {
                throw TrackerError(.malformed("compact IPv6 peers of \(compact6.count) bytes, not a multiple of 18"))
            }
            peers += list.map { PeerAddress(host: $0.host, port: $0.port) }
        }
        let interval = dict["interval"]?.integerValue.map { Int(clamping: $0) } ?? defaultInterval
        return AnnounceResponse(
            interval: interval >= minimumInterval ? interval : defaultInterval,
            minInterval: dict["min interval"]?.integerValue.map { Int(clamping: $0) },
            trackerID: dict["tracker id"]?.stringValue,
            seeders: dict["complete"]?.integerValue.map { Int(clamping: $0) },
            leechers: dict["incomplete"]?.integerValue.map { Int(clamping: $0) },
            peers: peers,
            warning: dict["warning message"]?.stringValue)
    }

    /// The scrape request for one torrent: the scrape URL with its `info_hash`.
    public static func scrapeRequestURL(_ scrape: String, _ infoHash: InfoHash) -> String {
        scrape + (scrape.contains("?") ? "&" : "?") + "info_hash=" + escape(infoHash.bytes)
    }

    /// Parses a scrape response body: the counts for `infoHash` (`files` → raw hash →
    /// `complete`, `downloaded`, `incomplete`).
    public static func parseScrape(_ body: [UInt8], infoHash: InfoHash) throws(TrackerError) -> UDPTrackerPacket.ScrapeEntry {
        let dict = try responseDictionary(body)
        guard let files = dict["files"]?.dictionaryValue else { throw TrackerError(.malformed("no 'files' dictionary")) }
        guard let entry = files[infoHash.bytes]?.dictionaryValue else {
            throw TrackerError(.failure("torrent not known to the tracker"))
        }
        func count(_ key: String) throws(TrackerError) -> Int {
            guard let value = entry[key]?.integerValue, value >= 0 else {
                throw TrackerError(.malformed("scrape entry without a valid '\(key)'"))
            }
            return Int(clamping: value)
        }
        return UDPTrackerPacket.ScrapeEntry(seeders: try count("complete"), completed: try count("downloaded"),
                                            leechers: try count("incomplete"))
    }

    /// The scrape URL for an announce URL, if the tracker follows the convention.
    public static func scrapeURL(_ announce: String) -> String? {
        guard let slash = announce.lastIndex(of: "/") else { return nil }
        let last = announce[announce.index(after: slash)...]
        guard last.hasPrefix("announce") else { return nil }
        return String(announce[...slash]) + "scrape" + last.dropFirst("announce".count)
    }
}

/// BEP 15 UDP tracker packets.
public enum UDPTrackerPacket {
    public static let protocolID: UInt64 = 0x417_2710_1980

    public enum Action: UInt32 { case connect = 0, announce = 1, scrape = 2, error = 3 }

    public static func connectRequest(transaction: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        put64(&out, protocolID)
        put32(&out, Action.connect.rawValue)
        put32(&out, transaction)
        return out
    }

    public static func announceRequest(connection: UInt64, transaction: UInt32, _ request: AnnounceRequest) -> [UInt8] {
        var out: [UInt8] = []
        put64(&out, connection)
        put32(&out, Action.announce.rawValue)
        put32(&out, transaction)
        out += request.infoHash.bytes
        out += request.peerID.bytes
        put64(&out, UInt64(max(0, request.downloaded)))
        put64(&out, UInt64(max(0, request.left)))
        put64(&out, UInt64(max(0, request.uploaded)))
        put32(&out, request.event.udpValue)
        put32(&out, 0)  // IP: the sender's
        put32(&out, request.key)
        put32(&out, UInt32(bitPattern: Int32(clamping: request.numWant)))
        out.append(UInt8(request.port >> 8))
        out.append(UInt8(request.port & 0xFF))
        return out
    }

    public static func scrapeRequest(connection: UInt64, transaction: UInt32, infoHashes: [InfoHash]) -> [UInt8] {
        var out: [UInt8] = []
        put64(&out, connection)
        put32(&out, Action.scrape.rawValue)
        put32(&out, transaction)
        for hash in infoHashes.prefix(74) { out += hash.bytes }
        return out
    }

    /// One torrent's counts in a scrape response.
    public struct ScrapeEntry: Hashable, Sendable {
        public var seeders: Int
        public var completed: Int
        public var leechers: Int

        public init(seeders: Int, completed: Int, leechers: Int) {
            self.seeders = seeders
            self.completed = completed
            self.leechers = leechers
        }
    }

    public enum Response: Hashable, Sendable {
        case connected(transaction: UInt32, connection: UInt64)
        case announced(transaction: UInt32, AnnounceResponse)
        case scraped(transaction: UInt32, [ScrapeEntry])
        case error(transaction: UInt32, message: String)

        public var transaction: UInt32 {
            switch self {
            case .connected(let t, _), .announced(let t, _), .scraped(let t, _), .error(let t, _): return t
            }
        }
    }

    /// Parses a response; `ipv6` says whether peers are 18-byte entries (an IPv6 tracker).
    public static func parse(_ bytes: [UInt8], ipv6: Bool = false) throws(TrackerError) -> Response {
        guard bytes.count >= 8 else { throw TrackerError(.malformed("UDP packet of \(bytes.count) bytes")) }
        let action = get32(bytes, 0)
        let transaction = get32(bytes, 4)
        switch Action(rawValue: action) {
        case .connect:
            guard bytes.count >= 16 else { throw TrackerError(.malformed("short connect response")) }
            return .connected(transaction: transaction, connection: get64(bytes, 8))
        case .announce:
            guard bytes.count >= 20 else { throw TrackerError(.malformed("short announce response")) }
            let size = ipv6 ? 18 : 6
            let body = Array(bytes[20...])
            guard body.count % size == 0 else {
                throw TrackerError(.malformed("peer list of \(body.count) bytes, not a multiple of \(size)"))
            }
            let peers = CompactPeer.decodeList(body, ipv6: ipv6).map { PeerAddress(host: $0.host, port: $0.port) }
            let interval = Int(get32(bytes, 8))
            return .announced(transaction: transaction, AnnounceResponse(
                interval: interval >= HTTPTrackerProtocol.minimumInterval ? interval : HTTPTrackerProtocol.defaultInterval,
                leechers: Int(get32(bytes, 12)), peers: peers).withSeeders(Int(get32(bytes, 16))))
        case .scrape:
            var entries: [ScrapeEntry] = []
            var offset = 8
            while offset + 12 <= bytes.count {
                entries.append(ScrapeEntry(seeders: Int(get32(bytes, offset)), completed: Int(get32(bytes, offset + 4)),
                                           leechers: Int(get32(bytes, offset + 8))))
                offset += 12
            }
            return .scraped(transaction: transaction, entries)
        case .error:
            return .error(transaction: transaction, message: String(decoding: bytes[8...], as: UTF8.self))
        case nil:
            throw TrackerError(.malformed("unknown UDP action \(action)"))
        }
    }

    static func put32(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    static func put64(_ out: inout [UInt8], _ v: UInt64) {
        put32(&out, UInt32(v >> 32))
        put32(&out, UInt32(truncatingIfNeeded: v))
    }

    static func get32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    static func get64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(get32(b, i)) << 32 | UInt64(get32(b, i + 4)) }
}

extension AnnounceResponse {
    func withSeeders(_ seeders: Int) -> AnnounceResponse {
        var copy = self
        copy.seeders = seeders
        return copy
    }
}
