import BitTorrent
import Testing
@testable import TorrentEngine

@Suite("Peer list")
struct PeerListTests {
    static let second: Int64 = 1_000_000_000
    static func address(_ port: UInt16) -> PeerAddress { PeerAddress(host: "10.0.0.1", port: port) }

    /// `list.add` outside `#expect` (the macro cannot call a mutating method).
    static func add(_ list: inout PeerList, _ address: PeerAddress, _ source: PeerSource) -> Bool {
        list.add(address, source: source)
    }

    @Test("addresses are dialed in the order they came, once at a time, with their sources kept")
    func dialOrder() {
        var list = PeerList(isPrivate: false)
        let first = Self.add(&list, Self.address(1), .tracker)
        let second = Self.add(&list, Self.address(2), .pex)
        let again = Self.add(&list, Self.address(1), .magnet)  // another source of a known address
        #expect(first && second && again)
        #expect(list.count == 2)
        #expect(list.addressesBySource == [.tracker: 1, .pex: 1, .magnet: 1])
        #expect(list.takeForDialing(limit: 1, now: 0, connected: []) == [Self.address(1)])
        // Being dialed: not offered again; a connected address is skipped too.
        #expect(list.takeForDialing(limit: 5, now: 0, connected: []) == [Self.address(2)])
        #expect(list.takeForDialing(limit: 5, now: 0, connected: []).isEmpty)
        #expect(list.dialingCount == 2)
        list.connected(Self.address(1))
        #expect(list.takeForDialing(limit: 5, now: 0, connected: [Self.address(1)]).isEmpty)
    }

    @Test("failures back off 2, 4, 8 … 120 s; a handshake forgets them")
    func backoff() {
        var list = PeerList(isPrivate: false)
        list.add(Self.address(1), source: .tracker)
        var now: Int64 = 0
        _ = list.takeForDialing(limit: 1, now: now, connected: [])
        for (failure, wait) in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 64), (7, 120), (8, 120)] {
            list.failed(Self.address(1), now: now)
            #expect(list.entries[Self.address(1)]?.failures == failure)
            #expect(list.takeForDialing(limit: 1, now: now + Int64(wait) * Self.second - 1, connected: []).isEmpty)
            now += Int64(wait) * Self.second
            #expect(list.takeForDialing(limit: 1, now: now, connected: []) == [Self.address(1)], "after failure \(failure)")
        }
        list.connected(Self.address(1))
        #expect(list.entries[Self.address(1)]?.failures == 0)
        #expect(list.takeForDialing(limit: 1, now: now, connected: []) == [Self.address(1)])
    }

    @Test("each violation bans for the session, by address and by peer id, counted by reason")
    func bans() {
        var list = PeerList(isPrivate: false)
        let id = PeerID(Array(repeating: 9, count: 20))!
        for (port, reason) in zip(UInt16(1)..., BanReason.allCases) {
            list.add(Self.address(port), source: .tracker)
            list.ban(Self.address(port), peerID: port == 1 ? id : nil, reason: reason)
            #expect(list.isBanned(Self.address(port)))
            let takenBack = Self.add(&list, Self.address(port), .pex)
            #expect(!takenBack, "a banned address is not taken back")
        }
        #expect(list.isBanned(id))
        #expect(list.bansByReason == Dictionary(uniqueKeysWithValues: BanReason.allCases.map { ($0, 1) }))
        #expect(list.takeForDialing(limit: 10, now: 0, connected: []).isEmpty)
        // An address banned before it was known (an incoming peer) is remembered too.
        list.ban(Self.address(99), peerID: nil, reason: .protocolViolation)
        let refused = Self.add(&list, Self.address(99), .tracker)
        #expect(!refused)
        // A timeout is not a ban.
        list.add(Self.address(50), source: .tracker)
        _ = list.takeForDialing(limit: 10, now: 0, connected: [])
        list.failed(Self.address(50), now: 0)
        #expect(!list.isBanned(Self.address(50)))
    }

    @Test("our own address, once dialed, is forgotten and never taken again")
    func ownAddress() {
        var list = PeerList(isPrivate: false)
        list.add(Self.address(1), source: .tracker)
        _ = list.takeForDialing(limit: 1, now: 0, connected: [])
        list.markAsOurs(Self.address(1))
        let again = Self.add(&list, Self.address(1), .tracker)
        #expect(!again && list.count == 0 && list.dialingCount == 0)
    }

    @Test("a private torrent takes no PEX, DHT or LSD peers")
    func privateRule() {
        var list = PeerList(isPrivate: true)
        for (port, source) in zip(UInt16(1)..., PeerSource.allCases) {
            let added = Self.add(&list, Self.address(port), source)
            #expect(added == !source.isPublicDiscovery, "\(source)")
        }
        #expect(list.addressesBySource.keys.allSatisfy { !$0.isPublicDiscovery })
        // A magnet's metadata saying "private" drops what public discovery brought.
        var magnet = PeerList(isPrivate: false)
        magnet.add(Self.address(1), source: .pex)
        magnet.add(Self.address(2), source: .tracker)
        magnet.add(Self.address(3), source: .dht)
        magnet.add(Self.address(3), source: .manual)
        magnet.becamePrivate()
        #expect(Set(magnet.entries.keys) == [Self.address(2), Self.address(3)])
        let fromPEX = Self.add(&magnet, Self.address(4), .pex)
        #expect(!fromPEX)
    }

    @Test("the list is capped: the address that failed most makes room, else a new one is refused")
    func cap() {
        var list = PeerList(isPrivate: false)
        for index in 0..<PeerList.maxAddresses {
            list.add(PeerAddress(host: "10.1.\(index / 256).\(index % 256)", port: 1), source: .tracker)
        }
        let refused = Self.add(&list, Self.address(7), .pex)
        #expect(!refused)
        let loser = PeerAddress(host: "10.1.0.5", port: 1)
        _ = list.takeForDialing(limit: PeerList.maxAddresses, now: 0, connected: [])
        list.failed(loser, now: 0)
        let added = Self.add(&list, Self.address(7), .pex)
        #expect(added)
        #expect(list.entries[loser] == nil && list.count == PeerList.maxAddresses)
    }
}
