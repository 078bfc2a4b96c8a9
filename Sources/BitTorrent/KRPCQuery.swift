/// A KRPC query (`y` = `q`): the sender's node id, the method with its arguments, and the
/// address families the sender wants nodes for (BEP 32 `want`).
public struct KRPCQuery: Hashable, Sendable {
    public enum Method: Hashable, Sendable {
        case ping
        case findNode(target: Digest20)
        case getPeers(infoHash: InfoHash)
        /// `implied_port`: the peer's port is the query's source port, not `port`.
        case announcePeer(infoHash: InfoHash, port: UInt16, impliedPort: Bool, token: [UInt8])
        /// A method this node does not know (answered with error 204), by name.
        case unknown([UInt8])

        /// The `q` value.
        public var name: [UInt8] {
            switch self {
            case .ping: Array("ping".utf8)
            case .findNode: Array("find_node".utf8)
            case .getPeers: Array("get_peers".utf8)
            case .announcePeer: Array("announce_peer".utf8)
            case .unknown(let name): name
            }
        }
    }

    /// BEP 32 `want`: which node lists the querier asks for.
    public struct Want: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let ipv4 = Want(rawValue: 1)
        public static let ipv6 = Want(rawValue: 2)
    }

    /// `id`: the querier's node id.
    public var sender: Digest20
    public var method: Method
    /// Empty when the query carries no `want` (the answer then follows the query's family).
    public var want: Want

    public init(sender: Digest20, method: Method, want: Want = []) {
        self.sender = sender
        self.method = method
        self.want = want
    }

    /// The `a` dictionary.
    var arguments: BDictionary {
        var arguments = BDictionary()
        arguments["id"] = .bytes(sender.bytes)
        switch method {
        case .ping, .unknown: break
        case .findNode(let target): arguments["target"] = .bytes(target.bytes)
        case .getPeers(let infoHash): arguments["info_hash"] = .bytes(infoHash.bytes)
        case .announcePeer(let infoHash, let port, let impliedPort, let token):
            arguments["info_hash"] = .bytes(infoHash.bytes)
            arguments["port"] = .integer(Int64(port))
            if impliedPort { arguments["implied_port"] = 1 }
            arguments["token"] = .bytes(token)
        }
        var families: [BValue] = []
        if want.contains(.ipv4) { families.append("n4") }
        if want.contains(.ipv6) { families.append("n6") }
        if !families.isEmpty { arguments["want"] = .list(families) }
        return arguments
    }
}
