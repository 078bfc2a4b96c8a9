import BitTorrent
import Testing
@testable import TorrentEngine

private let second: Int64 = 1_000_000_000
/// 10 pieces of 32 KiB (two blocks each), the last one 20 000 bytes.
private let lengths = Lengths(totalLength: 9 * 32768 + 20000, pieceLength: 32768)!

private func session(fast: Bool = true, extensions: Bool = true, magnet: Bool = false, now: Int64 = 0) -> PeerSession {
    PeerSession(fast: fast, extensions: extensions, lengths: magnet ? nil : lengths, now: now)
}

private func block(_ piece: Int, _ index: Int) -> BlockRange {
    lengths.block(lengths.piece(piece)!, index: index)!
}

private func isViolation(_ events: [PeerEvent]) -> Bool {
    events.count == 1 && { if case .disconnect(.protocolViolation) = events[0] { return true } else { return false } }()
}

/// The blocks of every requestsDropped event, as a set (dictionary order is not stable).
private func dropped(_ events: [PeerEvent]) -> Set<BlockRange> {
    var out = Set<BlockRange>()
    for event in events { if case .requestsDropped(let blocks) = event { out.formUnion(blocks) } }
    return out
}

private func sends(_ events: [PeerEvent]) -> [PeerMessage] {
    events.compactMap { if case .send(let message) = $0 { return message } else { return nil } }
}

/// A session unchoked by us, with the peer's bitfield known.
private func uploading(fast: Bool) -> PeerSession {
    var peer = session(fast: fast)
    _ = peer.setChoking(false)
    return peer
}

@Suite("Peer session")
struct PeerSessionTests {
    // MARK: Choke and requests

    @Test("choke without fast drops every outstanding request")
    func chokeWithoutFast() {
        var peer = session(fast: false)
        _ = peer.received(.unchoke, now: 0)
        #expect(!peer.peerChoking)
        let blocks = [block(0, 0), block(0, 1), block(9, 1)]
        for b in blocks { peer.sentRequest(b, now: 1) }
        let events = peer.received(.choke, now: 2)
        #expect(events.first == .choked)
        #expect(dropped(events) == Set(blocks))
        #expect(events.count == 2)
        #expect(peer.outstanding.isEmpty)
        #expect(peer.peerChoking)
        // A choke with nothing outstanding has no requestsDropped event.
        #expect(peer.received(.choke, now: 3) == [.choked])
    }

    @Test("choke with fast keeps requests until each is rejected")
    func chokeWithFast() {
        var peer = session(fast: true)
        _ = peer.received(.unchoke, now: 0)
        peer.sentRequest(block(1, 0), now: 1)
        peer.sentRequest(block(1, 1), now: 1)
        #expect(peer.received(.choke, now: 2) == [.choked])
        #expect(peer.outstanding.count == 2)
        #expect(peer.received(.reject(piece: 1, begin: 0, length: 16384), now: 3) == [.requestsDropped([block(1, 0)])])
        #expect(Set(peer.outstanding.keys) == [block(1, 1)])
        // A reject of something not outstanding is ignored.
        #expect(peer.received(.reject(piece: 1, begin: 0, length: 16384), now: 4).isEmpty)
        // The other block may still arrive.
        let data = [UInt8](repeating: 7, count: 16384)
        #expect(peer.received(.piece(piece: 1, begin: 16384, block: data), now: 5) == [.block(block(1, 1), data)])
    }

    @Test("reject without the fast extension is a violation")
    func rejectWithoutFast() {
        var peer = session(fast: false)
        #expect(isViolation(peer.received(.reject(piece: 0, begin: 0, length: 16384), now: 0)))
    }

    @Test("allowed fast pieces may be requested while choked")
    func allowedFast() {
        var peer = session(fast: true)
        #expect(!peer.allowedFast.contains(4))
        #expect(peer.received(.allowedFast(piece: 4), now: 0).isEmpty)
        #expect(peer.received(.allowedFast(piece: 10), now: 0).isEmpty)  // out of range: ignored
        #expect(peer.allowedFast.contains(4))
        #expect(!peer.allowedFast.contains(5))
        #expect(peer.allowedFast == [4])
        var plain = session(fast: false)
        #expect(isViolation(plain.received(.allowedFast(piece: 4), now: 0)))
    }

    // MARK: Ranges

    @Test("out-of-range have, request, piece are protocol violations", arguments: [
        PeerMessage.have(piece: 10), .have(piece: -1), .have(piece: Int(Int32.max)),
        .request(piece: 10, begin: 0, length: 16384),
        .request(piece: -1, begin: 0, length: 16384),
        .request(piece: 0, begin: -16384, length: 16384),
        .request(piece: 0, begin: 16385, length: 16384),  // past the end of the piece
        .request(piece: 0, begin: 32768, length: 1),
        .request(piece: 9, begin: 16384, length: 3617),  // the short last piece: 20000 - 16384 = 3616
        .request(piece: 0, begin: 0, length: 0),
        .request(piece: 0, begin: 0, length: -1),
        .request(piece: 0, begin: 0, length: 16385),  // over 16 KiB
        .request(piece: 0, begin: 0, length: 32768),
        .piece(piece: 10, begin: 0, block: [1]),
        .piece(piece: 0, begin: 32768, block: [1]),
        .piece(piece: 0, begin: 0, block: [UInt8](repeating: 0, count: 16385)),
        .piece(piece: 0, begin: 0, block: []),
        .piece(piece: 9, begin: 16384, block: [UInt8](repeating: 0, count: 3617)),
    ])
    func outOfRange(message: PeerMessage) {
        var peer = uploading(fast: true)
        peer.sentRequest(block(0, 0), now: 0)
        #expect(isViolation(peer.received(message, now: 1)), "\(message)")
    }

    @Test("in-range edge requests are accepted")
    func edgeRequests() {
        var peer = uploading(fast: true)
        #expect(peer.received(.request(piece: 9, begin: 16384, length: 3616), now: 0)
            == [.uploadRequested(lengths.range(piece: 9, begin: 16384, length: 3616)!)])
        #expect(peer.received(.request(piece: 0, begin: 16384, length: 16384), now: 0) == [.uploadRequested(block(0, 1))])
        #expect(peer.received(.request(piece: 3, begin: 1, length: 1), now: 0).count == 1)
    }

    @Test("have: new pieces reported once")
    func have() {
        var peer = session()
        #expect(peer.received(.have(piece: 3), now: 0) == [.have(lengths.piece(3)!)])
        #expect(peer.received(.have(piece: 3), now: 0).isEmpty)
        #expect(peer.peerHas?.setIndices == [3])
    }

    // MARK: Bitfields

    @Test("a later bitfield or haveAll adds its new pieces as haves; haveNone removes nothing")
    func laterBitfields() {
        var peer = session()
        let wire: [UInt8] = [0b1010_0000, 0b0100_0000]
        let expected = Bitfield(wire: wire, count: 10)!
        #expect(peer.received(.bitfield(wire), now: 0) == [.bitfield(expected)])
        #expect(peer.peerHas == expected)
        // aria2 sends a fresh bitfield instead of many HAVEs: only the new pieces count.
        #expect(peer.received(.bitfield([0b1110_0000, 0b0100_0000]), now: 0) == [.have(lengths.piece(1)!)])
        #expect(peer.received(.bitfield(wire), now: 0).isEmpty)
        #expect(peer.peerHas?.setIndices == [0, 1, 2, 9])
        #expect(peer.received(.haveNone, now: 0).isEmpty)
        #expect(peer.peerHas?.setIndices == [0, 1, 2, 9])
        let rest = peer.received(.haveAll, now: 0)
        #expect(rest == [3, 4, 5, 6, 7, 8].map { PeerEvent.have(lengths.piece($0)!) })
        #expect(peer.peerHas?.isComplete == true)
        // A later bitfield of the wrong shape is still a violation.
        #expect(isViolation(peer.received(.bitfield([0xFF]), now: 0)))
    }

    @Test("wrong-length bitfields and spare bits are violations", arguments: [
        [], [0xFF], [0xFF, 0xC0, 0x00], [0x00, 0x20], [0x00, 0x01], [0xFF, 0xFF],
    ] as [[UInt8]])
    func badBitfield(wire: [UInt8]) {
        var peer = session()
        #expect(isViolation(peer.received(.bitfield(wire), now: 0)))
    }

    @Test("haveAll and haveNone need the fast bit", arguments: [PeerMessage.haveAll, .haveNone])
    func haveAllNeedsFast(message: PeerMessage) {
        var plain = session(fast: false)
        #expect(isViolation(plain.received(message, now: 0)))
        var fast = session(fast: true)
        let expected = Bitfield(count: 10, allSet: message == .haveAll)
        #expect(fast.received(message, now: 0) == [.bitfield(expected)])
        #expect(fast.received(message, now: 0).isEmpty, "a second one changes nothing")
    }

    @Test("suggest needs the fast bit; out of range is ignored")
    func suggest() {
        var plain = session(fast: false)
        #expect(isViolation(plain.received(.suggest(piece: 1), now: 0)))
        var fast = session(fast: true)
        #expect(fast.received(.suggest(piece: 1), now: 0) == [.suggest(lengths.piece(1)!)])
        #expect(fast.received(.suggest(piece: 10), now: 0).isEmpty)
    }

    // MARK: Magnet: messages before the metadata

    @Test("magnet: a bitfield before the metadata is held, then checked")
    func magnetBitfield() {
        var peer = session(magnet: true)
        #expect(peer.received(.bitfield([0xFF, 0xC0]), now: 0).isEmpty)
        #expect(peer.received(.have(piece: 3), now: 0).isEmpty)
        #expect(peer.peerHas == nil)
        #expect(peer.metadataKnown(lengths) == [.bitfield(Bitfield(count: 10, allSet: true))])
        #expect(peer.peerHas?.isComplete == true)
        // Only once.
        #expect(peer.metadataKnown(lengths).isEmpty)
    }

    @Test("magnet: haves alone become a bitfield")
    func magnetHaves() {
        var peer = session(magnet: true)
        _ = peer.received(.have(piece: 2), now: 0)
        _ = peer.received(.have(piece: 7), now: 0)
        #expect(peer.metadataKnown(lengths) == [.bitfield(Bitfield(wire: [0b0010_0001, 0], count: 10)!)])
    }

    @Test("magnet: a held bitfield of the wrong size or with spare bits disconnects", arguments: [
        [0xFF], [0xFF, 0xC0, 0x00], [0xFF, 0xE0],
    ] as [[UInt8]])
    func magnetBadBitfield(wire: [UInt8]) {
        var peer = session(magnet: true)
        #expect(peer.received(.bitfield(wire), now: 0).isEmpty)
        #expect(isViolation(peer.metadataKnown(lengths)))
    }

    @Test("magnet: a held have out of range disconnects")
    func magnetBadHave() {
        var peer = session(magnet: true)
        _ = peer.received(.have(piece: 10), now: 0)
        #expect(isViolation(peer.metadataKnown(lengths)))
    }

    @Test("magnet: haveAll before the metadata")
    func magnetHaveAll() {
        var peer = session(magnet: true)
        #expect(peer.received(.haveAll, now: 0).isEmpty)
        #expect(peer.metadataKnown(lengths) == [.bitfield(Bitfield(count: 10, allSet: true))])
    }

    /// BEP 6 HaveNone from a peer with nothing yet, before we have the metadata: when the
    /// metadata arrives the peer has an empty bitfield and stays connected.
    @Test("magnet: haveNone before the metadata is an empty bitfield, not a violation")
    func magnetHaveNone() {
        var peer = session(magnet: true)
        #expect(peer.received(.haveNone, now: 0).isEmpty)
        #expect(peer.metadataKnown(lengths) == [.bitfield(Bitfield(count: 10))])
    }

    @Test("magnet: announcements before the metadata merge", arguments: [
        (PeerMessage.bitfield([0x80, 0]), PeerMessage.bitfield([0x40, 0]), [0, 1]),
        (.haveAll, .haveNone, Array(0..<10)),
        (.haveNone, .haveAll, Array(0..<10)),
        (.bitfield([0x80, 0]), .haveNone, [0]),
        (.haveAll, .bitfield([0, 0]), Array(0..<10)),
        (.haveNone, .bitfield([0, 0x40]), [9]),
    ])
    func magnetLaterBitfield(first: PeerMessage, second: PeerMessage, pieces: [Int]) {
        var peer = session(magnet: true)
        #expect(peer.received(first, now: 0).isEmpty)
        #expect(peer.received(second, now: 0).isEmpty, "\(first) then \(second)")
        let events = peer.metadataKnown(lengths)
        #expect(peer.peerHas?.setIndices == pieces, "\(first) then \(second): \(events)")
    }

    @Test("magnet: bitfields of different lengths before the metadata are a violation")
    func magnetMismatchedBitfields() {
        var peer = session(magnet: true)
        #expect(peer.received(.bitfield([0x80, 0]), now: 0).isEmpty)
        #expect(isViolation(peer.received(.bitfield([0x80]), now: 0)))
    }

    // MARK: Incoming requests

    @Test("requests while we choke: ignored without fast, rejected with fast")
    func requestsWhileChoking() {
        var plain = session(fast: false)
        #expect(plain.received(.request(piece: 0, begin: 0, length: 16384), now: 0).isEmpty)
        #expect(plain.incoming.isEmpty)
        var fast = session(fast: true)
        #expect(fast.received(.request(piece: 0, begin: 0, length: 16384), now: 0)
            == [.send(.reject(piece: 0, begin: 0, length: 16384))])
        #expect(fast.incoming.isEmpty)
    }

    @Test("choking rejects queued requests under fast, drops them silently otherwise")
    func chokingQueued() {
        for fast in [false, true] {
            var peer = uploading(fast: fast)
            _ = peer.received(.request(piece: 2, begin: 0, length: 16384), now: 0)
            #expect(peer.incoming == [block(2, 0)])
            let messages = peer.setChoking(true)
            #expect(messages == [.choke] + (fast ? [.reject(piece: 2, begin: 0, length: 16384)] : []), "fast \(fast)")
            #expect(peer.incoming.isEmpty)
            #expect(peer.setChoking(true).isEmpty, "already choking")
        }
    }

    @Test("a duplicate request is queued once; cancel and served remove it")
    func queueBookkeeping() {
        var peer = uploading(fast: true)
        #expect(peer.received(.request(piece: 1, begin: 0, length: 16384), now: 0) == [.uploadRequested(block(1, 0))])
        #expect(peer.received(.request(piece: 1, begin: 0, length: 16384), now: 0).isEmpty)
        _ = peer.received(.request(piece: 1, begin: 16384, length: 16384), now: 0)
        #expect(peer.incoming == [block(1, 0), block(1, 1)])
        #expect(peer.received(.cancel(piece: 1, begin: 0, length: 16384), now: 0).isEmpty)
        #expect(peer.incoming == [block(1, 1)])
        #expect(peer.served(block(1, 1)) == true)
        #expect(peer.served(block(1, 1)) == false)
        #expect(peer.incoming.isEmpty)
        // A cancel out of range is ignored, not a violation.
        #expect(peer.received(.cancel(piece: 99, begin: 0, length: 16384), now: 0).isEmpty)
    }

    @Test("more than 500 queued requests: reject with fast, violation without")
    func requestFlood() {
        #expect(PeerSession.maxIncomingRequests == 500)
        for fast in [true, false] {
            var peer = uploading(fast: fast)
            var accepted = 0
            // 10 pieces × 32 768 bytes: 1-byte requests give enough distinct ranges.
            outer: for piece in 0..<10 {
                for begin in 0..<60 {
                    let events = peer.received(.request(piece: piece, begin: begin, length: 1), now: 0)
                    guard case .uploadRequested? = events.first else { break outer }
                    accepted += 1
                }
            }
            #expect(accepted == 500, "fast \(fast)")
            #expect(peer.incoming.count == 500)
            let next = peer.received(.request(piece: 9, begin: 100, length: 1), now: 0)
            if fast {
                #expect(next == [.send(.reject(piece: 9, begin: 100, length: 1))])
            } else {
                #expect(isViolation(next))
            }
        }
    }

    // MARK: Incoming blocks

    @Test("an unrequested piece is dropped without an event")
    func unrequestedPiece() {
        var peer = session()
        let data = [UInt8](repeating: 1, count: 16384)
        #expect(peer.received(.piece(piece: 0, begin: 0, block: data), now: 0).isEmpty)
        peer.sentRequest(block(0, 0), now: 0)
        #expect(peer.received(.piece(piece: 0, begin: 16384, block: data), now: 0).isEmpty, "a different block")
        // A short block at a requested offset is a different range: dropped too.
        #expect(peer.received(.piece(piece: 0, begin: 0, block: Array(data.prefix(100))), now: 0).isEmpty)
        #expect(peer.received(.piece(piece: 0, begin: 0, block: data), now: 0) == [.block(block(0, 0), data)])
        #expect(peer.received(.piece(piece: 0, begin: 0, block: data), now: 0).isEmpty, "second copy")
    }

    @Test("blocks of requests we gave up on are forgiven; more unrequested data than the slack is a violation")
    func unrequestedFlood() {
        var peer = session()
        let data = [UInt8](repeating: 1, count: 16384)
        // Four requests given up on (cancelled): their blocks may still come, and do.
        let given = [block(1, 0), block(1, 1), block(3, 0), block(3, 1)]
        for request in given {
            peer.sentRequest(request, now: 0)
            _ = peer.cancelled(request)
        }
        for request in given {
            #expect(peer.received(.piece(piece: request.piece.value, begin: request.begin, block: data), now: 0).isEmpty)
        }
        #expect(peer.unrequestedBlocks == 0)
        // Then data nobody asked for: tolerated up to the slack, then the peer is cut off.
        for count in 1...PeerSession.unrequestedSlack {
            #expect(peer.received(.piece(piece: 2, begin: 0, block: data), now: 0).isEmpty, "block \(count)")
        }
        #expect(isViolation(peer.received(.piece(piece: 2, begin: 0, block: data), now: 0)))
    }

    @Test("a cancelled request's block is dropped")
    func cancelledPiece() {
        var peer = session()
        peer.sentRequest(block(3, 1), now: 0)
        #expect(peer.cancelled(block(3, 1)) == true)
        #expect(peer.cancelled(block(3, 1)) == false)
        #expect(peer.received(.piece(piece: 3, begin: 16384, block: [UInt8](repeating: 0, count: 16384)), now: 0).isEmpty)
    }

    // MARK: Timers

    @Test("idle timeout after 120 s without a message")
    func idleTimeout() {
        #expect(PeerSession.idleTimeout == 120 * second)
        var peer = session(now: 0)
        #expect(!peer.tick(now: 119 * second).contains(.disconnect(.idleTimeout)))
        #expect(peer.tick(now: 121 * second) == [.disconnect(.idleTimeout)])
        // Any message resets the clock, keep-alives included.
        var busy = session(now: 0)
        _ = busy.received(.keepAlive, now: 100 * second)
        #expect(!busy.tick(now: 200 * second).contains(.disconnect(.idleTimeout)))
        #expect(busy.tick(now: 221 * second) == [.disconnect(.idleTimeout)])
    }

    @Test("keep-alive after 60 s without sending, once")
    func keepAlive() {
        #expect(PeerSession.keepAliveInterval == 60 * second)
        var peer = session(now: 0)
        #expect(peer.tick(now: 59 * second).isEmpty)
        _ = peer.received(.keepAlive, now: 59 * second)
        #expect(peer.tick(now: 61 * second) == [.send(.keepAlive)])
        #expect(peer.tick(now: 62 * second).isEmpty, "the keep-alive counts as sending")
        // A request counts as sending too.
        peer.sentRequest(block(0, 0), now: 100 * second)
        _ = peer.received(.keepAlive, now: 120 * second)
        #expect(!peer.tick(now: 159 * second).contains(.send(.keepAlive)))
        #expect(peer.tick(now: 161 * second).contains(.send(.keepAlive)))
    }

    @Test("a request unanswered for 30 s is dropped and cancelled")
    func requestTimeout() {
        #expect(PeerSession.requestTimeout == 30 * second)
        var peer = session(now: 0)
        peer.sentRequest(block(0, 0), now: 0)
        peer.sentRequest(block(0, 1), now: 0)
        peer.sentRequest(block(5, 0), now: 20 * second)
        _ = peer.received(.keepAlive, now: 29 * second)
        #expect(peer.tick(now: 29 * second).isEmpty)
        let events = peer.tick(now: 31 * second)
        #expect(dropped(events) == [block(0, 0), block(0, 1)])
        #expect(Set(sends(events)) == [.cancel(piece: 0, begin: 0, length: 16384), .cancel(piece: 0, begin: 16384, length: 16384)])
        #expect(events.count == 3)
        #expect(Set(peer.outstanding.keys) == [block(5, 0)])
        // The late block, should it come after all, is dropped.
        #expect(peer.received(.piece(piece: 0, begin: 0, block: [UInt8](repeating: 0, count: 16384)), now: 32 * second).isEmpty)
        let later = peer.tick(now: 51 * second)
        #expect(dropped(later) == [block(5, 0)])
        #expect(peer.outstanding.isEmpty)
    }

    // MARK: Extensions

    @Test("extended messages without the extension bit are violations")
    func extendedWithoutBit() {
        var peer = session(extensions: false)
        #expect(isViolation(peer.received(.extended(id: 0, payload: ExtensionHandshake().payload), now: 0)))
        #expect(isViolation(peer.received(.extended(id: 2, payload: []), now: 0)))
    }

    @Test("extension handshake: stored, ids looked up, malformed is a violation")
    func extensionHandshake() {
        var peer = session()
        let handshake = ExtensionHandshake(messages: ["ut_metadata": 3, "ut_pex": 0], metadataSize: 500)
        #expect(peer.received(.extended(id: 0, payload: handshake.payload), now: 0) == [.extensionHandshake(handshake)])
        #expect(peer.remoteID("ut_metadata") == 3)
        #expect(peer.remoteID("ut_pex") == nil, "id 0 means disabled")
        #expect(peer.remoteID("lt_donthave") == nil)
        #expect(isViolation(peer.received(.extended(id: 0, payload: Array("i1e".utf8)), now: 0)))
    }

    @Test("ut_metadata messages arrive on our id; malformed ones are violations")
    func metadataMessages() {
        var peer = session()
        let id = PeerSession.ourExtensions["ut_metadata"]!
        let message = MetadataMessage.data(piece: 0, totalSize: 3, data: [1, 2, 3])
        #expect(peer.received(.extended(id: id, payload: message.payload), now: 0) == [.metadata(message)])
        #expect(isViolation(peer.received(.extended(id: id, payload: Array("d8:msg_typei9ee".utf8)), now: 0)))
        // An id we never announced is ignored.
        #expect(peer.received(.extended(id: 77, payload: [1, 2, 3]), now: 0).isEmpty)
    }

    @Test("PEX more often than every 55 s is ignored")
    func pexRateLimit() {
        #expect(PeerSession.pexInterval == 55 * second)
        var peer = session()
        let id = PeerSession.ourExtensions["ut_pex"]!
        let message = PEXMessage(added: [CompactPeer(address: [1, 2, 3, 4], port: 5)!], dropped: [])
        #expect(peer.received(.extended(id: id, payload: message.payload), now: 10 * second) == [.pex(message)])
        #expect(peer.received(.extended(id: id, payload: message.payload), now: 30 * second).isEmpty)
        #expect(peer.received(.extended(id: id, payload: message.payload), now: 64 * second).isEmpty)
        #expect(peer.received(.extended(id: id, payload: message.payload), now: 65 * second) == [.pex(message)])
        // Garbage PEX is ignored, not fatal.
        #expect(peer.received(.extended(id: id, payload: [0xFF]), now: 200 * second).isEmpty)
    }

    // MARK: Outgoing state

    @Test("interest and choke messages are sent only on change")
    func outgoingState() {
        var peer = session()
        #expect(peer.setInterested(true) == [.interested])
        #expect(peer.setInterested(true).isEmpty)
        #expect(peer.setInterested(false) == [.notInterested])
        #expect(peer.setChoking(false) == [.unchoke])
        #expect(peer.setChoking(false).isEmpty)
        #expect(peer.received(.interested, now: 0) == [.interestChanged(true)])
        #expect(peer.peerInterested)
        #expect(peer.received(.notInterested, now: 0) == [.interestChanged(false)])
        #expect(!peer.peerInterested)
    }

    @Test("pieces we allow fast may be requested from us while we choke; others are rejected")
    func allowingFast() {
        var peer = session(fast: true)
        #expect(peer.allowFast([3, 7, 3, 99]) == [.allowedFast(piece: 3), .allowedFast(piece: 7)])
        #expect(peer.allowFast([3]).isEmpty)  // said once
        #expect(peer.received(.request(piece: 3, begin: 0, length: 16384), now: 1) == [.uploadRequested(block(3, 0))])
        #expect(peer.received(.request(piece: 4, begin: 0, length: 16384), now: 1)
            == [.send(.reject(piece: 4, begin: 0, length: 16384))])
        // Unchoked, then choked again: the allowed request survives, the other is rejected.
        _ = peer.setChoking(false)
        _ = peer.received(.request(piece: 5, begin: 0, length: 16384), now: 2)
        #expect(peer.setChoking(true) == [.choke, .reject(piece: 5, begin: 0, length: 16384)])
        #expect(peer.incoming == [block(3, 0)])
        // Without the fast extension nothing is allowed.
        var plain = session(fast: false)
        #expect(plain.allowFast([1]).isEmpty)
    }
}
