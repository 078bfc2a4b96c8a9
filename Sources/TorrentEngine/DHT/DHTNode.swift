import BitTorrent

/// A mainline DHT node (BEP 5, with BEP 32 IPv6 nodes, BEP 42 node ids and BEP 43
/// read-only mode) as a sans-I/O state machine: datagrams and the time come in
/// (`received(_:from:now:)`, `tick(now:)`), datagrams to send, peers found and finished
/// lookups go out (`takeOutputs()`), and `nextTimer` says when to tick again.
struct DHTNode {
    struct Configuration: Sendable {
        /// Bootstrap routers: asked while the table is nearly empty, never put in it.
        var routers: [CompactPeer] = []
        /// BEP 43: ask, never answer, and tell others to keep us out of their tables.
        var readOnly = false
        /// Keep IPv6 nodes (BEP 32) and ask for them with `want`.
        var ipv6 = true
        var seed: UInt64 = .random(in: 0...UInt64.max)
    }

    enum Output: Equatable, Sendable {
        case send([UInt8], to: CompactPeer)
        /// Peers of a torrent, as each answer brings them (new ones only, per lookup).
        case peers(InfoHash, [CompactPeer])
        /// A get_peers lookup ended (and was announced to, if asked).
        case lookupFinished(InfoHash, peers: Int, answered: Int)
    }

    /// An unanswered query counts as failed after this long.
    static let queryTimeout: Int64 = 2_000_000_000
    /// Queries awaiting an answer at once; beyond, lookups wait.
    static let maxTransactions = 512
    /// Lookups under way at once.
    static let maxLookups = 32
    /// No answer is larger than this many times its query, nor than `maxReplySize`.
    static let maxReplyFactor = 8
    static let maxReplySize = 1400
    /// Peers put in one get_peers answer at most (fewer when the size bounds say so).
    static let maxValuesPerReply = 50
    /// Period of the housekeeping: pings of questionable nodes, bucket refresh, expiry.
    static let housekeepingInterval: Int64 = 5_000_000_000
    static let pingsPerHousekeeping = 8
    /// A table with fewer nodes than this asks the routers again, at most this often.
    static let rebootstrapInterval: Int64 = 30_000_000_000
    /// Distinct nodes that must report the same external address before our id follows it.
    static let externalAddressVotes = 3
    /// `v`: torrentfs 0.1.
    static let version: [UInt8] = Array("TF".utf8) + [0, 1]

    struct Transaction {
        enum Purpose: Equatable { case lookup(Int), ping, announce }
        var endpoint: CompactPeer
        var deadline: Int64
        var purpose: Purpose
    }

    private(set) var configuration: Configuration
    private(set) var id: Digest20
    private(set) var table4: RoutingTable
    private(set) var table6: RoutingTable
    private(set) var lookups: [Int: Lookup] = [:]
    private var nextLookupID = 0
    private(set) var transactions: [UInt16: Transaction] = [:]
    private var nextTransaction: UInt16
    var tokens: WriteTokens
    var store = PeerStore()
    var limiter = QueryRateLimiter()
    var random: DHTRandom
    var outputs: [Output] = []
    private var nextHousekeeping: Int64
    private var lastBootstrap: Int64?
    private var addressVotes: [[UInt8]: Set<[UInt8]>] = [:]
    /// Our address as the DHT sees it (BEP 42), once enough nodes agree.
    private(set) var externalAddress: [UInt8]?

    init(configuration: Configuration, saved: DHTSavedState? = nil, now: Int64) {
        self.configuration = configuration
        var random = DHTRandom(seed: configuration.seed)
        id = saved?.id ?? Digest20.random(using: &random)
        nextTransaction = UInt16.random(in: 0...UInt16.max, using: &random)
        tokens = WriteTokens(now: now, using: &random)
        self.random = random
        table4 = RoutingTable(ownID: id, now: now)
        table6 = RoutingTable(ownID: id, now: now)
        nextHousekeeping = now + Self.housekeepingInterval
        for node in saved?.nodes ?? [] { heard(node, replied: false, now: now) }
    }

    var nodeCount: (ipv4: Int, ipv6: Int) { (table4.count, table6.count) }
    var lookupsInFlight: Int { lookups.count }

    /// What to save: our id and the table's nodes, those that answered first.
    var savedState: DHTSavedState {
        let entries = (table4.entries + table6.entries).sorted { ($0.lastReply ?? 0) > ($1.lastReply ?? 0) }
        return DHTSavedState(id: id, nodes: entries.map(\.info))
    }

    mutating func takeOutputs() -> [Output] {
        defer { outputs.removeAll() }
        return outputs
    }

    /// When `tick` is next due.
    var nextTimer: Int64 {
        transactions.values.reduce(nextHousekeeping) { min($0, $1.deadline) }
    }

    /// Joins the DHT: a lookup of our own id through the saved nodes and the routers.
    mutating func start(now: Int64) {
        bootstrap(now: now)
    }

    /// Routers known later (names resolved): a table still nearly empty asks them at once.
    mutating func addRouters(_ routers: [CompactPeer], now: Int64) {
        let new = routers.filter { !configuration.routers.contains($0) }
        guard !new.isEmpty else { return }
        configuration.routers += new
        if table4.count + table6.count < RoutingTable.bucketSize { bootstrap(now: now) }
    }

    private mutating func bootstrap(now: Int64) {
        lastBootstrap = now
        startLookup(target: id, kind: .findNode, now: now)
    }

    /// Starts looking for peers of `infoHash` (announcing `announcePort` to the closest
    /// nodes at the end, if given). False when too many lookups are under way; a lookup
    /// of the same torrent already under way is not started twice.
    @discardableResult
    mutating func getPeers(_ infoHash: InfoHash, announcePort: UInt16?, now: Int64) -> Bool {
        if lookups.values.contains(where: { $0.target == infoHash && $0.kind != .findNode }) { return true }
        return startLookup(target: infoHash, kind: .getPeers(announcePort: configuration.readOnly ? nil : announcePort),
                           now: now)
    }

    @discardableResult
    private mutating func startLookup(target: Digest20, kind: Lookup.Kind, now: Int64) -> Bool {
        guard lookups.count < Self.maxLookups else { return false }
        var lookup = Lookup(target: target, kind: kind, started: now)
        lookup.add(table4.closest(to: target, count: Lookup.maxCandidates, now: now))
        if configuration.ipv6 { lookup.add(table6.closest(to: target, count: Lookup.maxCandidates, now: now)) }
        if table4.count + table6.count < RoutingTable.bucketSize { lookup.addRouters(configuration.routers) }
        let lookupID = nextLookupID
        nextLookupID += 1
        lookups[lookupID] = lookup
        advance(lookupID, now: now)
        return true
    }

    // MARK: Datagrams in

    /// A datagram from `sender`. Anything malformed, oversized, unexpected or over the
    /// sender's rate is dropped without an answer.
    mutating func received(_ bytes: [UInt8], from sender: CompactPeer, now: Int64) {
        guard bytes.count <= KRPCLimits.maxDatagramSize, let message = try? KRPCMessage(decoding: bytes) else { return }
        guard sender.address.count == 4 || configuration.ipv6 else { return }
        switch message.body {
        case .query(let query):
            answer(query, of: message, size: bytes.count, from: sender, now: now)
        case .response(let response):
            guard let transaction = takeTransaction(message.transaction, from: sender) else { return }
            responded(response, to: transaction, requester: message.requesterAddress, from: sender, now: now)
        case .error:
            guard let transaction = takeTransaction(message.transaction, from: sender) else { return }
            if case .lookup(let lookupID) = transaction.purpose {
                lookups[lookupID]?.failed(sender)
                advance(lookupID, now: now)
            }
        }
    }

    private mutating func takeTransaction(_ bytes: [UInt8], from sender: CompactPeer) -> Transaction? {
        guard bytes.count == 2 else { return nil }
        let key = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        guard let transaction = transactions[key], transaction.endpoint == sender else { return nil }
        transactions[key] = nil
        return transaction
    }

    mutating func heard(_ node: DHTNodeInfo, replied: Bool, now: Int64) {
        if node.endpoint.address.count == 4 {
            table4.heard(node, replied: replied, now: now)
        } else if configuration.ipv6 {
            table6.heard(node, replied: replied, now: now)
        }
    }

    private mutating func responded(_ response: KRPCResponse, to transaction: Transaction, requester: CompactPeer?,
                                    from sender: CompactPeer, now: Int64) {
        if !configuration.routers.contains(sender) {
            heard(DHTNodeInfo(id: response.sender, endpoint: sender), replied: true, now: now)
        }
        if let requester { vote(requester.address, by: sender.address, now: now) }
        guard case .lookup(let lookupID) = transaction.purpose, var lookup = lookups[lookupID] else { return }
        let before = lookup.peers.count
        // Others list us too: asking ourselves would only wait for a timeout.
        var response = response
        response.nodes.removeAll { $0.id == id }
        response.nodes6.removeAll { $0.id == id }
        lookup.replied(sender, response: response)
        lookups[lookupID] = lookup
        if lookup.peers.count > before {
            outputs.append(.peers(lookup.target, Array(lookup.peers[before...])))
        }
        advance(lookupID, now: now)
    }

    // MARK: Queries out

    private mutating func advance(_ lookupID: Int, now: Int64) {
        guard var lookup = lookups[lookupID] else { return }
        while !lookup.isDone {
            let targets = lookup.next()
            if targets.isEmpty { break }
            for endpoint in targets {
                let method: KRPCQuery.Method = lookup.kind == .findNode
                    ? .findNode(target: lookup.target) : .getPeers(infoHash: lookup.target)
                if !sendQuery(method, to: endpoint, purpose: .lookup(lookupID), now: now) { lookup.failed(endpoint) }
            }
        }
        lookups[lookupID] = lookup
        if lookup.isDone && lookup.inFlight == 0 { finish(lookupID, now: now) }
    }

    private mutating func finish(_ lookupID: Int, now: Int64) {
        guard let lookup = lookups.removeValue(forKey: lookupID) else { return }
        guard case .getPeers(let port) = lookup.kind else { return }
        if let port {
            for (endpoint, token) in lookup.announceTargets {
                let method = KRPCQuery.Method.announcePeer(infoHash: lookup.target, port: port, impliedPort: false, token: token)
                sendQuery(method, to: endpoint, purpose: .announce, now: now)
            }
        }
        outputs.append(.lookupFinished(lookup.target, peers: lookup.peers.count, answered: lookup.answered))
    }

    @discardableResult
    private mutating func sendQuery(_ method: KRPCQuery.Method, to endpoint: CompactPeer,
                                    purpose: Transaction.Purpose, now: Int64) -> Bool {
        guard transactions.count < Self.maxTransactions else { return false }
        while transactions[nextTransaction] != nil { nextTransaction &+= 1 }
        let key = nextTransaction
        nextTransaction &+= 1
        var want: KRPCQuery.Want = [.ipv4]
        if configuration.ipv6 { want.insert(.ipv6) }
        let message = KRPCMessage(transaction: [UInt8(key >> 8), UInt8(key & 0xFF)],
                                  body: .query(KRPCQuery(sender: id, method: method, want: want)),
                                  readOnly: configuration.readOnly, version: Self.version)
        transactions[key] = Transaction(endpoint: endpoint, deadline: now + Self.queryTimeout, purpose: purpose)
        outputs.append(.send(message.encoded, to: endpoint))
        return true
    }

    // MARK: Time

    mutating func tick(now: Int64) {
        for (key, transaction) in transactions where transaction.deadline <= now {
            transactions[key] = nil
            if transaction.endpoint.address.count == 4 {
                table4.failed(transaction.endpoint, now: now)
            } else {
                table6.failed(transaction.endpoint, now: now)
            }
            if case .lookup(let lookupID) = transaction.purpose {
                lookups[lookupID]?.failed(transaction.endpoint)
                advance(lookupID, now: now)
            }
        }
        guard now >= nextHousekeeping else { return }
        nextHousekeeping = now + Self.housekeepingInterval
        tokens.rotateIfDue(now: now, using: &random)
        store.expire(now: now)
        let questionable = table4.questionable(now: now, limit: Self.pingsPerHousekeeping)
            + table6.questionable(now: now, limit: Self.pingsPerHousekeeping)
        for node in questionable.prefix(Self.pingsPerHousekeeping)
        where !transactions.values.contains(where: { $0.endpoint == node.endpoint }) {
            sendQuery(.ping, to: node.endpoint, purpose: .ping, now: now)
        }
        if table4.count + table6.count < RoutingTable.bucketSize, !configuration.routers.isEmpty || table4.count > 0,
           now - (lastBootstrap ?? .min / 2) >= Self.rebootstrapInterval {
            bootstrap(now: now)
        }
        for (index, table) in [table4, table6].enumerated() {
            guard let bucket = table.staleBuckets(now: now).first, table.count > 0 else { continue }
            if index == 0 { table4.touchBucket(bucket, now: now) } else { table6.touchBucket(bucket, now: now) }
            startLookup(target: id.randomID(sharingPrefix: bucket, using: &random), kind: .findNode, now: now)
        }
    }

    // MARK: BEP 42

    /// A node (or a peer, or the gateway) says our address is `ip`. Once enough distinct
    /// reporters agree, that is our external address, and an id not valid for it under
    /// BEP 42 is replaced (the tables are rebuilt around the new id).
    mutating func vote(_ ip: [UInt8], by voter: [UInt8], now: Int64) {
        guard ip.count == 4 || ip.count == 16, ip != externalAddress else { return }
        if addressVotes[ip] == nil && addressVotes.count >= 16 { addressVotes.removeAll() }
        addressVotes[ip, default: []].insert(voter)
        guard addressVotes[ip]!.count >= Self.externalAddressVotes else { return }
        externalAddress = ip
        addressVotes.removeAll()
        guard !NodeIDRule.isExempt(ip), !NodeIDRule.isValid(id, for: ip) else { return }
        id = NodeIDRule.id(for: ip, using: &random)
        let old = table4.entries + table6.entries
        table4 = RoutingTable(ownID: id, now: now)
        table6 = RoutingTable(ownID: id, now: now)
        for entry in old { heard(entry.info, replied: entry.lastReply != nil, now: now) }
    }
}

