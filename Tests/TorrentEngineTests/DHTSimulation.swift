import BitTorrent

@testable import TorrentEngine

/// Several DHT nodes wired together by a simulated network with a virtual clock: every
/// datagram a node sends arrives `latency` later at the node at its destination (or is
/// lost when nobody is there or the destination is down); nodes tick at their timers.
struct DHTSimulation {
    var nodes: [CompactPeer: DHTNode] = [:]
    var down = Set<CompactPeer>()
    var now: Int64 = 1_000_000_000
    let latency: Int64 = 5_000_000
    private var queue: [(at: Int64, bytes: [UInt8], from: CompactPeer, to: CompactPeer)] = []
    /// Peers each node was told about, per torrent.
    var found: [CompactPeer: [InfoHash: [CompactPeer]]] = [:]
    /// Lookups each node finished: torrent, peers found, nodes that answered.
    var finished: [CompactPeer: [(InfoHash, Int, Int)]] = [:]
    /// Every datagram sent: sender, destination, size.
    var log: [(from: CompactPeer, to: CompactPeer, bytes: [UInt8])] = []

    static func endpoint(_ index: Int, port: UInt16 = 6881) -> CompactPeer {
        CompactPeer(address: [10, 1, UInt8(index / 250), UInt8(index % 250 + 1)], port: port)!
    }

    mutating func add(_ endpoint: CompactPeer, routers: [CompactPeer] = [], readOnly: Bool = false,
                      saved: DHTSavedState? = nil, seed: UInt64) {
        var configuration = DHTNode.Configuration()
        configuration.routers = routers
        configuration.readOnly = readOnly
        configuration.seed = seed
        nodes[endpoint] = DHTNode(configuration: configuration, saved: saved, now: now)
    }

    /// Runs `body` on a node (given the current time), then sends what it queued.
    mutating func with(_ endpoint: CompactPeer, _ body: (inout DHTNode, Int64) -> Void) {
        let now = now
        body(&nodes[endpoint]!, now)
        drain(endpoint)
    }

    mutating func drain(_ endpoint: CompactPeer) {
        guard var node = nodes[endpoint] else { return }
        let outputs = node.takeOutputs()
        nodes[endpoint] = node
        for output in outputs {
            switch output {
            case .send(let bytes, let to):
                log.append((endpoint, to, bytes))
                queue.append((now + latency, bytes, endpoint, to))
            case .peers(let hash, let peers):
                found[endpoint, default: [:]][hash, default: []] += peers
            case .lookupFinished(let hash, let peers, let answered):
                finished[endpoint, default: []].append((hash, peers, answered))
            }
        }
    }

    /// Delivers a datagram as if `from` had sent it (a test playing a hostile node).
    mutating func inject(_ bytes: [UInt8], from: CompactPeer, to: CompactPeer) {
        queue.append((now + latency, bytes, from, to))
    }

    mutating func run(for duration: Int64) {
        let end = now + duration
        while true {
            let nextDelivery = queue.map(\.at).min() ?? .max
            let nextTimer = nodes.filter { !down.contains($0.key) }.map(\.value.nextTimer).min() ?? .max
            let next = min(nextDelivery, nextTimer)
            guard next <= end else { break }
            now = max(now, next)
            let due = queue.filter { $0.at <= now }
            queue.removeAll { $0.at <= now }
            for datagram in due where nodes[datagram.to] != nil && !down.contains(datagram.to) {
                nodes[datagram.to]!.received(datagram.bytes, from: datagram.from, now: now)
                drain(datagram.to)
            }
            for endpoint in Array(nodes.keys) where !down.contains(endpoint) && nodes[endpoint]!.nextTimer <= now {
                nodes[endpoint]!.tick(now: now)
                drain(endpoint)
            }
        }
        now = end
    }

    static let second: Int64 = 1_000_000_000
}
