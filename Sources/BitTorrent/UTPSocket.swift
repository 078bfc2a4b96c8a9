/// One uTP (BEP 29) connection as a sans-I/O state machine: packets and `now:`
/// (monotonic nanoseconds) go in; datagrams to send (`takeDatagrams`), bytes delivered
/// in order (`takeDelivered`), events (`takeEvents`) and the next timer (`deadline`)
/// come out. The endpoint (`UTPEndpoint`) finds the connection of each datagram.
///
/// Sequence numbers: a DATA or FIN packet takes the next `seq`; STATE packets carry the
/// next `seq` without taking it. The initiator sends SYN with `connection_id` = its
/// receive id R and sends everything else with R+1; the responder sends with R and
/// answers the SYN with a STATE whose `seq` is the first it will use.
///
/// Receiving: in-order payloads are delivered at once; packets ahead of a gap wait in a
/// reorder buffer and are reported by selective ack. The advertised window is what the
/// reorder buffer still holds room for. Acks are delayed: one goes out every second
/// DATA packet, at once for a packet out of order or a duplicate, and otherwise when
/// the caller says its batch of datagrams is done (`drained`).
///
/// Sending: limited by the congestion window, the peer's window, the in-flight ring and
/// pacing (`UTPCongestion`). A packet is lost once three packets sent after it were
/// selectively acked (or, for peers without selective acks, after three duplicate acks),
/// and sent again before new data; the retransmission timer sends everything
/// unacknowledged again with a one-packet window, and gives up after `maxTimeouts`.
public final class UTPSocket {
    public enum State: Equatable, Sendable {
        case synSent, synReceived, connected, closed
    }

    public enum Event: Equatable, Sendable {
        /// The handshake is complete (initiator: the SYN's STATE; responder: the first DATA).
        case connected
        /// The peer's FIN arrived and every byte before it was delivered.
        case endOfStream
        case closed(UTPCloseReason)
    }

    public struct Configuration: Sendable {
        /// The UDP payload the path and the peer take without proof otherwise.
        public var safeDatagram: Int
        /// The UDP payload we could send on this path to a peer that reads larger ones.
        public var pathDatagram: Int
        /// The UDP payload we read whole (announced to the peer).
        public var receiveDatagram: Int
        /// Bytes of out-of-order data we hold at most: the advertised receive window.
        public var receiveWindow: Int
        public var maxWindow: Int
        public var maxTimeouts: Int
        public var keepAliveInterval: Int64

        public init(safeDatagram: Int = 1472, pathDatagram: Int = 1472, receiveDatagram: Int = UTPPacket.maxDatagram,
                    receiveWindow: Int = 1 << 20, maxWindow: Int = 8 << 20, maxTimeouts: Int = 7,
                    keepAliveInterval: Int64 = 29_000_000_000) {
            self.safeDatagram = safeDatagram
            self.pathDatagram = pathDatagram
            self.receiveDatagram = receiveDatagram
            self.receiveWindow = receiveWindow
            self.maxWindow = maxWindow
            self.maxTimeouts = maxTimeouts
            self.keepAliveInterval = keepAliveInterval
        }

        /// For IPv6 paths: 1500 − 40 − 8.
        public static let ipv6SafeDatagram = 1452
    }

    /// SYNs sent at most before the dial fails.
    public static let synAttempts = 3
    static let sentCapacity = 4096
    static let reorderCapacity = 2048

    public let recvID: UInt16
    public let sendID: UInt16
    public internal(set) var state: State
    public internal(set) var congestion: UTPCongestion
    let configuration: Configuration
    /// The largest UDP payload sent now (safe until the peer says it reads more).
    public internal(set) var datagramSize: Int

    // Sending.
    var seqNext: UInt16
    /// Every packet up to and including this one is acknowledged.
    var lastAcked: UInt16
    var sent = UTPSentPackets(capacity: sentCapacity)
    var pending = UTPSendBuffer()
    var peerWindow = 1 << 20
    var closeRequested = false
    /// When our FIN was acked (we wait up to `linger` for the peer's).
    var finAckedAt: Int64?
    static let linger: Int64 = 5_000_000_000
    var finSeq: UInt16?
    var duplicateAcks = 0
    var consecutiveTimeouts = 0
    var retransmitDeadline: Int64?
    var paceCredit = 0.0
    var paceUpdated: Int64
    var lastSent: Int64
    /// When a lost packet was last sent again (round-trip samples come only from later ones).
    var lastResentAt: Int64 = .min
    var synAttemptsMade = 0
    /// Retransmissions and timeouts so far (for tests and the status).
    public internal(set) var retransmissions = 0
    public internal(set) var timeouts = 0

    // Receiving.
    var ackNr: UInt16 = 0
    var reorder = UTPReorderBuffer(capacity: reorderCapacity)
    var eofSeq: UInt16?
    var endDelivered = false
    var acksOwed = 0
    var ackNow = false
    /// `now_µs − timestamp` of the peer's last packet, echoed as timestamp_difference.
    var replyMicros: UInt32 = 0
    var lastReceived: Int64
    /// The responder's SYN, to answer a retransmitted one the same way.
    var synSeq: UInt16 = 0

    // Output.
    var datagrams: [[UInt8]] = []
    /// Payloads delivered in order: slices of the datagrams they came in.
    var delivered: [ArraySlice<UInt8>] = []
    var events: [Event] = []

    private init(recvID: UInt16, sendID: UInt16, state: State, seq: UInt16, now: Int64, configuration: Configuration) {
        self.recvID = recvID
        self.sendID = sendID
        self.state = state
        self.configuration = configuration
        datagramSize = configuration.safeDatagram
        congestion = UTPCongestion(packetSize: configuration.safeDatagram - UTPPacket.headerLength,
                                   maxWindow: configuration.maxWindow)
        seqNext = seq
        lastAcked = seq &- 1
        paceUpdated = now
        lastSent = now
        lastReceived = now
    }

    /// Opens a connection: sends a SYN with receive id `recvID`.
    public static func connect(recvID: UInt16, seq: UInt16 = 1, now: Int64,
                               configuration: Configuration = Configuration()) -> UTPSocket {
        let socket = UTPSocket(recvID: recvID, sendID: recvID &+ 1, state: .synSent, seq: seq &+ 1, now: now,
                               configuration: configuration)
        socket.sendSyn(now: now)
        return socket
    }

    /// Answers a SYN (its `connectionID` is our send id; we receive on it + 1).
    public static func accept(_ syn: UTPPacket, seq: UInt16, now: Int64,
                              configuration: Configuration = Configuration()) -> UTPSocket {
        let socket = UTPSocket(recvID: syn.connectionID &+ 1, sendID: syn.connectionID, state: .synReceived,
                               seq: seq, now: now, configuration: configuration)
        socket.synSeq = syn.seq
        socket.ackNr = syn.seq
        socket.noteTimestamp(syn, now: now)
        socket.peerWindow = Int(syn.window)
        socket.peerSays(datagramSize: syn.datagramSize)
        socket.sendState(now: now)
        return socket
    }

    // MARK: Application side

    /// Queues bytes to send (sent as the windows allow, at the next `flush`).
    public func write(_ bytes: some Collection<UInt8>) {
        guard state != .closed, !closeRequested else { return }
        pending.append(bytes)
    }

    /// Bytes written and not yet sent as packets.
    public var unsentBytes: Int { pending.count }

    /// Bytes sent and not yet acknowledged.
    public var flightBytes: Int { sent.flightBytes }

    /// Sends a FIN once every byte written is out; the connection closes once it is acked.
    public func close(now: Int64) {
        guard state != .closed else { return }
        if state == .synSent {
            finish(.local)
            return
        }
        closeRequested = true
        flush(now: now)
    }

    /// Sends RESET and closes at once.
    public func reset(now: Int64) {
        guard state != .closed else { return }
        emit(kind: .reset, seq: seqNext, payload: [], now: now)
        finish(.local)
    }

    public func takeDatagrams() -> [[UInt8]] {
        defer { datagrams.removeAll(keepingCapacity: true) }
        return datagrams
    }

    /// The bytes delivered in order since the last call, as the payloads they came in.
    public func takeDelivered() -> [ArraySlice<UInt8>] {
        defer { delivered.removeAll(keepingCapacity: true) }
        return delivered
    }

    public func takeEvents() -> [Event] {
        defer { events.removeAll() }
        return events
    }

    public var hasOutput: Bool { !datagrams.isEmpty || !delivered.isEmpty || !events.isEmpty }

    /// The sender's state in one line, for logs (a timeout, a stall).
    public var diagnostics: String {
        "acked \(lastAcked) next \(seqNext) ack_nr \(ackNr) cwnd \(congestion.window) peer_wnd \(peerWindow) "
            + "flight \(sent.flightBytes) in_ring \(sent.count) lost \(sent.lostCount) unsent \(unsentBytes) "
            + "rtt_us \(congestion.rtt / 1000) rto_ms \(congestion.timeout / 1_000_000) timeouts \(timeouts) "
            + "resent \(retransmissions) delay_ms \(congestion.queuingDelay / 1_000_000)"
    }

    /// The window we advertise: what the reorder buffer still has room for.
    var advertisedWindow: UInt32 {
        UInt32(max(0, configuration.receiveWindow - reorder.bytes))
    }

    /// The payload bytes per DATA packet now.
    var payloadSize: Int { datagramSize - UTPPacket.headerLength }

    func finish(_ reason: UTPCloseReason) {
        guard state != .closed else { return }
        state = .closed
        pending.removeAll()
        retransmitDeadline = nil
        events.append(.closed(reason))
    }

    func peerSays(datagramSize announced: UInt32?) {
        guard let announced else { return }
        let size = min(Int(announced), configuration.pathDatagram, UTPPacket.maxDatagram)
        if size > datagramSize {
            datagramSize = size
            congestion.resize(packetSize: payloadSize)
        }
    }

    func noteTimestamp(_ packet: UTPPacket, now: Int64) {
        replyMicros = Self.micros(now) &- packet.timestamp
        lastReceived = now
    }

    static func micros(_ now: Int64) -> UInt32 { UInt32(truncatingIfNeeded: now / 1000) }

    // MARK: Emitting packets

    func emit(kind: UTPPacket.Kind, seq: UInt16, payload: ArraySlice<UInt8>, now: Int64,
              selectiveAck: [UInt8]? = nil, datagramSize: UInt32? = nil) {
        let packet = UTPPacket(kind: kind, connectionID: kind == .syn ? recvID : sendID,
                               timestamp: Self.micros(now), timestampDifference: replyMicros,
                               window: advertisedWindow, seq: seq, ack: ackNr, selectiveAck: selectiveAck,
                               datagramSize: datagramSize, payload: payload)
        datagrams.append(packet.encoded)
        lastSent = now
        if kind == .data || kind == .fin {
            acksOwed = 0
            ackNow = false
        }
    }

    /// The SYN takes sequence number `lastAcked` (set at init to the first; the STATE
    /// answering it acks it).
    func sendSyn(now: Int64) {
        synAttemptsMade += 1
        emit(kind: .syn, seq: lastAcked, payload: [], now: now,
             datagramSize: UInt32(configuration.receiveDatagram))
        retransmitDeadline = now + congestion.timeout << (synAttemptsMade - 1)
    }

    func sendState(now: Int64) {
        emit(kind: .state, seq: seqNext, payload: [], now: now,
             selectiveAck: reorder.selectiveAck(maxBytes: UTPPacket.maxSelectiveAckBytes),
             datagramSize: state == .synReceived ? UInt32(configuration.receiveDatagram) : nil)
        acksOwed = 0
        ackNow = false
    }
}

/// Why a uTP connection closed.
public enum UTPCloseReason: Equatable, Sendable {
    /// We closed it (FIN acked, or reset by us).
    case local
    /// The peer sent RESET.
    case reset
    /// Retransmissions went unanswered (or the SYN did).
    case timedOut
}
