import BitTorrent

/// BEP 15 client logic for one tracker, as a value: connect, announce or scrape,
/// retransmit 15·2ⁿ seconds, connection ids that expire after a minute. Bytes and time go in,
/// packets to send and results come out.
public struct UDPTrackerClient: Sendable {
    /// A connection id is valid this long after it was received (BEP 15: one minute).
    public static let connectionLifetime: Int64 = 60_000_000_000
    /// First retransmission timeout; doubles each try (BEP 15: 15·2ⁿ s).
    public static let baseTimeout: Int64 = 15_000_000_000
    /// Tries before giving up (BEP 15 allows n up to 8; we stop earlier to fail over).
    public static let maxAttempts = 4

    public enum Action: Hashable, Sendable {
        case send([UInt8])
        case announced(AnnounceResponse)
        case scraped(UDPTrackerPacket.ScrapeEntry)
        case failed(TrackerError)
        case scrapeFailed(TrackerError)
    }

    /// The failure action for the request under way.
    private var failure: (TrackerError) -> Action {
        if case .scrape = request { return Action.scrapeFailed }
        return Action.failed
    }

    /// What is asked once connected.
    enum Request: Sendable {
        case announce(AnnounceRequest)
        case scrape(InfoHash)
    }

    enum Phase: Sendable {
        case idle
        case connecting(transaction: UInt32, attempt: Int, sentAt: Int64)
        case requesting(transaction: UInt32, attempt: Int, sentAt: Int64)
    }

    private var phase = Phase.idle
    private var connection: (id: UInt64, receivedAt: Int64)?
    private var request: Request?
    private var nextTransaction: UInt32
    public let ipv6: Bool

    public init(transactionSeed: UInt32, ipv6: Bool = false) {
        nextTransaction = transactionSeed
        self.ipv6 = ipv6
    }

    /// The transaction this client waits for, if any (to route datagrams).
    public var awaitedTransaction: UInt32? {
        switch phase {
        case .idle: return nil
        case .connecting(let t, _, _), .requesting(let t, _, _): return t
        }
    }

    private mutating func transaction() -> UInt32 {
        nextTransaction = nextTransaction &* 1_664_525 &+ 1_013_904_223
        return nextTransaction
    }

    public mutating func announce(_ request: AnnounceRequest, now: Int64) -> [Action] {
        self.request = .announce(request)
        return sendNext(attempt: 0, now: now)
    }

    /// Asks for one torrent's counts; only while no other request is under way.
    public mutating func scrape(_ infoHash: InfoHash, now: Int64) -> [Action] {
        guard awaitedTransaction == nil else { return [] }
        request = .scrape(infoHash)
        return sendNext(attempt: 0, now: now)
    }

    private mutating func sendNext(attempt: Int, now: Int64) -> [Action] {
        guard let request else { return [] }
        let t = transaction()
        if let connection, now - connection.receivedAt < UDPTrackerClient.connectionLifetime {
            phase = .requesting(transaction: t, attempt: attempt, sentAt: now)
            switch request {
            case .announce(let announce):
                return [.send(UDPTrackerPacket.announceRequest(connection: connection.id, transaction: t, announce))]
            case .scrape(let hash):
                return [.send(UDPTrackerPacket.scrapeRequest(connection: connection.id, transaction: t, infoHashes: [hash]))]
            }
        }
        connection = nil
        phase = .connecting(transaction: t, attempt: attempt, sentAt: now)
        return [.send(UDPTrackerPacket.connectRequest(transaction: t))]
    }

    /// A datagram from the tracker's address. Wrong transaction ids are ignored.
    public mutating func received(_ bytes: [UInt8], now: Int64) -> [Action] {
        guard let expected = awaitedTransaction, let response = try? UDPTrackerPacket.parse(bytes, ipv6: ipv6),
              response.transaction == expected else { return [] }
        switch (phase, response) {
        case (.connecting, .connected(_, let id)):
            connection = (id, now)
            return sendNext(attempt: 0, now: now)
        case (.requesting, .announced(_, let answer)):
            guard case .announce = request else { return [] }
            phase = .idle
            request = nil
            return [.announced(answer)]
        case (.requesting, .scraped(_, let entries)):
            guard case .scrape = request else { return [] }
            phase = .idle
            request = nil
            guard let entry = entries.first else { return [.scrapeFailed(TrackerError(.malformed("empty scrape response")))] }
            return [.scraped(entry)]
        case (_, .error(_, let message)):
            let fail = failure
            phase = .idle
            request = nil
            connection = nil
            return [fail(TrackerError(.failure(message)))]
        default:
            return []
        }
    }

    /// Retransmits after 15·2ⁿ s; fails after `maxAttempts`.
    public mutating func tick(now: Int64) -> [Action] {
        let attempt: Int
        let sentAt: Int64
        switch phase {
        case .idle: return []
        case .connecting(_, let a, let s), .requesting(_, let a, let s):
            attempt = a
            sentAt = s
        }
        guard now - sentAt >= UDPTrackerClient.baseTimeout << Int64(attempt) else { return [] }
        guard attempt + 1 < UDPTrackerClient.maxAttempts else {
            let fail = failure
            phase = .idle
            request = nil
            return [fail(TrackerError(.timeout))]
        }
        // A lost announce may mean an expired connection id: reconnect when in doubt.
        if case .requesting = phase, let connection, now - connection.receivedAt >= UDPTrackerClient.connectionLifetime {
            self.connection = nil
        }
        return sendNext(attempt: attempt + 1, now: now)
    }
}
