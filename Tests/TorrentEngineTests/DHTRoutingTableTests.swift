import BitTorrent
import TestSupport
import Testing

@testable import TorrentEngine

@Suite("DHT routing table and ids")
struct DHTRoutingTableTests {
    static func node(_ id: Digest20, _ index: Int) -> DHTNodeInfo {
        DHTNodeInfo(id: id, endpoint: CompactPeer(address: [10, 0, UInt8(index / 250), UInt8(index % 250 + 1)], port: 6881)!)
    }

    @Test("only the bucket holding our id splits; far buckets stay at k and cache newcomers")
    func splits() {
        var random = SplitMix64(seed: 7)
        let own = Digest20.random(using: &random)
        var table = RoutingTable(ownID: own, now: 0)
        var outcomes: [RoutingTable.Outcome] = []
        for index in 0..<400 { outcomes.append(table.heard(Self.node(Digest20.random(using: &random), index), replied: true, now: 0)) }
        #expect(table.buckets.count > 3)
        for (index, bucket) in table.buckets.enumerated() {
            #expect(bucket.nodes.count <= RoutingTable.bucketSize)
            for entry in bucket.nodes {
                let shared = entry.info.id.commonPrefixLength(with: own)
                #expect(index == table.buckets.count - 1 ? shared >= index : shared == index)
            }
        }
        // Half of all random ids differ from ours in the first bit: bucket 0 is full and the rest were cached.
        #expect(table.buckets[0].nodes.count == RoutingTable.bucketSize)
        #expect(table.buckets[0].replacements.count == RoutingTable.replacementsPerBucket)
        #expect(outcomes.contains(.cached))
        // Ids close to ours are always taken: a node in the deepest range is added.
        let close = own.randomID(sharingPrefix: table.buckets.count + 2, using: &random)
        #expect(table.heard(Self.node(close, 999), replied: true, now: 0) == .added)
    }

    @Test("a node failing twice goes bad and its place goes to a replacement candidate")
    func badNodeReplaced() {
        var random = SplitMix64(seed: 9)
        let own = Digest20.random(using: &random)
        var table = RoutingTable(ownID: own, now: 0)
        var index = 0
        while table.buckets[0].replacements.isEmpty {
            table.heard(Self.node(own.randomID(sharingPrefix: 0, using: &random), index), replied: true, now: 0)
            index += 1
            if table.buckets.count == 1 { table.heard(Self.node(own.randomID(sharingPrefix: 5, using: &random), 1000 + index),
                                                      replied: true, now: 0) }
        }
        let victim = table.buckets[0].nodes[3].info
        let replacement = table.buckets[0].replacements.last!.info
        table.failed(victim.endpoint, now: 1)
        #expect(table.buckets[0].nodes.contains { $0.info == victim })
        table.failed(victim.endpoint, now: 2)
        #expect(!table.buckets[0].nodes.contains { $0.info == victim })
        #expect(table.buckets[0].nodes.contains { $0.info == replacement })
        #expect(table.closest(to: victim.id, count: 200, now: 2).allSatisfy { $0 != victim })
    }

    @Test("liveness: good after an answer, questionable after 15 minutes of silence, refreshed buckets")
    func liveness() {
        var random = SplitMix64(seed: 11)
        var table = RoutingTable(ownID: Digest20.random(using: &random), now: 0)
        let node = Self.node(Digest20.random(using: &random), 1)
        table.heard(node, replied: true, now: 0)
        #expect(table.entries[0].status(now: RoutingTable.goodFor - 1) == .good)
        #expect(table.entries[0].status(now: RoutingTable.goodFor) == .questionable)
        #expect(table.questionable(now: RoutingTable.goodFor, limit: 8) == [node])
        #expect(table.staleBuckets(now: RoutingTable.goodFor) == [0])
        table.heard(node, replied: true, now: RoutingTable.goodFor)
        #expect(table.staleBuckets(now: RoutingTable.goodFor).isEmpty)
    }

    @Test("a known id from a new address, or a known address under a new id, is ignored")
    func spoofing() {
        var random = SplitMix64(seed: 12)
        var table = RoutingTable(ownID: Digest20.random(using: &random), now: 0)
        let id = Digest20.random(using: &random)
        table.heard(Self.node(id, 1), replied: true, now: 0)
        #expect(table.heard(Self.node(id, 2), replied: true, now: 0) == .ignored)
        #expect(table.heard(Self.node(Digest20.random(using: &random), 1), replied: true, now: 0) == .ignored)
        #expect(table.count == 1)
    }

    /// BEP 42's test vectors: address, and an id valid for it.
    static let vectors: [([UInt8], String)] = [
        ([124, 31, 75, 21], "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
        ([21, 75, 31, 124], "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
        ([65, 23, 51, 170], "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
        ([84, 124, 73, 14], "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
        ([43, 213, 53, 83], "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
    ]

    @Test("BEP 42 vectors are valid ids for their addresses, and not for the others", arguments: vectors.indices)
    func bep42(_ index: Int) {
        let (ip, hex) = Self.vectors[index]
        let id = Digest20(string: hex)!
        #expect(NodeIDRule.isValid(id, for: ip))
        #expect(!NodeIDRule.isValid(id, for: Self.vectors[(index + 1) % Self.vectors.count].0))
        var random = SplitMix64(seed: UInt64(index))
        #expect(NodeIDRule.isValid(NodeIDRule.id(for: ip, using: &random), for: ip))
    }

    @Test("CRC-32C check value")
    func crc32c() {
        #expect(NodeIDRule.crc32c(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test("our id follows a public external address once three nodes agree; local addresses are exempt")
    func idFollowsExternalAddress() {
        var node = DHTNode(configuration: DHTNode.Configuration(seed: 5), now: 0)
        let original = node.id
        node.vote([192, 168, 1, 2], by: [1, 1, 1, 1], now: 0)
        node.vote([192, 168, 1, 2], by: [1, 1, 1, 2], now: 0)
        node.vote([192, 168, 1, 2], by: [1, 1, 1, 3], now: 0)
        #expect(node.externalAddress == [192, 168, 1, 2] && node.id == original)
        let publicIP: [UInt8] = [84, 124, 73, 14]
        node.vote(publicIP, by: [1, 1, 1, 1], now: 0)
        node.vote(publicIP, by: [1, 1, 1, 1], now: 0)
        #expect(node.id == original)
        node.vote(publicIP, by: [1, 1, 1, 2], now: 0)
        node.vote(publicIP, by: [1, 1, 1, 3], now: 0)
        #expect(node.externalAddress == publicIP && node.id != original && NodeIDRule.isValid(node.id, for: publicIP))
    }
}
