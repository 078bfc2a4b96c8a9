/// The DHT in the status document (`dht`; absent when the DHT is off).
public struct DHTStatus: Sendable, Codable, Hashable {
    /// Our node id, 40 hex digits.
    public var nodeID: String
    /// Nodes in the IPv4 and IPv6 routing tables.
    public var nodes: Int
    public var nodes6: Int
    /// Lookups under way.
    public var lookups: Int
    /// Peers the DHT gave for our torrents, in all.
    public var peersFound: Int
    /// BEP 43 read-only mode.
    public var readOnly: Bool

    public init(nodeID: String, nodes: Int, nodes6: Int, lookups: Int, peersFound: Int, readOnly: Bool) {
        self.nodeID = nodeID
        self.nodes = nodes
        self.nodes6 = nodes6
        self.lookups = lookups
        self.peersFound = peersFound
        self.readOnly = readOnly
    }
}
