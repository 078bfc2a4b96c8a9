import BitTorrent
import TestSupport
import Testing
@testable import TorrentEngine

@Suite("LSD announcer")
struct LSDAnnouncerTests {
    static let second: Int64 = 1_000_000_000
    static func hash(_ byte: UInt8) -> InfoHash { InfoHash([UInt8](repeating: byte, count: 20))! }

    /// Runs the announcer from `start` to `end` in 100 ms steps; the times (in ms from
    /// `start`) at which each hash was announced.
    static func run(_ announcer: inout LSDAnnouncer, from start: Int64, to end: Int64) -> [InfoHash: [Int64]] {
        var sent: [InfoHash: [Int64]] = [:]
        var now = start
        while now <= end {
            for datagram in announcer.poll(now: now) {
                for hash in datagram { sent[hash, default: []].append((now - start) / 1_000_000) }
            }
            now += second / 10
        }
        return sent
    }

    @Test("a torrent is announced at 0, 2 and 6 s, then every 5 minutes")
    func schedule() {
        var announcer = LSDAnnouncer(cookie: "ours")
        announcer.update([(Self.hash(1), false)], now: 0)
        let sent = Self.run(&announcer, from: 0, to: 700 * Self.second)
        #expect(sent[Self.hash(1)] == [0, 2000, 6000, 306_000, 606_000])
    }

    @Test("private torrents are never announced; a torrent that turns private or goes stops being announced")
    func privateNever() {
        var announcer = LSDAnnouncer(cookie: "ours")
        announcer.update([(Self.hash(1), true), (Self.hash(2), false), (Self.hash(3), false)], now: 0)
        #expect(announcer.poll(now: 0) == [[Self.hash(2), Self.hash(3)]])
        announcer.update([(Self.hash(1), true), (Self.hash(2), true)], now: Self.second)
        let sent = Self.run(&announcer, from: Self.second, to: 700 * Self.second)
        #expect(sent.isEmpty)
        #expect(announcer.nextPoll() == nil)
    }

    @Test("announces leave at least a second apart; a torrent added meanwhile waits for the gap")
    func minimumGap() {
        var announcer = LSDAnnouncer(cookie: "ours")
        announcer.update([(Self.hash(1), false)], now: 0)
        #expect(announcer.poll(now: 0) == [[Self.hash(1)]])
        announcer.update([(Self.hash(1), false), (Self.hash(2), false)], now: Self.second / 2)
        #expect(announcer.poll(now: Self.second / 2).isEmpty)
        #expect(announcer.nextPoll() == Self.second)
        #expect(announcer.poll(now: Self.second) == [[Self.hash(2)]])
    }

    @Test("many torrents go in datagrams of at most 20 hashes, at most 4 datagrams at a time")
    func batching() {
        var announcer = LSDAnnouncer(cookie: "ours")
        let hashes = (1...100).map { Self.hash(UInt8($0)) }
        announcer.update(hashes.map { ($0, false) }, now: 0)
        let first = announcer.poll(now: 0)
        #expect(first.map(\.count) == [20, 20, 20, 20])
        #expect(Set(first.joined()).count == 80)
        let second = announcer.poll(now: Self.second)
        #expect(second.map(\.count) == [20])
        #expect(Set(first.joined()).union(second.joined()) == Set(hashes))
    }

    @Test("in steady state one periodic announce takes along every torrent due within a minute")
    func coalescing() {
        var announcer = LSDAnnouncer(cookie: "ours")
        announcer.update([(Self.hash(1), false)], now: 0)
        announcer.update([(Self.hash(1), false), (Self.hash(2), false)], now: 30 * Self.second)
        let sent = Self.run(&announcer, from: 0, to: 1000 * Self.second)
        // hash 2's own periodic announce would be due at 336 s; it goes with hash 1's at 306 s.
        #expect(sent[Self.hash(1)] == [0, 2000, 6000, 306_000, 606_000, 906_000])
        #expect(sent[Self.hash(2)] == [30_000, 32_000, 36_000, 306_000, 606_000, 906_000])
    }

    @Test("announces from others give peers for our public torrents only, at the sender's address")
    func received() {
        var announcer = LSDAnnouncer(cookie: "ours")
        announcer.update([(Self.hash(1), false), (Self.hash(2), true)], now: 0)
        let theirs = LSDAnnouncement(host: "239.192.152.143:6771", port: 7000,
                                     infoHashes: [Self.hash(1), Self.hash(2), Self.hash(3)], cookie: "theirs")
        let found = announcer.received(theirs.encoded, from: "192.168.1.20", now: 0)
        #expect(found == [.init(infoHash: Self.hash(1), peer: PeerAddress(host: "192.168.1.20", port: 7000))])
    }

    @Test("our own announces (our cookie) and malformed datagrams give nothing")
    func ownAndMalformed() {
        var announcer = LSDAnnouncer(cookie: "ours")
        announcer.update([(Self.hash(1), false)], now: 0)
        let ours = LSDAnnouncement(host: nil, port: 7000, infoHashes: [Self.hash(1)], cookie: "ours")
        #expect(announcer.received(ours.encoded, from: "192.168.1.2", now: 0).isEmpty)
        #expect(announcer.received(Array("BT-SEARCH * HTTP/1.1\r\n\r\n".utf8), from: "192.168.1.3", now: 0).isEmpty)
        #expect(announcer.ownIgnored == 1 && announcer.malformed == 1)
    }

    @Test("at most 20 announces are taken per second; the rest are dropped")
    func receiveLimit() {
        var announcer = LSDAnnouncer(cookie: "ours")
        announcer.update([(Self.hash(1), false)], now: 0)
        let theirs = LSDAnnouncement(host: nil, port: 7000, infoHashes: [Self.hash(1)], cookie: nil).encoded
        let taken = (0..<30).filter { !announcer.received(theirs, from: "10.0.0.\($0)", now: Int64($0)).isEmpty }
        #expect(taken == Array(0..<20))
        #expect(announcer.dropped == 10)
        #expect(!announcer.received(theirs, from: "10.0.0.99", now: Self.second + 1).isEmpty)
    }

    @Test("cookies are 8 hex digits and differ between sessions")
    func cookies() {
        var generator = SplitMix64(seed: 7)
        let cookies = (0..<50).map { _ in LSDAnnouncer.makeCookie(using: &generator) }
        #expect(cookies.allSatisfy { $0.count == 8 && $0.allSatisfy(\.isHexDigit) })
        #expect(Set(cookies).count == 50)
    }
}
