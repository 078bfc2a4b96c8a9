/// What a KRPC datagram may hold: anything beyond is refused whole (a DHT node drops such
/// datagrams without an answer).
public enum KRPCLimits {
    /// Largest datagram decoded. KRPC messages fit an Ethernet frame; a full get_peers
    /// answer of IPv6 peers stays well under this.
    public static let maxDatagramSize = 2048
    /// Longest transaction id (libtorrent sends 2 bytes, others up to 8).
    public static let maxTransactionLength = 16
    /// Longest write token (libtorrent's are 4 bytes, ours 8, some clients' 20).
    public static let maxTokenLength = 40
    /// Most entries in one of `nodes` and `nodes6` (answers carry k = 8).
    public static let maxNodesPerList = 32
    /// Most peers in `values`.
    public static let maxValues = 200
    /// Longest method name, error text and version string kept.
    public static let maxMethodNameLength = 32
    public static let maxErrorMessageLength = 200
    public static let maxVersionLength = 16
    /// The bencode limits a datagram is decoded with (keys need not be sorted: some
    /// clients send them unsorted, and nothing is hashed).
    public static let bencode = BencodeLimits(maxDepth: 8, maxTokens: 600, maxInputSize: maxDatagramSize,
                                              requireCanonicalKeys: false)
}

/// Why a KRPC datagram was refused.
public struct KRPCError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case bencode(BencodeError)
        case notADictionary
        /// A required key is absent or of the wrong type.
        case missing(String)
        /// A value breaks a rule or a limit: the key and what is wrong.
        case invalid(String, String)
        case unknownType([UInt8])
    }

    public var reason: Reason

    public init(_ reason: Reason) { self.reason = reason }

    public var description: String {
        switch reason {
        case .bencode(let error): "krpc: \(error)"
        case .notADictionary: "krpc: not a dictionary"
        case .missing(let key): "krpc: '\(key)' missing or of the wrong type"
        case .invalid(let key, let what): "krpc: '\(key)' \(what)"
        case .unknownType(let type): "krpc: unknown message type '\(String(decoding: type.prefix(8), as: UTF8.self))'"
        }
    }
}

extension KRPCMessage {
    /// Decodes one datagram within `KRPCLimits`. Optional fields that are malformed (`ip`,
    /// `v`, `want`, single `values` entries of the wrong length) are ignored, as other
    /// clients do; required ones refuse the message.
    public init(decoding bytes: [UInt8]) throws(KRPCError) {
        let value: BValue
        do {
            value = try Bencode.decode(bytes, limits: KRPCLimits.bencode)
        } catch {
            throw KRPCError(.bencode(error))
        }
        guard let root = value.dictionaryValue else { throw KRPCError(.notADictionary) }
        guard let transaction = root["t"]?.bytesValue else { throw KRPCError(.missing("t")) }
        guard (1...KRPCLimits.maxTransactionLength).contains(transaction.count) else {
            throw KRPCError(.invalid("t", "has \(transaction.count) bytes"))
        }
        guard let type = root["y"]?.bytesValue else { throw KRPCError(.missing("y")) }
        let body: Body
        switch type {
        case Array("q".utf8): body = .query(try Self.query(root))
        case Array("r".utf8): body = .response(try Self.response(root))
        case Array("e".utf8): body = try Self.error(root)
        default: throw KRPCError(.unknownType(type))
        }
        var requester: CompactPeer?
        if let ip = root["ip"]?.bytesValue, ip.count == 6 || ip.count == 18 {
            requester = CompactPeer.decodeList(ip, ipv6: ip.count == 18).first
        }
        var version = root["v"]?.bytesValue
        if let text = version, text.count > KRPCLimits.maxVersionLength { version = nil }
        self.init(transaction: transaction, body: body, requesterAddress: requester,
                  readOnly: root["ro"]?.integerValue == 1, version: version)
    }

    private static func id(_ dictionary: BDictionary, _ key: String) throws(KRPCError) -> Digest20 {
        guard let bytes = dictionary[key]?.bytesValue else { throw KRPCError(.missing(key)) }
        guard let id = Digest20(bytes) else { throw KRPCError(.invalid(key, "has \(bytes.count) bytes, not 20")) }
        return id
    }

    private static func token(_ dictionary: BDictionary) throws(KRPCError) -> [UInt8]? {
        guard let value = dictionary["token"] else { return nil }
        guard let token = value.bytesValue else { throw KRPCError(.missing("token")) }
        guard token.count <= KRPCLimits.maxTokenLength else { throw KRPCError(.invalid("token", "has \(token.count) bytes")) }
        return token
    }

    private static func query(_ root: BDictionary) throws(KRPCError) -> KRPCQuery {
        guard let name = root["q"]?.bytesValue else { throw KRPCError(.missing("q")) }
        guard name.count <= KRPCLimits.maxMethodNameLength else { throw KRPCError(.invalid("q", "is too long")) }
        guard let arguments = root["a"]?.dictionaryValue else { throw KRPCError(.missing("a")) }
        let sender = try id(arguments, "id")
        let method: KRPCQuery.Method
        switch name {
        case Array("ping".utf8): method = .ping
        case Array("find_node".utf8): method = .findNode(target: try id(arguments, "target"))
        case Array("get_peers".utf8): method = .getPeers(infoHash: try id(arguments, "info_hash"))
        case Array("announce_peer".utf8):
            let infoHash = try id(arguments, "info_hash")
            let implied = (arguments["implied_port"]?.integerValue ?? 0) != 0
            guard let port = arguments["port"]?.integerValue else { throw KRPCError(.missing("port")) }
            // With implied_port the port is the datagram's source port, so `port` may be 0.
            guard (implied ? 0 : 1)...65535 ~= port else { throw KRPCError(.invalid("port", "is \(port)")) }
            guard let token = try token(arguments) else { throw KRPCError(.missing("token")) }
            method = .announcePeer(infoHash: infoHash, port: UInt16(port), impliedPort: implied, token: token)
        default: method = .unknown(name)
        }
        var want: KRPCQuery.Want = []
        for family in arguments["want"]?.listValue ?? [] {
            switch family.bytesValue {
            case Array("n4".utf8)?: want.insert(.ipv4)
            case Array("n6".utf8)?: want.insert(.ipv6)
            default: break
            }
        }
        return KRPCQuery(sender: sender, method: method, want: want)
    }

    private static func nodes(_ result: BDictionary, ipv6: Bool) throws(KRPCError) -> [DHTNodeInfo] {
        let key = ipv6 ? "nodes6" : "nodes"
        guard let value = result[key] else { return [] }
        guard let bytes = value.bytesValue, let nodes = DHTNodeInfo.decodeList(bytes, ipv6: ipv6) else {
            throw KRPCError(.invalid(key, "is not a whole number of compact nodes"))
        }
        guard bytes.count / DHTNodeInfo.entrySize(ipv6: ipv6) <= KRPCLimits.maxNodesPerList else {
            throw KRPCError(.invalid(key, "holds more than \(KRPCLimits.maxNodesPerList) nodes"))
        }
        return nodes
    }

    private static func response(_ root: BDictionary) throws(KRPCError) -> KRPCResponse {
        guard let result = root["r"]?.dictionaryValue else { throw KRPCError(.missing("r")) }
        var values: [CompactPeer] = []
        if let list = result["values"] {
            guard let entries = list.listValue else { throw KRPCError(.missing("values")) }
            guard entries.count <= KRPCLimits.maxValues else {
                throw KRPCError(.invalid("values", "holds \(entries.count) peers"))
            }
            for entry in entries {
                guard let bytes = entry.bytesValue, bytes.count == 6 || bytes.count == 18 else { continue }
                values += CompactPeer.decodeList(bytes, ipv6: bytes.count == 18)
            }
        }
        return KRPCResponse(sender: try id(result, "id"), nodes: try nodes(result, ipv6: false),
                            nodes6: try nodes(result, ipv6: true), values: values, token: try token(result))
    }

    private static func error(_ root: BDictionary) throws(KRPCError) -> Body {
        guard let list = root["e"]?.listValue, let code = list.first?.integerValue else { throw KRPCError(.missing("e")) }
        guard (0...Int64(Int32.max)).contains(code) else { throw KRPCError(.invalid("e", "has code \(code)")) }
        var message = list.count > 1 ? String(decoding: list[1].bytesValue ?? [], as: UTF8.self) : ""
        while message.utf8.count > KRPCLimits.maxErrorMessageLength { message.removeLast() }
        return .error(code: Int(code), message: message)
    }
}
