import BitTorrent

/// A Kademlia routing table of one address family (BEP 5): buckets of at most k nodes by
/// the length of the prefix a node id shares with ours. Only the last bucket, the one our
/// own id falls in, splits; every other bucket keeps the nodes that answered first and
/// holds newcomers in a small replacement cache until a member goes bad.
struct RoutingTable {
    /// Nodes per bucket (BEP 5's k).
    static let bucketSize = 8
    /// Replacement candidates kept per bucket.
    static let replacementsPerBucket = 8
    /// A node that has not answered for this long is questionable (BEP 5: 15 minutes).
    static let goodFor: Int64 = 15 * 60 * 1_000_000_000
    /// Failed queries in a row after which a node is bad and replaced.
    static let failuresToBad = 2

    enum Status: Equatable { case good, questionable, bad }

    struct Entry: Equatable {
        var info: DHTNodeInfo
        /// When it last answered one of our queries (nil: it never did).
        var lastReply: Int64?
        /// When we last heard from it at all (a query or an answer).
        var lastSeen: Int64
        var failures = 0

        func status(now: Int64) -> Status {
            if failures >= RoutingTable.failuresToBad { return .bad }
            if let lastReply, now - lastReply < RoutingTable.goodFor { return .good }
            return .questionable
        }
    }

    struct Bucket {
        var nodes: [Entry] = []
        var replacements: [Entry] = []
        /// When a member last answered or was added (a bucket idle for 15 minutes is refreshed).
        var lastChanged: Int64
    }

    private(set) var ownID: Digest20
    private(set) var buckets: [Bucket]

    init(ownID: Digest20, now: Int64) {
        self.ownID = ownID
        buckets = [Bucket(lastChanged: now)]
    }

    var count: Int { buckets.reduce(0) { $0 + $1.nodes.count } }

    var entries: [Entry] { buckets.flatMap(\.nodes) }

    func bucketIndex(for id: Digest20) -> Int { min(id.commonPrefixLength(with: ownID), buckets.count - 1) }

    func entry(at endpoint: CompactPeer) -> Entry? {
        for bucket in buckets { if let entry = bucket.nodes.first(where: { $0.info.endpoint == endpoint }) { return entry } }
        return nil
    }

    /// What `heard` did with a node.
    enum Outcome: Equatable {
        case added, updated, cached, ignored
    }

    /// Records that `info` was heard from: an answer to our query (`replied`) or a query
    /// of its own. A node claiming a known endpoint under a new id, or a known id from a new
    /// endpoint, is ignored while the old one is not bad.
    @discardableResult
    mutating func heard(_ info: DHTNodeInfo, replied: Bool, now: Int64) -> Outcome {
        guard info.id != ownID else { return .ignored }
        var index = bucketIndex(for: info.id)
        if let slot = buckets[index].nodes.firstIndex(where: { $0.info.id == info.id }) {
            guard buckets[index].nodes[slot].info.endpoint == info.endpoint else {
                guard buckets[index].nodes[slot].status(now: now) == .bad else { return .ignored }
                buckets[index].nodes.remove(at: slot)
                return heard(info, replied: replied, now: now)
            }
            buckets[index].nodes[slot].lastSeen = now
            if replied {
                buckets[index].nodes[slot].lastReply = now
                buckets[index].nodes[slot].failures = 0
                buckets[index].lastChanged = now
            }
            return .updated
        }
        if let other = entry(at: info.endpoint) {
            guard other.status(now: now) == .bad else { return .ignored }
            remove(other.info)
            index = bucketIndex(for: info.id)
        }
        let entry = Entry(info: info, lastReply: replied ? now : nil, lastSeen: now)
        while true {
            if buckets[index].nodes.count < Self.bucketSize {
                buckets[index].nodes.append(entry)
                buckets[index].replacements.removeAll { $0.info.id == info.id }
                buckets[index].lastChanged = now
                return .added
            }
            guard index == buckets.count - 1, buckets.count < 160 else { break }
            split()
            index = bucketIndex(for: info.id)
        }
        // A full bucket: a bad member makes room; an answering node displaces one that never answered.
        if let bad = buckets[index].nodes.firstIndex(where: { $0.status(now: now) == .bad }) {
            buckets[index].nodes[bad] = entry
            buckets[index].lastChanged = now
            return .added
        }
        if replied, let unproven = buckets[index].nodes.firstIndex(where: { $0.lastReply == nil }) {
            buckets[index].nodes[unproven] = entry
            buckets[index].lastChanged = now
            return .added
        }
        var cache = buckets[index].replacements
        cache.removeAll { $0.info.id == info.id || $0.info.endpoint == info.endpoint }
        cache.append(entry)
        if cache.count > Self.replacementsPerBucket { cache.removeFirst() }
        buckets[index].replacements = cache
        return .cached
    }

    /// Moves the nodes that share one more bit with our id into a new last bucket.
    private mutating func split() {
        let last = buckets.count - 1
        var deeper = Bucket(lastChanged: buckets[last].lastChanged)
        let moves = { (entry: Entry) in entry.info.id.commonPrefixLength(with: self.ownID) > last }
        deeper.nodes = buckets[last].nodes.filter(moves)
        deeper.replacements = buckets[last].replacements.filter(moves)
        buckets[last].nodes.removeAll(where: moves)
        buckets[last].replacements.removeAll(where: moves)
        buckets.append(deeper)
    }

    /// A query to `endpoint` went unanswered. A node that goes bad gives its place to the
    /// newest replacement candidate.
    mutating func failed(_ endpoint: CompactPeer, now: Int64) {
        for index in buckets.indices {
            guard let slot = buckets[index].nodes.firstIndex(where: { $0.info.endpoint == endpoint }) else { continue }
            buckets[index].nodes[slot].failures += 1
            if buckets[index].nodes[slot].status(now: now) == .bad, let replacement = buckets[index].replacements.popLast() {
                buckets[index].nodes[slot] = replacement
                buckets[index].lastChanged = now
            }
            return
        }
    }

    mutating func remove(_ info: DHTNodeInfo) {
        let index = bucketIndex(for: info.id)
        buckets[index].nodes.removeAll { $0.info == info }
    }

    /// The `count` nodes closest to `target` that are not bad.
    func closest(to target: Digest20, count: Int = RoutingTable.bucketSize, now: Int64) -> [DHTNodeInfo] {
        entries.filter { $0.status(now: now) != .bad }
            .map { (info: $0.info, distance: $0.info.id.distance(to: target)) }
            .sorted { $0.distance < $1.distance }
            .prefix(count).map(\.info)
    }

    /// Nodes to ping: questionable ones, least recently seen first.
    func questionable(now: Int64, limit: Int) -> [DHTNodeInfo] {
        entries.filter { $0.status(now: now) == .questionable }.sorted { $0.lastSeen < $1.lastSeen }.prefix(limit).map(\.info)
    }

    /// Buckets unchanged for 15 minutes, as targets to look up (a random id in each).
    func staleBuckets(now: Int64) -> [Int] {
        buckets.indices.filter { now - buckets[$0].lastChanged >= Self.goodFor }
    }

    mutating func touchBucket(_ index: Int, now: Int64) {
        if buckets.indices.contains(index) { buckets[index].lastChanged = now }
    }
}
