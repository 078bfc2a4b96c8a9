import BitTorrent
import TestSupport
import Testing

@testable import TorrentEngine

/// DHT nodes driven against each other through `DHTSimulation` (virtual clock, no sockets).
@Suite("DHT node")
struct DHTNodeTests {
    static let second = DHTSimulation.second
    static let hash = InfoHash(string: "0123456789abcdef0123456789abcdef01234567")!

    /// `count` nodes bootstrapped through node 0, run until their tables have settled.
    static func network(_ count: Int) -> DHTSimulation {
        var sim = DHTSimulation()
        let router = DHTSimulation.endpoint(0)
        sim.add(router, seed: 1)
        for index in 1..<count { sim.add(DHTSimulation.endpoint(index), routers: [router], seed: UInt64(index + 1)) }
        for endpoint in Array(sim.nodes.keys) { sim.with(endpoint) { $0.start(now: $1) } }
        sim.run(for: 20 * second)
        return sim
    }

    @Test("lookups converge: an announce lands on the k nodes closest to the info hash, get_peers finds it")
    func announceThenGetPeers() {
        var sim = Self.network(60)
        let seeder = DHTSimulation.endpoint(7), leecher = DHTSimulation.endpoint(42)
        sim.with(seeder) { node, now in
            let started = node.getPeers(Self.hash, announcePort: 7000, now: now)
            #expect(started)
        }
        sim.run(for: 5 * Self.second)
        let (_, _, answered) = sim.finished[seeder]!.first { $0.0 == Self.hash }!
        #expect(answered >= RoutingTable.bucketSize)
        let holders = Set(sim.nodes.filter { $0.value.store.peerCount > 0 }.map(\.key))
        let closest = Set(sim.nodes.filter { $0.key != seeder }
            .sorted { $0.value.id.distance(to: Self.hash) < $1.value.id.distance(to: Self.hash) }
            .prefix(RoutingTable.bucketSize).map(\.key))
        #expect(holders == closest)

        sim.with(leecher) { _ = $0.getPeers(Self.hash, announcePort: nil, now: $1) }
        sim.run(for: 5 * Self.second)
        #expect(sim.found[leecher]?[Self.hash] == [CompactPeer(address: seeder.address, port: 7000)!])
        #expect(sim.nodes[leecher]!.lookupsInFlight == 0)
    }

    @Test("a lookup never asks ourselves when others list us, so it ends without waiting for a timeout")
    func lookupSkipsSelf() {
        var sim = Self.network(30)
        let asker = DHTSimulation.endpoint(3)
        let before = sim.log.count
        sim.with(asker) { _ = $0.getPeers(Self.hash, announcePort: nil, now: $1) }
        // Less than one query timeout: a query to ourselves would hold the lookup that long.
        sim.run(for: DHTNode.queryTimeout - Self.second / 10)
        #expect(!sim.log[before...].contains { $0.from == asker && $0.to == asker })
        #expect(sim.finished[asker]?.contains { $0.0 == Self.hash } == true)
        #expect(sim.nodes[asker]!.lookupsInFlight == 0)
    }

    @Test("every node of a settled network knows at least k others, and its buckets obey the rules")
    func tablesFill() {
        let sim = Self.network(60)
        for node in sim.nodes.values {
            #expect(node.nodeCount.ipv4 >= RoutingTable.bucketSize)
            #expect(node.table4.buckets.allSatisfy { $0.nodes.count <= RoutingTable.bucketSize })
        }
    }

    @Test("write tokens: bound to the requester's address, valid across one rotation, not two")
    func tokens() {
        var random = SplitMix64(seed: 3)
        var tokens = WriteTokens(now: 0, using: &random)
        let token = tokens.token(for: [10, 0, 0, 1])
        #expect(tokens.isValid(token, for: [10, 0, 0, 1]))
        #expect(!tokens.isValid(token, for: [10, 0, 0, 2]))
        tokens.rotateIfDue(now: WriteTokens.rotation, using: &random)
        #expect(tokens.isValid(token, for: [10, 0, 0, 1]))
        tokens.rotateIfDue(now: 2 * WriteTokens.rotation, using: &random)
        #expect(!tokens.isValid(token, for: [10, 0, 0, 1]))
    }

    @Test("an announce_peer with a wrong token is refused with error 203 and stores nothing")
    func badToken() throws {
        var sim = DHTSimulation()
        let node = DHTSimulation.endpoint(1), attacker = DHTSimulation.endpoint(2)
        sim.add(node, seed: 1)
        let query = KRPCMessage(transaction: [1], body: .query(KRPCQuery(
            sender: Digest20([UInt8](repeating: 5, count: 20))!,
            method: .announcePeer(infoHash: Self.hash, port: 9, impliedPort: false, token: [1, 2, 3, 4, 5, 6, 7, 8]))))
        sim.inject(query.encoded, from: attacker, to: node)
        sim.run(for: Self.second)
        #expect(sim.nodes[node]!.store.peerCount == 0)
        let reply = try KRPCMessage(decoding: sim.log.last { $0.to == attacker }!.bytes)
        #expect(reply.body == .error(code: 203, message: "bad token"))
    }

    @Test("announce_peer with implied_port stores the query's source port")
    func impliedPort() throws {
        var sim = DHTSimulation()
        let node = DHTSimulation.endpoint(1), peer = DHTSimulation.endpoint(2, port: 5555)
        sim.add(node, seed: 1)
        let sender = Digest20([UInt8](repeating: 5, count: 20))!
        sim.inject(KRPCMessage(transaction: [1], body: .query(KRPCQuery(sender: sender, method: .getPeers(infoHash: Self.hash))))
            .encoded, from: peer, to: node)
        sim.run(for: Self.second)
        guard case .response(let response) = try KRPCMessage(decoding: sim.log.last!.bytes).body, let token = response.token
        else { Issue.record("no token"); return }
        sim.inject(KRPCMessage(transaction: [2], body: .query(KRPCQuery(
            sender: sender, method: .announcePeer(infoHash: Self.hash, port: 1, impliedPort: true, token: token)))).encoded,
            from: peer, to: node)
        sim.run(for: Self.second)
        var random = SplitMix64(seed: 1)
        #expect(sim.nodes[node]!.store.peers(Self.hash, ipv6: false, limit: 10, now: sim.now, using: &random) == [peer])
    }

    @Test("a restart from the saved table reaches the DHT without any router")
    func restartFromSavedTable() {
        var sim = Self.network(30)
        let endpoint = DHTSimulation.endpoint(5)
        sim.with(DHTSimulation.endpoint(9)) { _ = $0.getPeers(Self.hash, announcePort: 6000, now: $1) }
        sim.run(for: 5 * Self.second)
        let saved = DHTSavedState(decoding: sim.nodes[endpoint]!.savedState.encoded)!
        #expect(saved.id == sim.nodes[endpoint]!.id && saved.nodes.count == sim.nodes[endpoint]!.nodeCount.ipv4)
        sim.down.insert(DHTSimulation.endpoint(0))  // the router is gone
        sim.add(endpoint, routers: [], saved: saved, seed: 99)
        sim.with(endpoint) { $0.start(now: $1); $0.getPeers(Self.hash, announcePort: nil, now: $1) }
        sim.run(for: 5 * Self.second)
        #expect(sim.found[endpoint]?[Self.hash] == [CompactPeer(address: DHTSimulation.endpoint(9).address, port: 6000)!])
    }

    @Test("a damaged state file is not trusted")
    func damagedState() {
        #expect(DHTSavedState(decoding: Array("d2:id3:abce".utf8)) == nil)
        #expect(DHTSavedState(decoding: Array("garbage".utf8)) == nil)
    }

    @Test("flooding: one address gets at most the burst plus the rate of answers; malformed input none")
    func flood() {
        var sim = DHTSimulation()
        let node = DHTSimulation.endpoint(1), flooder = DHTSimulation.endpoint(2)
        sim.add(node, seed: 1)
        let ping = KRPCMessage(transaction: [1], body: .query(KRPCQuery(sender: Digest20([UInt8](repeating: 5, count: 20))!,
                                                                        method: .ping))).encoded
        for _ in 0..<1000 { sim.inject(ping, from: flooder, to: node) }
        for junk in ["d1:t", "i5e", "d1:ad2:id3:abce1:q4:ping1:t1:a1:y1:qe", String(repeating: "x", count: 5000)] {
            sim.inject(Array(junk.utf8), from: DHTSimulation.endpoint(3), to: node)
        }
        sim.run(for: Self.second / 2)
        let answers = sim.log.filter { $0.from == node }
        #expect(answers.count == QueryRateLimiter.burst)
        #expect(!answers.contains { $0.to == DHTSimulation.endpoint(3) })
    }

    static func v6(_ index: Int) -> CompactPeer {
        CompactPeer(address: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 10) + [UInt8(index >> 8), UInt8(index & 0xFF)],
                    port: 6881)!
    }

    @Test("answers stay within the amplification bound, trimming peers to fit (IPv6 peers: 50 would not fit)")
    func amplification() throws {
        var sim = DHTSimulation()
        let node = DHTSimulation.endpoint(1)
        sim.add(node, seed: 1)
        sim.with(node) { node, now in
            for index in 0..<300 { node.store.announce(Self.hash, peer: Self.v6(index + 10), now: now) }
        }
        #expect(sim.nodes[node]!.store.peerCount == PeerStore.maxPeersPerTorrent)
        let query = KRPCMessage(transaction: [1], body: .query(KRPCQuery(sender: Digest20([UInt8](repeating: 5, count: 20))!,
                                                                         method: .getPeers(infoHash: Self.hash)))).encoded
        sim.inject(query, from: Self.v6(2), to: node)
        sim.run(for: Self.second)
        let reply = sim.log.last { $0.from == node }!.bytes
        #expect(reply.count <= query.count * DHTNode.maxReplyFactor)
        guard case .response(let response) = try KRPCMessage(decoding: reply).body else { Issue.record("no answer"); return }
        #expect(!response.values.isEmpty && response.values.count < DHTNode.maxValuesPerReply)
    }

    @Test("read-only nodes (BEP 43) ask but are neither answered from nor put in tables")
    func readOnly() {
        var sim = DHTSimulation()
        let full = DHTSimulation.endpoint(1), quiet = DHTSimulation.endpoint(2)
        sim.add(full, seed: 1)
        sim.add(quiet, routers: [full], readOnly: true, seed: 2)
        sim.with(quiet) { $0.start(now: $1) }
        sim.run(for: 3 * Self.second)
        #expect(sim.log.contains { $0.from == full && $0.to == quiet })  // the full node answers it
        #expect(sim.nodes[full]!.nodeCount.ipv4 == 0)  // but keeps it out of its table
        sim.inject(KRPCMessage(transaction: [1], body: .query(KRPCQuery(sender: sim.nodes[full]!.id, method: .ping))).encoded,
                   from: full, to: quiet)
        let before = sim.log.count
        sim.run(for: Self.second)
        #expect(!sim.log[before...].contains { $0.from == quiet && $0.to == full })
    }

    @Test("BEP 32: a query wanting n6 gets IPv6 nodes")
    func ipv6Nodes() throws {
        var sim = DHTSimulation()
        let node = DHTSimulation.endpoint(1)
        let v6 = CompactPeer(address: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2], port: 6881)!
        sim.add(node, seed: 1)
        sim.add(v6, routers: [node], seed: 2)
        sim.with(v6) { $0.start(now: $1) }
        sim.run(for: 3 * Self.second)
        #expect(sim.nodes[node]!.nodeCount.ipv6 == 1)
        let asker = DHTSimulation.endpoint(3)
        sim.inject(KRPCMessage(transaction: [1], body: .query(KRPCQuery(
            sender: Digest20([UInt8](repeating: 5, count: 20))!, method: .findNode(target: Self.hash), want: [.ipv4, .ipv6])))
            .encoded, from: asker, to: node)
        sim.run(for: Self.second)
        guard case .response(let response) = try KRPCMessage(decoding: sim.log.last { $0.to == asker }!.bytes).body else {
            Issue.record("no answer"); return
        }
        #expect(response.nodes6.map(\.endpoint) == [v6])
    }
}
