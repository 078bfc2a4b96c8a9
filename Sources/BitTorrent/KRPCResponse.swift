/// A KRPC response (`y` = `r`): the responder's id and whatever the query asked for —
/// closer nodes (`nodes` for IPv4, `nodes6` for IPv6, BEP 32), peers (`values`) and a write
/// token for `announce_peer`. Which query it answers is known from the transaction id.
public struct KRPCResponse: Hashable, Sendable {
    /// `id`: the responder's node id.
    public var sender: Digest20
    public var nodes: [DHTNodeInfo]
    public var nodes6: [DHTNodeInfo]
    /// `values`: peers of the torrent asked for.
    public var values: [CompactPeer]
    public var token: [UInt8]?

    public init(sender: Digest20, nodes: [DHTNodeInfo] = [], nodes6: [DHTNodeInfo] = [], values: [CompactPeer] = [],
                token: [UInt8]? = nil) {
        self.sender = sender
        self.nodes = nodes
        self.nodes6 = nodes6
        self.values = values
        self.token = token
    }

    /// The `r` dictionary; empty lists are left out.
    var dictionary: BDictionary {
        var result = BDictionary()
        result["id"] = .bytes(sender.bytes)
        if !nodes.isEmpty { result["nodes"] = .bytes(nodes.flatMap(\.compact)) }
        if !nodes6.isEmpty { result["nodes6"] = .bytes(nodes6.flatMap(\.compact)) }
        if !values.isEmpty { result["values"] = .list(values.map { .bytes($0.compact) }) }
        if let token { result["token"] = .bytes(token) }
        return result
    }
}

/// A DHT node in compact form: its 20-byte id, then its address and port (26 bytes for
/// IPv4, 38 for IPv6).
public struct DHTNodeInfo: Hashable, Sendable, CustomStringConvertible {
    public var id: Digest20
    public var endpoint: CompactPeer

    public init(id: Digest20, endpoint: CompactPeer) {
        self.id = id
        self.endpoint = endpoint
    }

    public var compact: [UInt8] { id.bytes + endpoint.compact }

    /// Entry length of a compact node list.
    public static func entrySize(ipv6: Bool) -> Int { ipv6 ? 38 : 26 }

    /// A compact node list; nil when its length is not a whole number of entries. Entries
    /// with port 0 are skipped (nobody can be reached there).
    public static func decodeList(_ bytes: [UInt8], ipv6: Bool) -> [DHTNodeInfo]? {
        let size = entrySize(ipv6: ipv6)
        guard bytes.count % size == 0 else { return nil }
        var out: [DHTNodeInfo] = []
        out.reserveCapacity(bytes.count / size)
        var index = 0
        while index < bytes.count {
            let port = UInt16(bytes[index + size - 2]) << 8 | UInt16(bytes[index + size - 1])
            if let id = Digest20(bytes[index..<(index + 20)]),
               let endpoint = CompactPeer(address: Array(bytes[(index + 20)..<(index + size - 2)]), port: port) {
                out.append(DHTNodeInfo(id: id, endpoint: endpoint))
            }
            index += size
        }
        return out
    }

    public var description: String { "\(id.hex.prefix(8))@\(endpoint)" }
}
