import BitTorrent
import Foundation
import TestSupport
import Testing
@testable import TorrentEngine

private let second: Int64 = 1_000_000_000

// MARK: Choker

@Suite("Choker")
struct ChokerTests {
    typealias Candidate = Choker.Candidate

    /// key: rate, interested unless listed in `uninterested`.
    static func candidates(_ rates: [Int: Double], uninterested: Set<Int> = []) -> [Candidate] {
        rates.keys.sorted().map { Candidate(key: $0, interested: !uninterested.contains($0), rate: rates[$0]!) }
    }

    @Test("top slots by rate among interested peers, plus one optimistic")
    func topSlots() {
        var choker = Choker(slots: 2)
        // 6 is the fastest but not interested; 2 and 3 are the fastest interested.
        let peers = Self.candidates([1: 100, 2: 500, 3: 300, 4: 50, 5: 10, 6: 1000], uninterested: [6])
        let chosen = choker.choose(peers)
        #expect(chosen.count == 3)
        #expect(chosen.isSuperset(of: [2, 3]))
        #expect(!chosen.contains(6))
    }

    @Test("uninterested peers are never unchoked, even optimistically")
    func neverUninterested() {
        var choker = Choker(slots: 4)
        let peers = Self.candidates([1: 5, 2: 4, 3: 3, 4: 2, 5: 1], uninterested: [1, 2, 3, 4, 5])
        for round in 0..<10 { #expect(choker.choose(peers).isEmpty, "round \(round)") }
        let mixed = Self.candidates([1: 5, 2: 4, 3: 3], uninterested: [1, 3])
        for round in 0..<10 { #expect(choker.choose(mixed) == [2], "round \(round)") }
    }

    @Test("the optimistic unchoke rotates every 3 rounds over the others")
    func optimisticRotation() {
        var choker = Choker(slots: 2)
        #expect(Choker.optimisticEvery == 3)
        let peers = Self.candidates([1: 100, 2: 500, 3: 300, 4: 50, 5: 10])
        var optimistic: [Int] = []
        for _ in 0..<12 {
            let chosen = choker.choose(peers)
            #expect(chosen.isSuperset(of: [2, 3]))
            let extra = chosen.subtracting([2, 3])
            #expect(extra.count == 1)
            optimistic.append(extra.first ?? -1)
        }
        // Others are 1, 4, 5: each holds the optimistic slot for 3 rounds in turn.
        #expect(optimistic == [1, 1, 1, 4, 4, 4, 5, 5, 5, 1, 1, 1])
    }

    @Test("an optimistic peer that leaves is replaced at once")
    func optimisticLeaves() {
        var choker = Choker(slots: 1)
        let first = choker.choose(Self.candidates([1: 10, 2: 0, 3: 0]))
        #expect(first == [1, 2])
        // 2 stops being interested mid-rotation.
        let second = choker.choose(Self.candidates([1: 10, 2: 0, 3: 0], uninterested: [2]))
        #expect(second == [1, 3])
    }

    @Test("fewer interested peers than slots: all are unchoked, no optimistic needed")
    func fewPeers() {
        var choker = Choker(slots: 4)
        #expect(choker.choose([]).isEmpty)
        #expect(choker.choose(Self.candidates([7: 1, 8: 2])) == [7, 8])
    }

    @Test("equal rates break ties by lower key")
    func ties() {
        var choker = Choker(slots: 2)
        let chosen = choker.choose(Self.candidates([5: 1, 3: 1, 9: 1, 1: 1]))
        // Regular: 1 and 3; optimistic: the first of the others (5).
        #expect(chosen == [1, 3, 5])
    }
}

// MARK: TokenBucket and RateMeter

@Suite("Token bucket")
struct TokenBucketTests {
    @Test("starts full, refills at the rate, never above the burst")
    func rateAndBurst() {
        var bucket = TokenBucket(rate: 1000, now: 0, burst: 4000)
        #expect(bucket.take(4000, now: 0) == true)
        #expect(bucket.take(1, now: 0) == false)
        #expect(bucket.take(600, now: second / 2) == false)  // 500 available
        #expect(bucket.take(500, now: second / 2) == true)
        #expect(bucket.take(1000, now: 3 * second / 2) == true)
        #expect(bucket.take(1, now: 3 * second / 2) == false)
        // A long idle period refills only up to the burst.
        #expect(bucket.take(4000, now: 1000 * second) == true)
        #expect(bucket.take(1, now: 1000 * second) == false)
    }

    @Test("default burst is a quarter second of rate, at least 16 KiB")
    func defaultBurst() {
        #expect(TokenBucket(rate: 1000, now: 0).burst == 16384)
        #expect(TokenBucket(rate: 1_000_000, now: 0).burst == 250_000)
        #expect(TokenBucket(rate: nil, now: 0).burst == 16384)
    }

    @Test("a take larger than the bucket never succeeds; smaller ones still do")
    func oversized() {
        var bucket = TokenBucket(rate: 1000, now: 0, burst: 2000)
        #expect(bucket.take(2001, now: 100 * second) == false)
        #expect(bucket.take(2000, now: 100 * second) == true)
    }

    @Test("takeUnits: whole units only, at most the limit")
    func takeUnits() {
        var bucket = TokenBucket(rate: 16384, now: 0, burst: 3 * 16384 + 100)
        #expect(bucket.takeUnits(of: 16384, upTo: 2, now: 0) == 2)
        #expect(bucket.takeUnits(of: 16384, upTo: 10, now: 0) == 1)  // 16 484 left → 1
        #expect(bucket.takeUnits(of: 16384, upTo: 10, now: 0) == 0)  // 100 left
        #expect(bucket.takeUnits(of: 16384, upTo: 10, now: second) == 1)  // +16 384
        #expect(bucket.takeUnits(of: 16384, upTo: 10, now: second) == 0)
        #expect(bucket.takeUnits(of: 16384, upTo: 0, now: 100 * second) == 0)
        #expect(bucket.takeUnits(of: 16384, upTo: 10, now: 100 * second) == 3)
    }

    @Test("unlimited always succeeds")
    func unlimited() {
        var bucket = TokenBucket(rate: nil, now: 0)
        for _ in 0..<100 { #expect(bucket.take(1 << 30, now: 0) == true) }
        #expect(bucket.takeUnits(of: 16384, upTo: 77, now: 0) == 77)
        #expect(bucket.delay(for: 1 << 40) == 0)
    }

    @Test("delay says when the bytes will be there")
    func delay() {
        var bucket = TokenBucket(rate: 1000, now: 0, burst: 1000)
        #expect(bucket.delay(for: 1000) == 0)
        #expect(bucket.take(1000, now: 0) == true)
        #expect(bucket.delay(for: 500) == second / 2)
        #expect(bucket.delay(for: 2000) == 2 * second)
        #expect(bucket.take(500, now: second / 2 - 1_000_000) == false)
        #expect(bucket.take(500, now: second / 2 + 1_000_000) == true)
    }

    @Test("time going backwards adds nothing")
    func clockSkew() {
        var bucket = TokenBucket(rate: 1000, now: 10 * second, burst: 1000)
        #expect(bucket.take(1000, now: 10 * second) == true)
        #expect(bucket.take(1, now: 5 * second) == false)
    }
}

@Suite("Rate meter")
struct RateMeterTests {
    @Test("a steady rate reads as that rate")
    func steady() {
        var meter = RateMeter()
        for tick in 0...20 { meter.add(1000, now: Int64(tick) * second) }
        let rate = meter.rate(now: 20 * second)
        #expect(rate >= 1000 && rate <= 1250, "\(rate)")
        #expect(meter.total == 21_000)
    }

    @Test("old samples leave the 5 s window")
    func window() {
        #expect(RateMeter.window == 5 * second)
        var meter = RateMeter()
        meter.add(50_000, now: 0)
        #expect(meter.rate(now: 1 * second) == 50_000)
        #expect(meter.rate(now: 5 * second) == 10_000)
        #expect(meter.rate(now: 5 * second + 1) == 0)
        #expect(meter.total == 50_000, "total is not windowed")
    }

    @Test("a burst reads at most over one second, not less")
    func burst() {
        var meter = RateMeter()
        meter.add(1000, now: 0)
        meter.add(1000, now: 1_000_000)  // merged: within 100 ms
        #expect(meter.rate(now: 2_000_000) == 2000)
    }

    @Test("an empty meter reads zero")
    func empty() {
        var meter = RateMeter()
        #expect(meter.rate(now: 123 * second) == 0)
        #expect(meter.total == 0)
    }
}

// MARK: MetadataAssembler

@Suite("Metadata assembler (BEP 9)")
struct MetadataAssemblerTests {
    /// A real info dictionary over 16 KiB (two metadata pieces) and its hash.
    static let info: [UInt8] = {
        Bencode.encode(InfoFixture.value(name: "magnet", files: [InfoFixture.File(["a"], 16384 * 1000)]))
    }()
    static let hash = BitTorrent.SHA1.hash(info)

    static func piece(_ index: Int) -> [UInt8] {
        let start = index * MetadataMessage.pieceSize
        return Array(info[start..<min(info.count, start + MetadataMessage.pieceSize)])
    }

    @Test("size bounds; the first plausible size wins")
    func sizes() {
        var assembler = MetadataAssembler(infoHash: Self.hash)
        #expect(assembler.sizeAnnounced(0) == false)
        #expect(assembler.sizeAnnounced(-1) == false)
        #expect(assembler.sizeAnnounced(MetadataMessage.maxMetadataSize + 1) == false)
        #expect(assembler.totalSize == nil)
        #expect(assembler.sizeAnnounced(Self.info.count) == true)
        #expect(assembler.sizeAnnounced(Self.info.count) == true, "same size again is fine")
        #expect(assembler.sizeAnnounced(Self.info.count + 1) == false, "a different size is not")
        #expect(assembler.totalSize == Self.info.count)
        var big = MetadataAssembler(infoHash: Self.hash)
        #expect(big.sizeAnnounced(MetadataMessage.maxMetadataSize) == true)
    }

    @Test("requests each piece once, again after the timeout or a reject")
    func requests() {
        var assembler = MetadataAssembler(infoHash: Self.hash)
        #expect(assembler.nextRequest(now: 0) == nil, "size unknown")
        #expect(Self.info.count > MetadataMessage.pieceSize && Self.info.count < 2 * MetadataMessage.pieceSize)
        _ = assembler.sizeAnnounced(Self.info.count)
        #expect(assembler.nextRequest(now: 0) == 0)
        #expect(assembler.nextRequest(now: 0) == 1)
        #expect(assembler.nextRequest(now: 0) == nil)
        #expect(assembler.nextRequest(now: MetadataAssembler.requestTimeout - 1) == nil)
        assembler.rejected(piece: 1)
        assembler.rejected(piece: 7)  // out of range: ignored
        assembler.rejected(piece: -1)
        #expect(assembler.nextRequest(now: 1) == 1)
        #expect(assembler.nextRequest(now: MetadataAssembler.requestTimeout) == 0)
        #expect(assembler.received(piece: 0, totalSize: Self.info.count, data: Self.piece(0), from: 1) == .incomplete)
        #expect(assembler.nextRequest(now: 100 * MetadataAssembler.requestTimeout) == 1, "received pieces are not asked again")
        #expect(assembler.nextRequest(now: 100 * MetadataAssembler.requestTimeout) == nil)
    }

    @Test("piece sizes: full pieces then the remainder")
    func pieceSizes() {
        var assembler = MetadataAssembler(infoHash: Self.hash)
        let total = Self.info.count
        _ = assembler.sizeAnnounced(total)
        let lastSize = total - MetadataMessage.pieceSize
        #expect(assembler.received(piece: 0, totalSize: total, data: [UInt8](repeating: 0, count: 100), from: 1) == .invalid)
        #expect(assembler.received(piece: 1, totalSize: total, data: [UInt8](repeating: 0, count: MetadataMessage.pieceSize), from: 1) == .invalid)
        #expect(assembler.received(piece: 1, totalSize: total, data: [UInt8](repeating: 0, count: lastSize + 1), from: 1) == .invalid)
        #expect(assembler.received(piece: 2, totalSize: total, data: [], from: 1) == .invalid, "out of range")
        #expect(assembler.received(piece: -1, totalSize: total, data: [], from: 1) == .invalid)
        #expect(assembler.received(piece: 0, totalSize: total + 1, data: Self.piece(0), from: 1) == .invalid, "wrong total")
        var unsized = MetadataAssembler(infoHash: Self.hash)
        #expect(unsized.received(piece: 0, totalSize: total, data: Self.piece(0), from: 1) == .invalid, "size never announced")
    }

    @Test("all pieces that hash right give the Metainfo")
    func complete() throws {
        var assembler = MetadataAssembler(infoHash: Self.hash)
        _ = assembler.sizeAnnounced(Self.info.count)
        #expect(assembler.received(piece: 1, totalSize: Self.info.count, data: Self.piece(1), from: 7) == .incomplete)
        let outcome = assembler.received(piece: 0, totalSize: Self.info.count, data: Self.piece(0), from: 8)
        guard case .complete(let metainfo) = outcome else {
            Issue.record("expected complete, got \(outcome)")
            return
        }
        #expect(metainfo.infoHash == Self.hash)
        #expect(metainfo.infoBytes == Self.info)
        #expect(metainfo.info.name == "magnet")
        #expect(metainfo.info.lengths.pieceCount == 1000)
    }

    @Test("a hash mismatch names every sender and starts over")
    func hashMismatch() {
        var assembler = MetadataAssembler(infoHash: Self.hash)
        _ = assembler.sizeAnnounced(Self.info.count)
        var bad = Self.piece(1)
        bad[bad.count - 2] ^= 1
        #expect(assembler.received(piece: 0, totalSize: Self.info.count, data: Self.piece(0), from: 3) == .incomplete)
        #expect(assembler.received(piece: 1, totalSize: Self.info.count, data: bad, from: 9) == .hashMismatch(peers: [3, 9]))
        // Everything is forgotten, the size too (a liar may have set it); the next
        // announced size is taken and every piece is asked for again.
        #expect(assembler.totalSize == nil)
        #expect(assembler.nextRequest(now: 0) == nil)
        let accepted = assembler.sizeAnnounced(Self.info.count)
        #expect(accepted)
        #expect(assembler.nextRequest(now: 0) == 0)
        #expect(assembler.nextRequest(now: 0) == 1)
        // Honest data now completes.
        #expect(assembler.received(piece: 0, totalSize: Self.info.count, data: Self.piece(0), from: 4) == .incomplete)
        guard case .complete = assembler.received(piece: 1, totalSize: Self.info.count, data: Self.piece(1), from: 4) else {
            Issue.record("expected complete after the reset")
            return
        }
    }

    /// RELIABILITY: data whose SHA-1 is not the info hash → peer penalized, metadata
    /// fetched from another peer. A liar who announced a wrong `metadata_size` first and
    /// then sent data of that size must not lock the size in: once its data failed the
    /// hash check, an honest peer's (different) size has to be usable.
    @Test("after a hash mismatch, a liar's metadata_size does not lock out honest peers")
    func liarSizeForgotten() {
        var assembler = MetadataAssembler(infoHash: Self.hash)
        let lie = 100  // one piece of garbage
        #expect(assembler.sizeAnnounced(lie) == true)
        #expect(assembler.nextRequest(now: 0) == 0)
        #expect(assembler.received(piece: 0, totalSize: lie, data: [UInt8](repeating: 0x64, count: lie), from: 66)
            == .hashMismatch(peers: [66]))
        // The honest peer announces the real size: it must be accepted and asked.
        #expect(assembler.sizeAnnounced(Self.info.count) == true, "the liar's size is still in force")
        #expect(assembler.totalSize == Self.info.count)
        _ = assembler.received(piece: 0, totalSize: Self.info.count, data: Self.piece(0), from: 1)
        guard case .complete = assembler.received(piece: 1, totalSize: Self.info.count, data: Self.piece(1), from: 1) else {
            Issue.record("honest metadata was not accepted after a liar's size")
            return
        }
    }
}

// MARK: Blocklist

@Suite("Blocklist")
struct BlocklistTests {
    static let text = """
        # A comment line
        Some Org:1.2.3.0-1.2.3.255
        Bad-Guys:5.5.5.5-5.5.5.6
        a:b:c:10.0.0.1-10.0.0.5  # trailing comment

        100.64.0.0/10
        192.168.1.7/32
        2001:db8::/32
        garbage here
        1.2.3.4/33
        1.2.3.256-1.2.3.4
        9.9.9.9-1.1.1.1
        1.2.3.4-::1
        ::/129
        1.2.3/8
        \t172.16.0.0/12\t\r
        """

    @Test("lines understood, bad lines reported by number")
    func load() {
        var list = Blocklist()
        let bad = list.load(Self.text)
        #expect(bad == [9, 10, 11, 12, 13, 14, 15])
        #expect(list.count == 7)
    }

    @Test("isBlocked at the edges", arguments: [
        ("1.2.3.0", true), ("1.2.3.255", true), ("1.2.3.128", true), ("1.2.2.255", false), ("1.2.4.0", false),
        ("5.5.5.5", true), ("5.5.5.6", true), ("5.5.5.7", false), ("5.5.5.4", false),
        ("10.0.0.1", true), ("10.0.0.5", true), ("10.0.0.0", false), ("10.0.0.6", false),
        ("100.64.0.0", true), ("100.127.255.255", true), ("100.128.0.0", false), ("100.63.255.255", false),
        ("192.168.1.7", true), ("192.168.1.6", false), ("192.168.1.8", false),
        ("172.16.0.0", true), ("172.31.255.255", true), ("172.32.0.0", false),
        ("2001:db8::", true), ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true), ("2001:db9::", false),
        ("2001:db7:ffff::1", false),
        ("8.8.8.8", false), ("::1", false), ("not an ip", false), ("", false), ("1.2.3.4.5", false),
        ("tracker.example", false),
    ])
    func isBlocked(host: String, blocked: Bool) {
        var list = Blocklist()
        list.load(Self.text)
        #expect(list.isBlocked(host) == blocked)
    }

    @Test("v4 ranges never match v6 addresses and the reverse")
    func families() {
        var list = Blocklist()
        #expect(list.load("0.0.0.0/0\n") == [])
        #expect(list.isBlocked("255.255.255.255"))
        #expect(!list.isBlocked("::"))
        var v6 = Blocklist()
        #expect(v6.load("::/0") == [])
        #expect(v6.isBlocked("ffff::ffff"))
        #expect(!v6.isBlocked("0.0.0.0"))
    }

    @Test("IPv6 text forms")
    func ipv6Parse() {
        #expect(IPAddress.parse("::") == [UInt8](repeating: 0, count: 16))
        #expect(IPAddress.parse("::1") == [UInt8](repeating: 0, count: 15) + [1])
        #expect(IPAddress.parse("1::") == [0, 1] + [UInt8](repeating: 0, count: 14))
        #expect(IPAddress.parse("1:2:3:4:5:6:7:8") == [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8])
        #expect(IPAddress.parse("1::2::3") == nil)
        #expect(IPAddress.parse("1:2:3:4:5:6:7:8:9") == nil)
        #expect(IPAddress.parse("1:2:3:4::5:6:7:8") == nil)
        #expect(IPAddress.parse("12345::") == nil)
        #expect(IPAddress.parse("g::") == nil)
        #expect(IPAddress.parse("1.2.3.04") == [1, 2, 3, 4])
        #expect(IPAddress.parse("1.2.3.1234") == nil)
        #expect(IPAddress.parse("1..3.4") == nil)
    }
}

// MARK: ResumeData

@Suite("Resume data")
struct ResumeDataTests {
    static let hash = InfoHash([UInt8](repeating: 0x42, count: 20))!

    @Test("encode then decode is identity")
    func roundTrip() {
        var have = Bitfield(count: 13)
        for piece in [0, 5, 12] { have[piece] = true }
        let resume = ResumeData(infoHash: Self.hash, have: have, files: [
            FileState(size: 100, mtimeNanoseconds: 1_700_000_000_123_456_789), nil, FileState(size: 0, mtimeNanoseconds: -5),
        ])
        #expect(ResumeData(encoded: resume.encoded) == resume)
        let empty = ResumeData(infoHash: Self.hash, have: Bitfield(count: 1), files: [])
        #expect(ResumeData(encoded: empty.encoded) == empty)
    }

    @Test("garbage is nil, never a crash", arguments: [
        ("empty", [UInt8]()),
        ("not bencode", Array("hello".utf8)),
        ("a list", Array("le".utf8)),
        ("no info hash", Bencode.encode(["files": [], "have": .bytes([0]), "pieces": 1])),
        ("short info hash", Bencode.encode(["files": [], "have": .bytes([0]), "info-hash": .bytes([1, 2]), "pieces": 1])),
        ("zero pieces", Bencode.encode(["files": [], "have": .bytes([]), "info-hash": .bytes([UInt8](repeating: 1, count: 20)), "pieces": 0])),
        ("negative pieces", Bencode.encode(["files": [], "have": .bytes([]), "info-hash": .bytes([UInt8](repeating: 1, count: 20)), "pieces": -8])),
        ("huge pieces", Bencode.encode(["files": [], "have": .bytes([]), "info-hash": .bytes([UInt8](repeating: 1, count: 20)), "pieces": .integer(Int64.max)])),
        ("have too long", Bencode.encode(["files": [], "have": .bytes([0, 0]), "info-hash": .bytes([UInt8](repeating: 1, count: 20)), "pieces": 8])),
        ("spare bit", Bencode.encode(["files": [], "have": .bytes([0x01]), "info-hash": .bytes([UInt8](repeating: 1, count: 20)), "pieces": 7])),
        ("files not a list", Bencode.encode(["files": 3, "have": .bytes([0]), "info-hash": .bytes([UInt8](repeating: 1, count: 20)), "pieces": 8])),
        ("deep nesting", Array(String(repeating: "l", count: 50).utf8) + Array(String(repeating: "e", count: 50).utf8)),
    ] as [(String, [UInt8])])
    func garbage(name: String, bytes: [UInt8]) {
        #expect(ResumeData(encoded: bytes) == nil, "\(name)")
    }

    @Test("random bytes and truncations decode to nil or to something valid")
    func fuzz() {
        var generator = SplitMix64(seed: 0x2E5)
        var have = Bitfield(count: 20)
        have[3] = true
        let valid = ResumeData(infoHash: Self.hash, have: have, files: [FileState(size: 1, mtimeNanoseconds: 2)]).encoded
        for length in 0..<valid.count {
            #expect(ResumeData(encoded: Array(valid.prefix(length))) == nil, "truncated to \(length)")
        }
        for _ in 0..<500 {
            var mutated = valid
            mutated[Int(generator.next() % UInt64(mutated.count))] = UInt8(truncatingIfNeeded: generator.next())
            if let decoded = ResumeData(encoded: mutated) { #expect(decoded.have.count > 0) }
        }
    }

    /// A: 20 000 bytes, B: 12 768, E: empty, C: 16 384, D: 100 (16 KiB pieces).
    /// Piece 0 lies in A, piece 1 spans A and B, piece 2 is C, piece 3 is D.
    static let files = [
        InfoFixture.File(["A"], 20000), InfoFixture.File(["B"], 12768), InfoFixture.File(["E"], 0),
        InfoFixture.File(["C"], 16384), InfoFixture.File(["D"], 100),
    ]
    static let recorded: [FileState?] = (0..<5).map { FileState(size: Int64($0 * 1000), mtimeNanoseconds: Int64($0)) }

    static func changed(_ index: Int, to state: FileState?) -> [FileState?] {
        var current = recorded
        current[index] = state
        return current
    }

    @Test("trusted drops pieces touching changed files and keeps the others", arguments: [
        // (changed file index, new state or nil for missing, trusted pieces)
        (-1, nil, "1111"),
        (0, FileState(size: 1, mtimeNanoseconds: 0), "0011"),  // A: pieces 0 and 1
        (1, FileState(size: 1000, mtimeNanoseconds: 99), "1011"),  // B's mtime: piece 1 only
        (1, nil, "1011"),  // B missing
        (2, FileState(size: 5, mtimeNanoseconds: 5), "1111"),  // E is empty: no piece touches it
        (3, nil, "1101"),
        (4, FileState(size: 4000, mtimeNanoseconds: 3), "1110"),
    ] as [(Int, FileState?, String)])
    func trusted(index: Int, state: FileState?, expected: String) throws {
        let info = try InfoFixture.info(files: Self.files)
        #expect(info.lengths.pieceCount == 4)
        let resume = ResumeData(infoHash: Self.hash, have: Bitfield(count: 4, allSet: true), files: Self.recorded)
        let current = index < 0 ? Self.recorded : Self.changed(index, to: state)
        let trusted = resume.trusted(info: info, current: current)
        #expect(String((0..<4).map { trusted[$0] ? "1" : "0" }) == expected)
    }

    @Test("trusted never adds pieces that were not verified")
    func onlyVerified() throws {
        let info = try InfoFixture.info(files: Self.files)
        var have = Bitfield(count: 4)
        have[1] = true
        have[3] = true
        let resume = ResumeData(infoHash: Self.hash, have: have, files: Self.recorded)
        #expect(resume.trusted(info: info, current: Self.recorded) == have)
        #expect(resume.trusted(info: info, current: Self.changed(4, to: nil)).setIndices == [1])
    }

    @Test("a recorded missing file is untrusted even if still missing")
    func recordedMissing() throws {
        let info = try InfoFixture.info(files: Self.files)
        var files = Self.recorded
        files[3] = nil
        let resume = ResumeData(infoHash: Self.hash, have: Bitfield(count: 4, allSet: true), files: files)
        #expect(resume.trusted(info: info, current: files).setIndices == [0, 1, 3])
    }

    @Test("pad files are not in the file list and never untrust anything")
    func padFiles() throws {
        // A: 20 000, pad: 12 768, C: 16 384 → piece 1 is A's tail plus padding.
        let info = try InfoFixture.info(files: [
            InfoFixture.File(["A"], 20000), InfoFixture.File([".pad", "12768"], 12768, attr: "p"), InfoFixture.File(["C"], 16384),
        ])
        #expect(info.lengths.pieceCount == 3)
        let recorded = [FileState(size: 20000, mtimeNanoseconds: 1), FileState(size: 16384, mtimeNanoseconds: 2)]
        let resume = ResumeData(infoHash: Self.hash, have: Bitfield(count: 3, allSet: true), files: recorded)
        #expect(resume.trusted(info: info, current: recorded).isComplete)
        let cChanged = [recorded[0], FileState(size: 16384, mtimeNanoseconds: 3)]
        #expect(resume.trusted(info: info, current: cChanged).setIndices == [0, 1])
        let aChanged = [FileState(size: 0, mtimeNanoseconds: 1), recorded[1]]
        #expect(resume.trusted(info: info, current: aChanged).setIndices == [2])
    }

    @Test("resume data of another shape trusts nothing")
    func mismatchedShape() throws {
        let info = try InfoFixture.info(files: Self.files)
        let wrongCount = ResumeData(infoHash: Self.hash, have: Bitfield(count: 5, allSet: true), files: Self.recorded)
        #expect(wrongCount.trusted(info: info, current: Self.recorded).isEmpty)
        let fewerFiles = ResumeData(infoHash: Self.hash, have: Bitfield(count: 4, allSet: true), files: Array(Self.recorded.prefix(3)))
        #expect(fewerFiles.trusted(info: info, current: Self.recorded).isEmpty)
    }

    @Test("writeAtomically replaces the file and leaves no temporary behind")
    func atomicWrite() throws {
        let scratch = try Scratch()
        let path = scratch.root.appendingPathComponent("resume.dat").path
        try ResumeData.writeAtomically([1, 2, 3], to: path)
        try ResumeData.writeAtomically([4, 5], to: path)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == [4, 5])
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        #expect(throws: EngineError.self) {
            try ResumeData.writeAtomically([1], to: scratch.root.appendingPathComponent("missing/dir/file").path)
        }
    }
}
