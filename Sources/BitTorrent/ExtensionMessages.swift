/// The BEP 10 extension handshake (extended message 0).
public struct ExtensionHandshake: Hashable, Sendable {
    /// Extension names to the message ids the sender wants to receive them as.
    public var messages: [String: UInt8]
    public var client: String?
    public var listenPort: UInt16?
    /// The sender's request queue depth (`reqq`).
    public var requestQueueDepth: Int?
    /// Our address as the sender sees it (`yourip`, 4 or 16 bytes).
    public var yourIP: [UInt8]?
    /// BEP 9 size of the info dictionary, when the sender has it.
    public var metadataSize: Int?

    public init(messages: [String: UInt8] = [:], client: String? = nil, listenPort: UInt16? = nil,
                requestQueueDepth: Int? = nil, yourIP: [UInt8]? = nil, metadataSize: Int? = nil) {
        self.messages = messages
        self.client = client
        self.listenPort = listenPort
        self.requestQueueDepth = requestQueueDepth
        self.yourIP = yourIP
        self.metadataSize = metadataSize
    }

    /// Lenient about unknown and ill-typed fields (they are dropped); only a payload that
    /// is not a bencoded dictionary is an error.
    public init(payload: [UInt8]) throws(BencodeError) {
        let value = try Bencode.decode(payload, limits: BencodeLimits(maxDepth: 8, maxTokens: 10_000,
                                                                      maxInputSize: 64 * 1024,
                                                                      requireCanonicalKeys: false))
        guard let dict = value.dictionaryValue else { throw BencodeError(.unexpectedByte(payload.first ?? 0), at: 0) }
        var messages: [String: UInt8] = [:]
        for entry in dict["m"]?.dictionaryValue?.entries ?? [] {
            if let name = String(validating: entry.key, as: UTF8.self), let id = entry.value.integerValue,
               (0...255).contains(id) {
                messages[name] = UInt8(id)
            }
        }
        self.messages = messages
        client = dict["v"]?.stringValue
        listenPort = dict["p"]?.integerValue.flatMap { (1...65535).contains($0) ? UInt16($0) : nil }
        requestQueueDepth = dict["reqq"]?.integerValue.flatMap { $0 > 0 ? Int(min($0, 100_000)) : nil }
        yourIP = dict["yourip"]?.bytesValue.flatMap { $0.count == 4 || $0.count == 16 ? $0 : nil }
        metadataSize = dict["metadata_size"]?.integerValue.flatMap { $0 > 0 && $0 <= Int64(Int32.max) ? Int($0) : nil }
    }

    public var payload: [UInt8] {
        var root = BDictionary()
        var m = BDictionary()
        for (name, id) in messages { m[name] = .integer(Int64(id)) }
        root["m"] = .dictionary(m)
        if let client { root["v"] = .string(client) }
        if let listenPort { root["p"] = .integer(Int64(listenPort)) }
        if let requestQueueDepth { root["reqq"] = .integer(Int64(requestQueueDepth)) }
        if let yourIP { root["yourip"] = .bytes(yourIP) }
        if let metadataSize { root["metadata_size"] = .integer(Int64(metadataSize)) }
        return Bencode.encode(.dictionary(root))
    }
}

/// BEP 9 ut_metadata messages.
public enum MetadataMessage: Hashable, Sendable {
    /// Size of one metadata piece.
    public static let pieceSize = 16 * 1024
    /// Largest metadata accepted (libtorrent and rqbit use limits of this order).
    public static let maxMetadataSize = 16 << 20

    case request(piece: Int)
    case data(piece: Int, totalSize: Int, data: [UInt8])
    case reject(piece: Int)

    public init(payload: [UInt8]) throws(BencodeError) {
        let (value, consumed) = try Bencode.decodePrefix(payload, limits: BencodeLimits(maxDepth: 4, maxTokens: 100,
                                                                                        maxInputSize: 64 * 1024,
                                                                                        requireCanonicalKeys: false))
        guard let type = value["msg_type"]?.integerValue, let piece = value["piece"]?.integerValue,
              piece >= 0, piece < Int64(MetadataMessage.maxMetadataSize / MetadataMessage.pieceSize) else {
            throw BencodeError(.invalidInteger, at: 0)
        }
        switch type {
        case 0: self = .request(piece: Int(piece))
        case 1:
            guard let total = value["total_size"]?.integerValue, total > 0,
                  total <= Int64(MetadataMessage.maxMetadataSize) else { throw BencodeError(.invalidInteger, at: 0) }
            self = .data(piece: Int(piece), totalSize: Int(total), data: Array(payload[consumed...]))
        case 2: self = .reject(piece: Int(piece))
        default: throw BencodeError(.invalidInteger, at: 0)
        }
    }

    public var payload: [UInt8] {
        switch self {
        case .request(let piece):
            return Bencode.encode(["msg_type": 0, "piece": .integer(Int64(piece))])
        case .reject(let piece):
            return Bencode.encode(["msg_type": 2, "piece": .integer(Int64(piece))])
        case .data(let piece, let total, let data):
            return Bencode.encode(["msg_type": 1, "piece": .integer(Int64(piece)), "total_size": .integer(Int64(total))])
                + data
        }
    }
}

/// BEP 11 ut_pex message: compact peers added and dropped.
public struct PEXMessage: Hashable, Sendable {
    /// Most added peers honored from one message (BEP 11 says at most 50).
    public static let maxAddedPeers = 50
    /// Most dropped peers read from one message: the same bound, so that a message of any
    /// size decodes to one that re-encodes within the decoder's 64 KiB input limit.
    public static let maxDroppedPeers = 50

    public var added: [CompactPeer]
    public var dropped: [CompactPeer]

    public init(added: [CompactPeer], dropped: [CompactPeer]) {
        self.added = added
        self.dropped = dropped
    }

    public init(payload: [UInt8]) throws(BencodeError) {
        let value = try Bencode.decode(payload, limits: BencodeLimits(maxDepth: 4, maxTokens: 100,
                                                                      maxInputSize: 64 * 1024,
                                                                      requireCanonicalKeys: false))
        added = Array((CompactPeer.decodeList(value["added"]?.bytesValue ?? [], ipv6: false)
            + CompactPeer.decodeList(value["added6"]?.bytesValue ?? [], ipv6: true)).prefix(PEXMessage.maxAddedPeers))
        dropped = Array((CompactPeer.decodeList(value["dropped"]?.bytesValue ?? [], ipv6: false)
            + CompactPeer.decodeList(value["dropped6"]?.bytesValue ?? [], ipv6: true)).prefix(PEXMessage.maxDroppedPeers))
    }

    public var payload: [UInt8] {
        let added4 = added.filter { $0.address.count == 4 }
        let added6 = added.filter { $0.address.count == 16 }
        let dropped4 = dropped.filter { $0.address.count == 4 }
        let dropped6 = dropped.filter { $0.address.count == 16 }
        var root = BDictionary()
        root["added"] = .bytes(added4.flatMap(\.compact))
        root["added.f"] = .bytes([UInt8](repeating: 0, count: added4.count))
        root["dropped"] = .bytes(dropped4.flatMap(\.compact))
        if !added6.isEmpty {
            root["added6"] = .bytes(added6.flatMap(\.compact))
            root["added6.f"] = .bytes([UInt8](repeating: 0, count: added6.count))
        }
        if !dropped6.isEmpty { root["dropped6"] = .bytes(dropped6.flatMap(\.compact)) }
        return Bencode.encode(.dictionary(root))
    }
}

/// A peer in compact form (BEP 23): 4-byte IPv4 or 16-byte IPv6 address and a port.
public struct CompactPeer: Hashable, Sendable, CustomStringConvertible {
    public var address: [UInt8]
    public var port: UInt16

    public init?(address: [UInt8], port: UInt16) {
        guard address.count == 4 || address.count == 16, port != 0 else { return nil }
        self.address = address
        self.port = port
    }

    public var compact: [UInt8] { address + [UInt8(port >> 8), UInt8(port & 0xFF)] }

    /// Entries of 6 (IPv4) or 18 (IPv6) bytes; nil when the length is not a multiple.
    public static func decodeStrict(_ bytes: [UInt8], ipv6: Bool) -> [CompactPeer]? {
        let size = ipv6 ? 18 : 6
        guard bytes.count % size == 0 else { return nil }
        return decodeList(bytes, ipv6: ipv6)
    }

    /// Whole entries only; entries with port 0 are dropped.
    public static func decodeList(_ bytes: [UInt8], ipv6: Bool) -> [CompactPeer] {
        let size = ipv6 ? 18 : 6
        var out: [CompactPeer] = []
        var index = 0
        while index + size <= bytes.count {
            let port = UInt16(bytes[index + size - 2]) << 8 | UInt16(bytes[index + size - 1])
            if let peer = CompactPeer(address: Array(bytes[index..<(index + size - 2)]), port: port) { out.append(peer) }
            index += size
        }
        return out
    }

    /// Dotted IPv4 or colon-separated IPv6 (uncompressed groups).
    public var host: String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }

    public var description: String { address.count == 4 ? "\(host):\(port)" : "[\(host)]:\(port)" }
}
