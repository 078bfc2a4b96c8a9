import BitTorrent

/// What a DHT node keeps across restarts (a small bencoded file in the state directory):
/// its id and the nodes of its tables, so a restart needs no bootstrap router.
struct DHTSavedState: Equatable, Sendable {
    /// Nodes saved per address family.
    static let maxNodes = 200
    /// Largest file read back.
    static let maxFileSize = 64 * 1024

    var id: Digest20
    var nodes: [DHTNodeInfo]

    init(id: Digest20, nodes: [DHTNodeInfo]) {
        self.id = id
        self.nodes = nodes
    }

    var encoded: [UInt8] {
        let v4 = nodes.filter { $0.endpoint.address.count == 4 }.prefix(Self.maxNodes)
        let v6 = nodes.filter { $0.endpoint.address.count == 16 }.prefix(Self.maxNodes)
        return Bencode.encode(["id": .bytes(id.bytes), "nodes": .bytes(v4.flatMap(\.compact)),
                               "nodes6": .bytes(v6.flatMap(\.compact))])
    }

    /// Nil for anything but a file this type wrote (a damaged file is ignored, not trusted).
    init?(decoding bytes: [UInt8]) {
        guard bytes.count <= Self.maxFileSize,
              let value = try? Bencode.decode(bytes, limits: BencodeLimits(maxDepth: 2, maxTokens: 16, maxInputSize: Self.maxFileSize)),
              let id = value["id"]?.bytesValue.flatMap({ Digest20($0) }),
              let nodes = DHTNodeInfo.decodeList(value["nodes"]?.bytesValue ?? [], ipv6: false),
              let nodes6 = DHTNodeInfo.decodeList(value["nodes6"]?.bytesValue ?? [], ipv6: true) else { return nil }
        self.id = id
        self.nodes = Array(nodes.prefix(Self.maxNodes)) + Array(nodes6.prefix(Self.maxNodes))
    }
}
