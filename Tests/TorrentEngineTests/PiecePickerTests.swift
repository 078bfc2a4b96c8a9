import BitTorrent
import TestSupport
import Testing
@testable import TorrentEngine

// Picker states are written as strings, one character per piece:
//   bitfields "1"/"0" (underscores and spaces are separators),
//   picks "piece.block" separated by spaces,
//   states "H" had, "h" hashing (all blocks in, check pending), "p" partial, "." untouched.

private let block = Lengths.blockSize
private let fixedSeed: UInt64 = 0x5EED

/// A bitfield from a picture such as "10_11".
private func bits(_ picture: String) -> Bitfield {
    let clean = picture.filter { $0 == "0" || $0 == "1" }
    var out = Bitfield(count: clean.count)
    for (index, bit) in clean.enumerated() where bit == "1" { out[index] = true }
    return out
}

/// `pieces` pieces of `blocksPerPiece` full 16 KiB blocks each.
private func makePicker(pieces: Int, blocksPerPiece: Int = 1, have: String? = nil, seed: UInt64 = fixedSeed) -> PiecePicker {
    let lengths = Lengths(totalLength: Int64(pieces * blocksPerPiece * block), pieceLength: blocksPerPiece * block)!
    return PiecePicker(lengths: lengths, have: have.map(bits) ?? Bitfield(count: pieces), seed: seed)
}

private func render(_ picks: [BlockRange]) -> String {
    picks.map { "\($0.piece.value).\($0.blockIndex)" }.joined(separator: " ")
}

/// Piece order of picks, one entry per piece in first-seen order.
private func pieceOrder(_ picks: [BlockRange]) -> String {
    var seen: [Int] = []
    for pick in picks where !seen.contains(pick.piece.value) { seen.append(pick.piece.value) }
    return seen.map(String.init).joined(separator: " ")
}

private func state(_ picker: PiecePicker) -> String {
    let progress = Set(picker.inProgress.map(\.value))
    return String(picker.lengths.pieces.map { piece -> Character in
        if picker.have[piece.value] { return "H" }
        if progress.contains(piece.value) { return "p" }
        if picker.isReceived(picker.lengths.block(piece, index: 0)!) { return "h" }
        return "."
    })
}

private func blockRange(_ picker: PiecePicker, _ piece: Int, _ index: Int) -> BlockRange {
    picker.lengths.block(picker.lengths.piece(piece)!, index: index)!
}

/// A peer as the picker's caller tracks it: what it has and what it was asked for.
private final class Peer {
    let has: Bitfield
    let fast: Bool
    var requested = Set<BlockRange>()

    init(_ picture: String, fast: Bool = false) {
        has = bits(picture)
        self.fast = fast
    }

    func pick(_ picker: inout PiecePicker, _ count: Int, now: Int64 = 0) -> [BlockRange] {
        let picks = picker.pick(count: count, peerHas: has, alreadyRequested: requested, fast: fast, now: now)
        requested.formUnion(picks)
        return picks
    }
}

@Suite("Piece picker")
struct PiecePickerTests {
    /// Availability from the other peers' bitfields; a seed then picks one block per
    /// piece. Where counts tie the seeded hash decides, so only the sort is checked.
    @Test("rarest first", arguments: [
        (["11110", "01110", "00110", "00010"], "4 0 1 2 3" as String?),
        (["00001", "00011", "00111", "01111"], "0 1 2 3 4"),
        (["11111", "11111", "01111", "00111", "00011", "00001"], "0 1 2 3 4"),
        (["10101", "10101", "01000"], nil),
        (["11000", "00011", "00100"], nil),
    ] as [([String], String?)])
    func rarestFirst(others: [String], expected: String?) {
        var picker = makePicker(pieces: 5)
        for other in others { picker.peerAdded(bits(other)) }
        let picks = Peer("11111").pick(&picker, 5)
        let order = pieceOrder(picks)
        let availability = (0..<5).map { picker.availability(of: picker.lengths.piece($0)!) }
        let picked = order.split(separator: " ").map { Int($0)! }
        #expect(picked.sorted() == [0, 1, 2, 3, 4])
        #expect(zip(picked, picked.dropFirst()).allSatisfy { availability[$0] <= availability[$1] },
                "order \(order) against availability \(availability)")
        if let expected { #expect(order == expected) }
    }

    @Test("rarest first with unique counts gives the exact order")
    func rarestExact() {
        var picker = makePicker(pieces: 6)
        for other in ["101011", "100011", "001001", "001001", "101101"] { picker.peerAdded(bits(other)) }
        picker.peerHas(picker.lengths.piece(5)!)
        let seed = Peer("111111")
        picker.peerAdded(seed.has)
        #expect((0..<6).map { picker.availability(of: picker.lengths.piece($0)!) } == [4, 1, 5, 2, 3, 7])
        #expect(render(seed.pick(&picker, 6)) == "1.0 3.0 4.0 0.0 2.0 5.0")
    }

    @Test("availability follows peers leaving; order is rebuilt")
    func peerRemoved() {
        var picker = makePicker(pieces: 3)
        let a = bits("110")
        let b = bits("100")
        picker.peerAdded(a)
        picker.peerAdded(b)
        picker.peerAdded(bits("111"))
        #expect(render(Peer("111").pick(&picker, 1)) == "2.0")
        picker.requestDropped(blockRange(picker, 2, 0))
        picker.peerRemoved(b)
        picker.peerRemoved(a)
        picker.peerRemoved(a)  // more removals than adds never underflow
        picker.peerAdded(bits("011"))
        picker.peerAdded(bits("011"))
        #expect(picker.availability(of: picker.lengths.piece(0)!) == 0)
        #expect(render(Peer("111").pick(&picker, 1)) == "0.0")
    }

    @Test("equally rare pieces: a fixed seed gives a fixed order, another seed another one")
    func seededTieBreak() {
        func order(seed: UInt64) -> String {
            var picker = makePicker(pieces: 32, seed: seed)
            let peer = Peer(String(repeating: "1", count: 32))
            return render(peer.pick(&picker, 32))
        }
        #expect(order(seed: fixedSeed) == order(seed: fixedSeed))
        #expect(order(seed: 1) != order(seed: 2))
        #expect(order(seed: 1) != (0..<32).map { "\($0).0" }.joined(separator: " "), "not simply in index order")
    }

    @Test("priority beats rarity; skip is never picked")
    func priorities() {
        var picker = makePicker(pieces: 5)
        // Piece 4 is the rarest but has the lowest priority; piece 2 is skipped.
        for other in ["11110", "11110", "01110"] { picker.peerAdded(bits(other)) }
        picker.setPriority(1, for: picker.lengths.piece(4)!)
        picker.setPriority(4, for: picker.lengths.piece(0)!)
        picker.setPriority(4, for: picker.lengths.piece(3)!)
        picker.setPriority(PiecePicker.skip, for: picker.lengths.piece(2)!)
        picker.setPriority(6, for: picker.lengths.piece(1)!)
        let peer = Peer("11111")
        #expect(render(peer.pick(&picker, 10)) == "1.0 0.0 3.0 4.0")
        #expect(!picker.wants(2))
        #expect(picker.priority(of: picker.lengths.piece(1)!) == 6)
        // Priorities above the maximum are clamped.
        picker.setPriority(200, for: picker.lengths.piece(1)!)
        #expect(picker.priority(of: picker.lengths.piece(1)!) == PiecePicker.maxPriority)
    }

    @Test("skipped pieces are picked once they carry a deadline")
    func skipWithDeadline() {
        var picker = makePicker(pieces: 3)
        for piece in picker.lengths.pieces { picker.setPriority(PiecePicker.skip, for: piece) }
        #expect(picker.isDone)
        #expect(Peer("111").pick(&picker, 5).isEmpty)
        picker.setDeadline(1000, for: picker.lengths.piece(1)!)
        #expect(!picker.isDone)
        #expect(picker.wants(1))
        #expect(render(Peer("111").pick(&picker, 5)) == "1.0")
        // Clearing the deadline makes it unwanted again.
        picker.setDeadline(nil, for: picker.lengths.piece(1)!)
        #expect(!picker.wants(1))
    }

    @Test("deadlines come first, nearest first, ahead of partial pieces and priorities")
    func deadlines() {
        var picker = makePicker(pieces: 6, blocksPerPiece: 2)
        // Piece 0 is the rarest, so another peer starts it: it becomes partial.
        picker.peerAdded(bits("011111"))
        #expect(render(Peer("111111").pick(&picker, 1)) == "0.0")
        picker.setPriority(7, for: picker.lengths.piece(5)!)
        picker.setDeadline(5_000, for: picker.lengths.piece(3)!)
        picker.setDeadline(1_000, for: picker.lengths.piece(2)!)
        picker.setDeadline(9_000, for: picker.lengths.piece(4)!)
        picker.setDeadline(3_000, for: picker.lengths.piece(1)!)
        #expect(render(Peer("111111").pick(&picker, 11, now: 0)) == "2.0 2.1 1.0 1.1 3.0 3.1 4.0 4.1 0.1 5.0 5.1")
    }

    @Test("moving a deadline reorders; had pieces never enter the deadline list")
    func deadlineUpdates() {
        var picker = makePicker(pieces: 4, have: "1000")
        picker.setDeadline(100, for: picker.lengths.piece(0)!)  // had: ignored for picking
        picker.setDeadline(200, for: picker.lengths.piece(1)!)
        picker.setDeadline(300, for: picker.lengths.piece(2)!)
        picker.setDeadline(50, for: picker.lengths.piece(2)!)  // moved ahead
        picker.setPriority(PiecePicker.skip, for: picker.lengths.piece(3)!)
        #expect(render(Peer("1111").pick(&picker, 4)) == "2.0 1.0")
        #expect(picker.deadline(of: picker.lengths.piece(2)!) == 50)
    }

    @Test("partial pieces are finished before new ones are started")
    func partialFirst() {
        var picker = makePicker(pieces: 4, blocksPerPiece: 4)
        // Make piece 3 rarest so it is started first.
        picker.peerAdded(bits("1110"))
        #expect(render(Peer("1111").pick(&picker, 2)) == "3.0 3.1")
        #expect(state(picker) == "...p")
        // Another peer finishes piece 3 before opening anything new.
        let b = Peer("1111").pick(&picker, 3)
        #expect(render(Array(b.prefix(2))) == "3.2 3.3")
        #expect(b.count == 3)
        guard let started = b.last?.piece.value, b.count == 3 else { return }
        #expect(started != 3)
        #expect(picker.inProgress.map(\.value).sorted() == [started, 3].sorted())
        // The next peer continues the piece b started rather than a third one.
        #expect(render(Peer("1110").pick(&picker, 1)) == "\(started).1")
    }

    @Test("sequential mode picks in index order, within priority")
    func sequential() {
        var picker = makePicker(pieces: 6)
        picker.peerAdded(bits("000001"))  // rarity is ignored
        picker.peerAdded(bits("111110"))
        picker.peerAdded(bits("111110"))
        picker.sequential = true
        picker.setPriority(3, for: picker.lengths.piece(4)!)
        picker.setPriority(PiecePicker.skip, for: picker.lengths.piece(1)!)
        #expect(render(Peer("111111").pick(&picker, 6)) == "4.0 0.0 2.0 3.0 5.0")
        // Switching back restores rarest first.
        var fresh = makePicker(pieces: 3)
        fresh.sequential = true
        fresh.sequential = false
        fresh.peerAdded(bits("110"))
        #expect(render(Peer("111").pick(&fresh, 1)) == "2.0")
    }

    @Test("endgame: once nothing is open, a block is requested from at most 2 peers")
    func endgame() {
        var picker = makePicker(pieces: 1, blocksPerPiece: 2)
        let a = Peer("1")
        let b = Peer("1")
        let c = Peer("1")
        #expect(render(a.pick(&picker, 2)) == "0.0 0.1")
        #expect(render(a.pick(&picker, 2)) == "", "never twice to the same peer")
        #expect(render(b.pick(&picker, 5)) == "0.0 0.1")
        #expect(render(c.pick(&picker, 5)) == "", "third request of a block: over maxDuplicates")
        #expect(PiecePicker.maxDuplicates == 2)
        // One duplicate dropped: a third peer may now take that block.
        picker.requestDropped(blockRange(picker, 0, 1))
        b.requested.remove(blockRange(picker, 0, 1))
        #expect(render(c.pick(&picker, 5)) == "0.1")
    }

    @Test("endgame only starts when no open block is left anywhere")
    func noEarlyEndgame() {
        var picker = makePicker(pieces: 2)
        picker.peerAdded(bits("01"))  // piece 0 is the rarest
        #expect(render(Peer("10").pick(&picker, 1)) == "0.0")
        // Piece 1 is still open: no duplicate of 0.0 yet.
        #expect(render(Peer("11").pick(&picker, 1)) == "1.0")
        // Now nothing is open: duplicates of both.
        #expect(render(Peer("11").pick(&picker, 5)) == "0.0 1.0")
        #expect(render(Peer("11").pick(&picker, 5)) == "")
    }

    @Test("late deadline blocks are duplicated for fast peers only", arguments: [
        // (deadline relative to now, fast, expected pick)
        (Int64(500_000_000), true, "0.0"),
        (500_000_000, false, "1.0"),
        (-1, true, "0.0"),
        (5_000_000_000, true, "1.0"),
        (5_000_000_000, false, "1.0"),
    ] as [(Int64, Bool, String)])
    func lateDeadlines(deadlineIn: Int64, fast: Bool, expected: String) {
        var picker = makePicker(pieces: 2)
        let now: Int64 = 100_000_000_000
        picker.setDeadline(now + deadlineIn, for: picker.lengths.piece(0)!)
        let first = Peer("11")
        #expect(render(first.pick(&picker, 1, now: now)) == "0.0")
        let second = Peer("11", fast: fast)
        #expect(render(second.pick(&picker, 1, now: now)) == expected)
    }

    @Test("requestDropped returns blocks to the pool")
    func requestDropped() {
        var picker = makePicker(pieces: 2, blocksPerPiece: 3)
        picker.peerAdded(bits("01"))
        let a = Peer("11")
        #expect(render(a.pick(&picker, 2)) == "0.0 0.1")
        #expect(state(picker) == "p.")
        picker.requestDropped(blockRange(picker, 0, 1))
        #expect(state(picker) == "p.")
        picker.requestDropped(blockRange(picker, 0, 0))
        #expect(state(picker) == "..", "nothing requested or received: back to untouched")
        // Dropping what was never requested changes nothing.
        picker.requestDropped(blockRange(picker, 1, 2))
        #expect(state(picker) == "..")
        let b = Peer("11")
        #expect(render(b.pick(&picker, 3)) == "0.0 0.1 0.2")
    }

    @Test("blockReceived: unexpected, stored, pieceComplete")
    func blockReceived() {
        var picker = makePicker(pieces: 2, blocksPerPiece: 2)
        picker.peerAdded(bits("01"))
        #expect(picker.blockReceived(blockRange(picker, 0, 0)) == .unexpected, "never requested")
        let a = Peer("11")
        #expect(render(a.pick(&picker, 1)) == "0.0")
        #expect(picker.blockReceived(blockRange(picker, 0, 1)) == .unexpected, "other block of a partial piece")
        #expect(picker.blockReceived(blockRange(picker, 0, 0)) == .stored)
        #expect(picker.isReceived(blockRange(picker, 0, 0)))
        #expect(!picker.isReceived(blockRange(picker, 0, 1)))
        #expect(picker.blockReceived(blockRange(picker, 0, 0)) == .unexpected, "duplicate")
        #expect(render(a.pick(&picker, 5)) == "0.1 1.0 1.1")
        #expect(picker.blockReceived(blockRange(picker, 0, 1)) == .pieceComplete)
        #expect(state(picker) == "hp")
        #expect(!picker.wants(0))
        #expect(picker.blockReceived(blockRange(picker, 0, 1)) == .unexpected, "piece is hashing")
        // A hashing piece is not handed out again, even in endgame.
        #expect(Peer("11").pick(&picker, 5).allSatisfy { $0.piece.value == 1 })
    }

    @Test("pieceFailed re-opens every block")
    func pieceFailed() {
        var picker = makePicker(pieces: 1, blocksPerPiece: 3)
        let a = Peer("1")
        _ = a.pick(&picker, 3)
        for index in 0..<3 { _ = picker.blockReceived(blockRange(picker, 0, index)) }
        #expect(state(picker) == "h")
        #expect(Peer("1").pick(&picker, 3).isEmpty)
        picker.pieceFailed(picker.lengths.piece(0)!)
        #expect(state(picker) == ".")
        #expect(picker.wants(0))
        #expect(!picker.isReceived(blockRange(picker, 0, 0)))
        #expect(render(Peer("1").pick(&picker, 3)) == "0.0 0.1 0.2")
    }

    @Test("pieceVerified sets have and, at the end, isDone")
    func pieceVerified() {
        var picker = makePicker(pieces: 3)
        picker.setPriority(PiecePicker.skip, for: picker.lengths.piece(2)!)
        let a = Peer("111")
        #expect(render(a.pick(&picker, 3)).split(separator: " ").count == 2)
        for piece in 0..<2 {
            #expect(!picker.isDone)
            #expect(picker.blockReceived(blockRange(picker, piece, 0)) == .pieceComplete)
            picker.pieceVerified(picker.lengths.piece(piece)!)
        }
        #expect(state(picker) == "HH.")
        #expect(picker.have == bits("110"))
        #expect(picker.isDone, "the skipped piece is not wanted")
        #expect(Peer("111").pick(&picker, 3).isEmpty)
        // A deadline on the skipped piece makes it wanted again.
        picker.setDeadline(1, for: picker.lengths.piece(2)!)
        #expect(!picker.isDone)
        picker.setDeadline(5, for: picker.lengths.piece(0)!)  // had: never picked
        #expect(render(Peer("111").pick(&picker, 3)) == "2.0")
    }

    @Test("isInteresting", arguments: [
        ("1100", "1000", "", true),
        ("1100", "1100", "", false),
        ("1111", "0000", "", true),
        ("1111", "1111", "", false),
        ("0000", "0000", "", false),
        ("0010", "0000", "2", false),   // only a skipped piece
        ("1111", "1101", "2", false),   // complete peer, but all we want is had
        ("1111", "1100", "2", true),
    ])
    func isInteresting(theirs: String, ours: String, skipped: String, expected: Bool) {
        var picker = makePicker(pieces: 4, have: ours)
        for piece in skipped.compactMap({ Int(String($0)) }) {
            picker.setPriority(PiecePicker.skip, for: picker.lengths.piece(piece)!)
        }
        #expect(picker.isInteresting(bits(theirs)) == expected)
    }

    @Test("a hashing piece makes a peer that has only it uninteresting")
    func interestWhileHashing() {
        var picker = makePicker(pieces: 2)
        _ = Peer("10").pick(&picker, 1)
        _ = picker.blockReceived(blockRange(picker, 0, 0))
        #expect(!picker.isInteresting(bits("10")))
        #expect(picker.isInteresting(bits("01")))
    }

    @Test("the short last piece has its own block count")
    func shortLastPiece() {
        let lengths = Lengths(totalLength: Int64(2 * 4 * block + block + 100), pieceLength: 4 * block)!
        var picker = PiecePicker(lengths: lengths, have: Bitfield(count: 3), seed: fixedSeed)
        picker.sequential = true
        let picks = Peer("111").pick(&picker, 20)
        #expect(render(picks) == "0.0 0.1 0.2 0.3 1.0 1.1 1.2 1.3 2.0 2.1")
        #expect(picks.last?.length == 100)
    }

    @Test("count 0 picks nothing and claims nothing")
    func countZero() {
        var picker = makePicker(pieces: 2)
        #expect(Peer("11").pick(&picker, 0).isEmpty)
        #expect(state(picker) == "..")
    }

    @Test("random workload keeps the invariants and still completes", arguments: [1, 2, 3] as [UInt64])
    func randomWorkload(seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        var picker = makePicker(pieces: 12, blocksPerPiece: 3, seed: seed)
        let peers = (0..<4).map { index in
            Peer(String((0..<12).map { _ in generator.next() % 3 == 0 ? "0" : "1" }), fast: index % 2 == 0)
        }
        for peer in peers { picker.peerAdded(peer.has) }
        var received = Set<BlockRange>()
        for step in 0..<600 {
            let peer = peers[Int(generator.next() % 4)]
            switch generator.next() % 4 {
            case 0:
                let before = peer.requested
                let picks = picker.pick(count: 3, peerHas: peer.has, alreadyRequested: before, fast: peer.fast,
                                        now: Int64(step) * 1_000_000_000)
                peer.requested.formUnion(picks)
                for pick in picks {
                    #expect(!before.contains(pick), "step \(step): \(pick) handed to the same peer twice")
                    #expect(!received.contains(pick), "step \(step): received \(pick) handed out")
                    #expect(peer.has[pick.piece.value], "step \(step): \(pick) from a peer without it")
                    #expect(peers.filter { $0.requested.contains(pick) }.count <= PiecePicker.maxDuplicates,
                            "step \(step): \(pick) over maxDuplicates")
                }
            case 1:
                if let block = peer.requested.randomElement(using: &generator) {
                    peer.requested.remove(block)
                    picker.requestDropped(block)
                }
            default:
                if let block = peer.requested.randomElement(using: &generator) {
                    peer.requested.remove(block)
                    let outcome = picker.blockReceived(block)
                    #expect((outcome == .unexpected) == received.contains(block), "step \(step): \(block) \(outcome)")
                    received.insert(block)
                    if outcome == .pieceComplete { picker.pieceVerified(block.piece) }
                    // Duplicates elsewhere are cancelled.
                    for other in peers where other.requested.remove(block) != nil { picker.requestDropped(block) }
                }
            }
            if step == 300 { picker.setDeadline(Int64(step) * 1_000_000_000, for: picker.lengths.piece(11)!) }
        }
        // A seed finishes the job.
        for peer in peers {
            for block in peer.requested { picker.requestDropped(block) }
            peer.requested.removeAll()
        }
        let seedPeer = Peer(String(repeating: "1", count: 12))
        picker.peerAdded(seedPeer.has)
        var rounds = 0
        while !picker.isDone && rounds < 100 {
            rounds += 1
            for block in seedPeer.pick(&picker, 8) {
                seedPeer.requested.remove(block)
                if picker.blockReceived(block) == .pieceComplete { picker.pieceVerified(block.piece) }
            }
        }
        #expect(picker.isDone, "stuck: \(state(picker))")
        #expect(picker.have.isComplete)
    }
}

@Suite("Piece map")
struct PieceMapTests {
    @Test("one cell per piece, or runs of pieces, each showing the run's most urgent state")
    func cells() {
        var picker = makePicker(pieces: 8, blocksPerPiece: 2, have: "1100_0000")
        picker.setPriority(PiecePicker.skip, for: picker.lengths.piece(6)!)
        picker.setPriority(PiecePicker.skip, for: picker.lengths.piece(7)!)
        picker.sequential = true
        let picks = picker.pick(count: 1, peerHas: bits("1111_1111"), alreadyRequested: [], fast: false, now: 0)
        #expect(picks.map(\.piece.value) == [2])
        #expect(picker.map(cells: 8) == "##>---..")
        #expect(picker.map(cells: 100) == "##>---..", "never more cells than pieces")
        // Two pieces a cell: verified+verified, then the in-flight pair, then wanted, then not wanted.
        #expect(picker.map(cells: 4) == "#>-.")
        // A run with verified and unwanted pieces only.
        var partly = makePicker(pieces: 4, have: "1000")
        for piece in 1..<4 { partly.setPriority(PiecePicker.skip, for: partly.lengths.piece(piece)!) }
        #expect(partly.map(cells: 1) == "+")
        #expect(partly.map(cells: 0) == "")
    }
}

@Suite("Picking runs")
struct PickRunsTests {
    @Test("with runs, each fresh piece is followed by the next ones in index order")
    func runsFollowIndexOrder() {
        var picker = makePicker(pieces: 12, have: "0000_0100_0000")
        let picks = picker.pick(count: 4, peerHas: bits("1111_1111_1111"), alreadyRequested: [], fast: false, now: 0,
                                runs: true)
        let pieces = picks.map(\.piece.value)
        #expect(pieces.count == 4)
        // Consecutive, skipping only what is had.
        for (a, b) in zip(pieces, pieces.dropFirst()) { #expect(b == a + 1 || (a == 4 && b == 6), "\(pieces)") }
        var plain = makePicker(pieces: 12)
        let scattered = plain.pick(count: 4, peerHas: bits("1111_1111_1111"), alreadyRequested: [], fast: false, now: 0)
        #expect(zip(scattered, scattered.dropFirst()).contains { $1.piece.value != $0.piece.value + 1 },
                "without runs the rarest-first order is not sequential")
    }
}

