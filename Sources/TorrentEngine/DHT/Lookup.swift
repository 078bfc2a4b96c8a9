import BitTorrent

/// One iterative Kademlia lookup (BEP 5): the candidates known so far ordered by distance
/// to the target, at most α queries in flight, finished when the k closest candidates that
/// have not failed have all answered (or nobody is left to ask).
struct Lookup {
    /// Parallel queries (Kademlia's α).
    static let parallelism = 3
    /// Candidates kept: the closest ones; farther newcomers are forgotten.
    static let maxCandidates = 64

    enum Kind: Equatable {
        /// Nodes near the target (bootstrap, bucket refresh).
        case findNode
        /// Peers of a torrent; with a port, announced to the closest nodes afterwards.
        case getPeers(announcePort: UInt16?)
    }

    enum State: Equatable { case fresh, inFlight, replied, failed }

    struct Candidate {
        var endpoint: CompactPeer
        /// Nil for a bootstrap router, whose id is unknown until it answers.
        var id: Digest20?
        var distance: Digest20
        var state: State = .fresh
        var token: [UInt8]?
    }

    let target: Digest20
    let kind: Kind
    let started: Int64
    private(set) var candidates: [Candidate] = []
    /// Peers found, without duplicates.
    private(set) var peers: [CompactPeer] = []
    private var knownPeers = Set<CompactPeer>()

    init(target: Digest20, kind: Kind, started: Int64) {
        self.target = target
        self.kind = kind
        self.started = started
    }

    private static let farthest = Digest20([UInt8](repeating: 0xFF, count: 20))!

    /// Adds nodes to ask; routers (no id) sort last.
    mutating func add(_ nodes: [DHTNodeInfo]) {
        for node in nodes where !candidates.contains(where: { $0.endpoint == node.endpoint || $0.id == node.id }) {
            candidates.append(Candidate(endpoint: node.endpoint, id: node.id, distance: node.id.distance(to: target)))
        }
        trim()
    }

    mutating func addRouters(_ routers: [CompactPeer]) {
        for router in routers where !candidates.contains(where: { $0.endpoint == router }) {
            candidates.append(Candidate(endpoint: router, id: nil, distance: Self.farthest))
        }
    }

    private mutating func trim() {
        candidates.sort { $0.distance < $1.distance }
        var kept = 0
        candidates.removeAll { candidate in
            // Candidates already asked stay: their answers are still awaited or recorded.
            if candidate.state != .fresh || candidate.id == nil { return false }
            kept += 1
            return kept > Self.maxCandidates
        }
    }

    var inFlight: Int { candidates.count { $0.state == .inFlight } }

    /// Marks up to α minus those in flight of the closest fresh candidates as asked.
    mutating func next() -> [CompactPeer] {
        var out: [CompactPeer] = []
        var slots = Self.parallelism - inFlight
        for index in candidates.indices where slots > 0 && candidates[index].state == .fresh {
            candidates[index].state = .inFlight
            out.append(candidates[index].endpoint)
            slots -= 1
        }
        return out
    }

    /// An answer from `endpoint`: its id, the closer nodes it gave, peers and token.
    mutating func replied(_ endpoint: CompactPeer, response: KRPCResponse) {
        guard let index = candidates.firstIndex(where: { $0.endpoint == endpoint }) else { return }
        candidates[index].state = .replied
        candidates[index].token = response.token
        if candidates[index].id == nil {
            // A router: it answered, but its place in the order stays last.
            candidates[index].id = response.sender
        }
        for peer in response.values where knownPeers.insert(peer).inserted { peers.append(peer) }
        add((response.nodes + response.nodes6).filter { $0.id != response.sender })
    }

    mutating func failed(_ endpoint: CompactPeer) {
        guard let index = candidates.firstIndex(where: { $0.endpoint == endpoint }) else { return }
        candidates[index].state = .failed
    }

    /// The k closest non-router candidates that did not fail have all answered, or nobody
    /// is left to ask and nothing is in flight.
    var isDone: Bool {
        let closest = candidates.filter { $0.state != .failed && $0.distance != Self.farthest }.prefix(RoutingTable.bucketSize)
        if !closest.isEmpty && closest.allSatisfy({ $0.state == .replied }) { return true }
        return !candidates.contains { $0.state == .fresh || $0.state == .inFlight }
    }

    /// The k closest nodes that answered with a write token (where to announce).
    var announceTargets: [(endpoint: CompactPeer, token: [UInt8])] {
        candidates.filter { $0.state == .replied && $0.distance != Self.farthest }.prefix(RoutingTable.bucketSize)
            .compactMap { candidate in candidate.token.map { (candidate.endpoint, $0) } }
    }

    var answered: Int { candidates.count { $0.state == .replied } }
}
