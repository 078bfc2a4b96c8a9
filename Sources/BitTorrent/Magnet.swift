/// Why a magnet URI was refused.
public struct MagnetError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case notAMagnet
        case tooLong(length: Int, limit: Int)
        case parameterTooLong(name: String, length: Int, limit: Int)
        case tooManyParameters(limit: Int)
        case missingInfoHash
        case invalidInfoHash(String)
        case invalidPercentEncoding(name: String)
        case invalidPeer(String)
        case invalidFileSelection(String)
        case invalidExactLength(String)
    }

    public var reason: Reason
    public init(_ reason: Reason) { self.reason = reason }

    public var description: String {
        switch reason {
        case .notAMagnet: return "magnet: not a magnet URI (must start with 'magnet:?')"
        case .tooLong(let length, let limit): return "magnet: URI of \(length) bytes exceeds the limit of \(limit)"
        case .parameterTooLong(let name, let length, let limit):
            return "magnet: parameter '\(name)' of \(length) bytes exceeds the limit of \(limit)"
        case .tooManyParameters(let limit): return "magnet: more than \(limit) parameters"
        case .missingInfoHash: return "magnet: no 'xt=urn:btih:' info hash"
        case .invalidInfoHash(let text): return "magnet: invalid info hash '\(text)' (need 40 hex or 32 base32 characters)"
        case .invalidPercentEncoding(let name): return "magnet: bad percent-encoding in '\(name)'"
        case .invalidPeer(let text): return "magnet: invalid peer address '\(text)' in x.pe"
        case .invalidFileSelection(let text): return "magnet: invalid file selection '\(text)' in so"
        case .invalidExactLength(let text): return "magnet: invalid length '\(text)' in xl"
        }
    }
}

/// A host and port, as found in `x.pe`, PEX and tracker responses given as text.
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `host:port` or `[v6]:port`, port 1–65535.
    public init?(_ text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }
        }
        // No brackets in a host: `[[]:3` would give host `[`, written back as `[:3`, which
        // does not parse (Fuzz/crashers/magnet/peer-host-bracket).
        guard !host.isEmpty, !host.unicodeScalars.contains(where: { $0 == "[" || $0 == "]" }),
              let port = UInt16(portText), port > 0 else { return nil }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A magnet URI (BEP 9, BEP 53): `xt=urn:btih:`, `dn`, `tr`, `ws`, `x.pe`, `so`, `xl`.
public struct MagnetLink: Hashable, Sendable {
    /// Longest magnet URI accepted.
    public static let maxLength = 64 * 1024
    /// Longest single parameter value accepted.
    public static let maxParameterLength = 8 * 1024
    /// Most parameters in one URI.
    public static let maxParameters = 1000

    public var infoHash: InfoHash
    public var displayName: String?
    public var trackers: [String]
    public var webSeeds: [String]
    public var peers: [PeerAddress]
    /// BEP 53 `so`: file indices to download, as inclusive ranges.
    public var selectedFiles: [ClosedRange<Int>]?
    /// `xl`: the exact total length, if given.
    public var exactLength: Int64?

    public init(infoHash: InfoHash, displayName: String? = nil, trackers: [String] = [], webSeeds: [String] = [],
                peers: [PeerAddress] = [], selectedFiles: [ClosedRange<Int>]? = nil, exactLength: Int64? = nil) {
        self.infoHash = infoHash
        self.displayName = displayName
        self.trackers = trackers
        self.webSeeds = webSeeds
        self.peers = peers
        self.selectedFiles = selectedFiles
        self.exactLength = exactLength
    }

    /// A magnet for a torrent: its info hash, name, every tracker and web seed, and length.
    public init(metainfo: Metainfo) {
        var trackers: [String] = []
        for url in metainfo.trackerTiers.joined() where !trackers.contains(url) { trackers.append(url) }
        self.init(infoHash: metainfo.infoHash, displayName: metainfo.info.name, trackers: trackers,
                  webSeeds: metainfo.webSeeds, exactLength: metainfo.info.totalLength)
    }

    public init(parsing text: String) throws(MagnetError) {
        let uri = text.trimmingASCIIWhitespace()
        guard uri.utf8.count <= MagnetLink.maxLength else {
            throw MagnetError(.tooLong(length: uri.utf8.count, limit: MagnetLink.maxLength))
        }
        guard uri.lowercased().hasPrefix("magnet:?") else { throw MagnetError(.notAMagnet) }
        let query = uri.dropFirst("magnet:?".count)
        let parameters = query.split(separator: "&", omittingEmptySubsequences: true)
        guard parameters.count <= MagnetLink.maxParameters else {
            throw MagnetError(.tooManyParameters(limit: MagnetLink.maxParameters))
        }
        var infoHash: InfoHash?
        var displayName: String?
        var trackers: [String] = []
        var webSeeds: [String] = []
        var peers: [PeerAddress] = []
        var selected: [ClosedRange<Int>]?
        var exactLength: Int64?
        for parameter in parameters {
            let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let rawKey = parts[0].lowercased()
            let key = MagnetLink.baseKey(rawKey)
            let rawValue = parts.count > 1 ? String(parts[1]) : ""
            guard rawValue.utf8.count <= MagnetLink.maxParameterLength else {
                throw MagnetError(.parameterTooLong(name: key, length: rawValue.utf8.count,
                                                    limit: MagnetLink.maxParameterLength))
            }
            // Unknown parameters are ignored (only their size is checked).
            guard ["xt", "dn", "tr", "ws", "x.pe", "so", "xl"].contains(key) else { continue }
            guard let value = MagnetLink.percentDecode(rawValue, plusIsSpace: key == "dn") else {
                throw MagnetError(.invalidPercentEncoding(name: key))
            }
            switch key {
            case "xt":
                let prefix = "urn:btih:"
                guard value.lowercased().hasPrefix(prefix) else { continue }  // btmh (v2) and others
                let hashText = String(value.dropFirst(prefix.count))
                guard hashText.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }),
                      let hash = InfoHash(string: hashText) else {
                    throw MagnetError(.invalidInfoHash(hashText))
                }
                if infoHash == nil { infoHash = hash }
            case "dn": if displayName == nil, !value.isEmpty { displayName = value }
            case "tr": if !value.isEmpty, !trackers.contains(value) { trackers.append(value) }
            case "ws": if !value.isEmpty, !webSeeds.contains(value) { webSeeds.append(value) }
            case "x.pe":
                guard let peer = PeerAddress(value) else { throw MagnetError(.invalidPeer(value)) }
                if !peers.contains(peer) { peers.append(peer) }
            case "so":
                guard let ranges = MagnetLink.parseSelection(value) else {
                    throw MagnetError(.invalidFileSelection(value))
                }
                selected = (selected ?? []) + ranges
            case "xl":
                guard let length = Int64(value), length > 0 else { throw MagnetError(.invalidExactLength(value)) }
                exactLength = length
            default:
                continue  // unknown parameters are ignored
            }
        }
        guard let infoHash else { throw MagnetError(.missingInfoHash) }
        self.init(infoHash: infoHash, displayName: displayName, trackers: trackers, webSeeds: webSeeds,
                  peers: peers, selectedFiles: selected, exactLength: exactLength)
    }

    /// The URI: info hash in hex, then every parameter percent-encoded.
    public var uri: String {
        var parts = ["xt=urn:btih:\(infoHash.hex)"]
        if let displayName { parts.append("dn=\(MagnetLink.percentEncode(displayName))") }
        if let exactLength { parts.append("xl=\(exactLength)") }
        parts += trackers.map { "tr=\(MagnetLink.percentEncode($0))" }
        parts += webSeeds.map { "ws=\(MagnetLink.percentEncode($0))" }
        parts += peers.map { "x.pe=\(MagnetLink.percentEncode($0.description))" }
        if let selectedFiles, !selectedFiles.isEmpty {
            let text = selectedFiles.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            parts.append("so=\(text.joined(separator: ","))")
        }
        return "magnet:?" + parts.joined(separator: "&")
    }

    /// Whether the file at `index` is selected (all are when `so` is absent).
    public func isSelected(fileIndex index: Int) -> Bool {
        guard let selectedFiles else { return true }
        return selectedFiles.contains { $0.contains(index) }
    }

    /// BEP 9 allows numbered repeats (`xt.1`, `tr.2`): they count as the base key.
    static func baseKey(_ key: String) -> String {
        guard let dot = key.firstIndex(of: ".") else { return key }
        let suffix = key[key.index(after: dot)...]
        return !suffix.isEmpty && suffix.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) ? String(key[..<dot]) : key
    }

    static func parseSelection(_ text: String) -> [ClosedRange<Int>]? {
        var ranges: [ClosedRange<Int>] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2,
                  let low = Int(bounds[0]), low >= 0, let high = Int(bounds[bounds.count - 1]), high >= low
            else { return nil }
            ranges.append(low...high)
        }
        return ranges
    }

    static func percentDecode(_ text: String, plusIsSpace: Bool) -> String? {
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        while index < utf8.count {
            let c = utf8[index]
            if c == UInt8(ascii: "%") {
                guard index + 2 < utf8.count,
                      let value = Hex.decode(String(decoding: utf8[(index + 1)...(index + 2)], as: UTF8.self))
                else { return nil }
                bytes.append(value[0])
                index += 3
            } else {
                bytes.append(plusIsSpace && c == UInt8(ascii: "+") ? 0x20 : c)
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func percentEncode(_ text: String) -> String {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
        var out = ""
        for byte in text.utf8 {
            if unreserved.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + Hex.encode([byte]).uppercased()
            }
        }
        return out
    }
}
