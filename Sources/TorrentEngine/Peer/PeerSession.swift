import BitTorrent

/// Why we close a peer connection.
public enum DisconnectReason: Hashable, Sendable, CustomStringConvertible {
    case protocolViolation(String)
    case handshakeTimeout
    case idleTimeout
    case wrongInfoHash
    case connectedToSelf
    case duplicate
    case banned
    case notUseful
    case shutdown
    case connectionFailed(String)

    public var description: String {
        switch self {
        case .protocolViolation(let what): return "protocol violation: \(what)"
        case .handshakeTimeout: return "handshake timed out"
        case .idleTimeout: return "idle for too long"
        case .wrongInfoHash: return "wrong info hash"
        case .connectedToSelf: return "connected to ourselves"
        case .duplicate: return "duplicate connection"
        case .banned: return "banned"
        case .notUseful: return "neither side interested"
        case .shutdown: return "shutting down"
        case .connectionFailed(let why): return "connection failed: \(why)"
        }
    }
}

/// What a peer's message means for the torrent.
public enum PeerEvent: Hashable, Sendable {
    /// The peer's pieces became known (bitfield, have all, have none) or, for a magnet,
    /// became checkable once metadata arrived.
    case bitfield(Bitfield)
    case have(PieceIndex)
    case block(BlockRange, [UInt8])
    /// Our outstanding requests that will not be answered (choke, reject, timeout).
    case requestsDropped([BlockRange])
    /// The peer asks for a block we should send (already checked: we have it, they may ask).
    case uploadRequested(BlockRange)
    case unchoked
    case choked
    case interestChanged(Bool)
    case extensionHandshake(ExtensionHandshake)
    case metadata(MetadataMessage)
    case pex(PEXMessage)
    case suggest(PieceIndex)
    case send(PeerMessage)
    case disconnect(DisconnectReason)
}

/// The BEP 3/6/10 rules of one connection after the handshake, as a value: messages in,
/// events out. No sockets, no clock: `now` is nanoseconds on a monotonic scale.
public struct PeerSession: Sendable {
    /// Most requests a peer may have queued with us (RELIABILITY: ~500).
    public static let maxIncomingRequests = 500
    /// A request unanswered this long is given up and re-requested elsewhere.
    public static let requestTimeout: Int64 = 30_000_000_000
    /// Unrequested blocks tolerated (beyond those of requests we gave up on) before the
    /// peer counts as breaking the protocol.
    public static let unrequestedSlack = 16
    /// Disconnect after this long without any message (RELIABILITY: ~120 s).
    public static let idleTimeout: Int64 = 120_000_000_000
    /// Send a keep-alive after this long without sending.
    public static let keepAliveInterval: Int64 = 60_000_000_000
    /// Our extension message ids (what we ask peers to use).
    public static let ourExtensions: [String: UInt8] = ["ut_metadata": 1, "ut_pex": 2]
    /// Most PEX messages honored per minute (BEP 11: one a minute).
    public static let pexInterval: Int64 = 55_000_000_000

    public let fast: Bool
    public let extensions: Bool
    public private(set) var lengths: Lengths?
    public private(set) var peerHas: Bitfield?
    /// Raw bitfield bytes or haves seen before the metadata (magnet links).
    private var pendingBitfield: [UInt8]?
    private var pendingHaves: [Int] = []
    private var pendingHaveAll = false
    private var pendingHaveNone = false

    public private(set) var amChoking = true
    public private(set) var amInterested = false
    public private(set) var peerChoking = true
    public private(set) var peerInterested = false

    /// Our requests to the peer and when they were sent.
    public private(set) var outstanding: [BlockRange: Int64] = [:]
    /// Requests we stopped waiting for (cancelled, timed out, dropped at a choke) whose
    /// blocks may still be on their way: that many unrequested blocks are not held against
    /// the peer.
    private var mayStillArrive = 0
    /// Unrequested blocks seen beyond those.
    public private(set) var unrequestedBlocks = 0
    /// The peer's requests to us not yet served.
    public private(set) var incoming: [BlockRange] = []
    /// Pieces the peer lets us request while choked (BEP 6).
    public private(set) var allowedFast = Set<Int>()
    /// Pieces we let the peer request while we choke it (BEP 6).
    public private(set) var allowedFastGiven = Set<Int>()
    public private(set) var remoteExtensions: ExtensionHandshake?
    public private(set) var lastReceived: Int64
    public private(set) var lastSent: Int64
    private var lastPEX: Int64?

    public init(fast: Bool, extensions: Bool, lengths: Lengths?, now: Int64) {
        self.fast = fast
        self.extensions = extensions
        self.lengths = lengths
        lastReceived = now
        lastSent = now
    }

    /// The remote's id for an extension we may send, if it supports it.
    public func remoteID(_ name: String) -> UInt8? {
        remoteExtensions?.messages[name].flatMap { $0 == 0 ? nil : $0 }
    }

    /// The metadata arrived (magnet): bitfields seen before can now be checked.
    public mutating func metadataKnown(_ lengths: Lengths) -> [PeerEvent] {
        guard self.lengths == nil else { return [] }
        self.lengths = lengths
        var events: [PeerEvent] = []
        if pendingHaveAll {
            peerHas = Bitfield(count: lengths.pieceCount, allSet: true)
        } else if let bytes = pendingBitfield {
            guard let bits = Bitfield(wire: bytes, count: lengths.pieceCount) else {
                return [.disconnect(.protocolViolation("bitfield of the wrong length"))]
            }
            peerHas = bits
        } else {
            peerHas = Bitfield(count: lengths.pieceCount)
        }
        for piece in pendingHaves {
            guard piece >= 0 && piece < lengths.pieceCount else { return [.disconnect(.protocolViolation("have \(piece) out of range"))] }
            peerHas![piece] = true
        }
        pendingBitfield = nil
        pendingHaves = []
        events.append(.bitfield(peerHas!))
        return events
    }

    // MARK: Incoming

    public mutating func received(_ message: PeerMessage, now: Int64) -> [PeerEvent] {
        lastReceived = now
        switch message {
        case .keepAlive, .port:
            return []
        case .choke:
            peerChoking = true
            // Without the fast extension a choke cancels everything; with it, the peer
            // rejects each request explicitly.
            if fast { return [.choked] }
            let dropped = Array(outstanding.keys)
            outstanding.removeAll()
            mayStillArrive += dropped.count
            return [.choked] + (dropped.isEmpty ? [] : [.requestsDropped(dropped)])
        case .unchoke:
            peerChoking = false
            return [.unchoked]
        case .interested:
            peerInterested = true
            return [.interestChanged(true)]
        case .notInterested:
            peerInterested = false
            return [.interestChanged(false)]
        case .have(let piece):
            guard let lengths else {
                guard pendingHaves.count < InfoDictionary.maxPieceCount else { return [] }
                pendingHaves.append(piece)
                return []
            }
            guard let index = lengths.piece(piece) else { return violation("have \(piece) out of range") }
            if peerHas == nil { peerHas = Bitfield(count: lengths.pieceCount) }
            if peerHas![piece] { return [] }
            peerHas![piece] = true
            return [.have(index)]
        case .bitfield(let bytes):
            // A later bitfield is an update, not a violation: aria2 sends one instead of many
            // HAVEs. Pieces are only ever added (peers do not lose pieces).
            guard let lengths else {
                if let pending = pendingBitfield, !pending.isEmpty || pendingHaveNone {
                    guard pending.count == bytes.count || pending.isEmpty else {
                        return violation("bitfields of different lengths")
                    }
                    pendingBitfield = pending.isEmpty ? bytes : zip(pending, bytes).map { $0 | $1 }
                } else if !pendingHaveAll {
                    pendingBitfield = bytes
                }
                return []
            }
            guard let bits = Bitfield(wire: bytes, count: lengths.pieceCount) else {
                return violation("bitfield of the wrong length or with spare bits set")
            }
            return merge(bits)
        case .haveAll, .haveNone:
            guard fast else { return violation("fast extension message without the fast bit") }
            guard let lengths else {
                if message == .haveAll { pendingHaveAll = true } else if !hasAnnouncedPieces { pendingHaveNone = true }
                return []
            }
            return merge(Bitfield(count: lengths.pieceCount, allSet: message == .haveAll))
        case .request(let piece, let begin, let length):
            guard let lengths, let range = lengths.range(piece: piece, begin: begin, length: length) else {
                return violation("request \(piece)/\(begin)/\(length) out of range")
            }
            if amChoking && !fast { return [] }  // BEP 3: ignored while choked
            if amChoking && !allowedFastGiven.contains(piece) {
                return [.send(.reject(piece: piece, begin: begin, length: length))]
            }
            guard incoming.count < PeerSession.maxIncomingRequests else {
                if fast { return [.send(.reject(piece: piece, begin: begin, length: length))] }
                return violation("more than \(PeerSession.maxIncomingRequests) queued requests")
            }
            if incoming.contains(range) { return [] }
            incoming.append(range)
            return [.uploadRequested(range)]
        case .cancel(let piece, let begin, let length):
            guard let lengths, let range = lengths.range(piece: piece, begin: begin, length: length) else { return [] }
            incoming.removeAll { $0 == range }
            return []
        case .piece(let piece, let begin, let block):
            switch receivedBlock(piece: piece, begin: begin, length: block.count, now: now) {
            case .accept(let range, _): return [.block(range, block)]
            case .drop: return []
            case .violation(let events): return events
            }
        case .reject(let piece, let begin, let length):
            guard fast else { return violation("reject without the fast extension") }
            guard let lengths, let range = lengths.range(piece: piece, begin: begin, length: length),
                  outstanding.removeValue(forKey: range) != nil else { return [] }
            return [.requestsDropped([range])]
        case .allowedFast(let piece):
            guard fast else { return violation("allowed fast without the fast extension") }
            if let lengths, lengths.piece(piece) == nil { return [] }
            allowedFast.insert(piece)
            return []
        case .suggest(let piece):
            guard fast else { return violation("suggest without the fast extension") }
            guard let lengths, let index = lengths.piece(piece) else { return [] }
            return [.suggest(index)]
        case .extended(let id, let payload):
            guard extensions else { return violation("extended message without the extension bit") }
            return receivedExtended(id: id, payload: payload, now: now)
        }
    }

    public enum BlockVerdict: Equatable, Sendable {
        /// A block we asked for, and when we asked.
        case accept(BlockRange, requestedAt: Int64)
        case drop
        case violation([PeerEvent])
    }

    /// The header of a PIECE message, checked before its bytes are touched (the engine
    /// copies accepted blocks straight from the socket buffer).
    public mutating func receivedBlock(piece: Int, begin: Int, length: Int, now: Int64) -> BlockVerdict {
        lastReceived = now
        guard let lengths, let range = lengths.range(piece: piece, begin: begin, length: length) else {
            return .violation(violation("piece \(piece)/\(begin)/\(length) out of range"))
        }
        // Unrequested (or cancelled, or timed out) blocks are dropped, not trusted; a peer
        // that keeps sending data nobody asked for breaks the protocol.
        guard let requestedAt = outstanding.removeValue(forKey: range) else {
            if mayStillArrive > 0 {
                mayStillArrive -= 1
                return .drop
            }
            unrequestedBlocks += 1
            if unrequestedBlocks > PeerSession.unrequestedSlack {
                return .violation(violation("\(unrequestedBlocks) blocks never requested"))
            }
            return .drop
        }
        return .accept(range, requestedAt: requestedAt)
    }

    private mutating func receivedExtended(id: UInt8, payload: [UInt8], now: Int64) -> [PeerEvent] {
        if id == 0 {
            guard let handshake = try? ExtensionHandshake(payload: payload) else {
                return violation("malformed extension handshake")
            }
            remoteExtensions = handshake
            return [.extensionHandshake(handshake)]
        }
        switch id {
        case PeerSession.ourExtensions["ut_metadata"]:
            guard let message = try? MetadataMessage(payload: payload) else { return violation("malformed ut_metadata") }
            return [.metadata(message)]
        case PeerSession.ourExtensions["ut_pex"]:
            if let last = lastPEX, now - last < PeerSession.pexInterval { return [] }  // too often: ignored
            lastPEX = now
            guard let message = try? PEXMessage(payload: payload) else { return [] }
            return [.pex(message)]
        default:
            return []  // an extension we did not announce: ignore
        }
    }

    /// The first announcement becomes the peer's pieces; later ones add their new pieces as haves.
    private mutating func merge(_ bits: Bitfield) -> [PeerEvent] {
        guard var current = peerHas else {
            peerHas = bits
            return [.bitfield(bits)]
        }
        var events: [PeerEvent] = []
        for piece in bits.setIndices where !current[piece] {
            current[piece] = true
            events.append(.have(lengths!.piece(piece)!))
        }
        peerHas = current
        return events
    }

    /// A bitfield, have all or have none arrived (or is held until the metadata).
    private var hasAnnouncedPieces: Bool {
        peerHas != nil || pendingBitfield != nil || pendingHaveAll || pendingHaveNone
    }

    private func violation(_ what: String) -> [PeerEvent] { [.disconnect(.protocolViolation(what))] }

    // MARK: Outgoing

    public mutating func sentRequest(_ block: BlockRange, now: Int64) {
        outstanding[block] = now
        lastSent = now
    }

    /// We cancel a request (endgame duplicate arrived elsewhere).
    public mutating func cancelled(_ block: BlockRange) -> Bool {
        guard outstanding.removeValue(forKey: block) != nil else { return false }
        mayStillArrive += 1
        return true
    }

    public mutating func setChoking(_ choking: Bool) -> [PeerMessage] {
        guard amChoking != choking else { return [] }
        amChoking = choking
        if choking {
            // Requests for allowed fast pieces survive a choke (BEP 6); the rest are dropped.
            let dropped = incoming.filter { !allowedFastGiven.contains($0.piece.value) }
            incoming.removeAll { !allowedFastGiven.contains($0.piece.value) }
            return [.choke] + (fast ? dropped.map { .reject(piece: $0.piece.value, begin: $0.begin, length: $0.length) } : [])
        }
        return [.unchoke]
    }

    /// Lets the peer request `pieces` while choked (BEP 6; fast peers only): the messages
    /// to send for the pieces not allowed before.
    public mutating func allowFast(_ pieces: [Int]) -> [PeerMessage] {
        guard fast, let lengths else { return [] }
        var messages: [PeerMessage] = []
        for piece in pieces where piece >= 0 && piece < lengths.pieceCount && allowedFastGiven.insert(piece).inserted {
            messages.append(.allowedFast(piece: piece))
        }
        return messages
    }

    public mutating func setInterested(_ interested: Bool) -> [PeerMessage] {
        guard amInterested != interested else { return [] }
        amInterested = interested
        return [interested ? .interested : .notInterested]
    }

    /// A queued upload was served (or is being served); stop tracking it.
    public mutating func served(_ block: BlockRange) -> Bool {
        guard let index = incoming.firstIndex(of: block) else { return false }
        incoming.remove(at: index)
        return true
    }

    /// Timers: idle disconnect, keep-alive, request timeouts.
    public mutating func tick(now: Int64) -> [PeerEvent] {
        if now - lastReceived > PeerSession.idleTimeout { return [.disconnect(.idleTimeout)] }
        var events: [PeerEvent] = []
        let late = outstanding.filter { now - $0.value > PeerSession.requestTimeout }.map(\.key)
        if !late.isEmpty {
            for block in late { outstanding[block] = nil }
            mayStillArrive += late.count
            events.append(.requestsDropped(late))
            events += late.map { .send(.cancel(piece: $0.piece.value, begin: $0.begin, length: $0.length)) }
        }
        if now - lastSent > PeerSession.keepAliveInterval {
            lastSent = now
            events.append(.send(.keepAlive))
        }
        return events
    }
}
