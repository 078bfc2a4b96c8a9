import BitTorrent

/// A NAT-PMP (RFC 6886) client without sockets or clocks: it asks the gateway for its
/// external address and for TCP and UDP mappings of the listen port, retransmits
/// unanswered requests (250 ms, doubling, `maxAttempts` tries: RFC 6886 §3.1 allows
/// giving up early when another method can take over), renews each mapping halfway
/// through its lifetime, and at `stop` asks for every mapping to be deleted.
///
/// Feed it the gateway's datagrams (`received`) and the time (`tick`); it returns what to
/// send and what happened, as `Event`s.
struct NATPMPClient: Sendable {
    static let millisecond: Int64 = 1_000_000
    static let firstTimeout = 250 * millisecond
    /// Tries per request before giving up (0.25 + 0.5 + 1 + 2 s = 3.75 s in all).
    static let maxAttempts = 4
    /// RFC 6886 recommends 7200 s for the lifetime asked.
    static let defaultLifetime: UInt32 = 7200

    enum Event: Hashable, Sendable {
        case send([UInt8])
        case externalAddress(String)
        /// A mapping made, or (`renewal`) renewed.
        case mapped(NATPMPMessage.Transport, externalPort: UInt16, lifetime: UInt32, renewal: Bool)
        case unmapped(NATPMPMessage.Transport)
        /// The gateway did not answer or refused: port mapping through NAT-PMP is over.
        case failed(String)
    }

    /// A request waiting for its answer, by opcode (0 address, 1 UDP, 2 TCP).
    struct Pending: Sendable {
        var bytes: [UInt8]
        var attempts: Int
        var retryAt: Int64
    }

    struct Mapping: Hashable, Sendable {
        var externalPort: UInt16
        var lifetime: UInt32
        var renewAt: Int64
    }

    let internalPort: UInt16
    /// Seconds each mapping is asked for.
    let lifetime: UInt32
    private(set) var pending: [UInt8: Pending] = [:]
    private(set) var mappings: [NATPMPMessage.Transport: Mapping] = [:]
    private(set) var externalAddress: String?
    private(set) var stopping = false
    private(set) var failed = false

    init(internalPort: UInt16, lifetime: UInt32 = NATPMPClient.defaultLifetime) {
        self.internalPort = internalPort
        self.lifetime = max(lifetime, 1)
    }

    /// The first requests: external address, UDP and TCP mappings.
    mutating func start(now: Int64) -> [Event] {
        var events = [issue(0, NATPMPMessage.externalAddressRequest, now: now)]
        for transport in NATPMPMessage.Transport.allCases {
            events.append(issue(transport.rawValue, mappingRequest(transport, suggested: internalPort,
                                                                   lifetime: lifetime), now: now))
        }
        return events
    }

    /// Deletes the mappings made (lifetime 0); `isFinished` once the gateway answered or
    /// the tries ran out. Requests under way are dropped.
    mutating func stop(now: Int64) -> [Event] {
        stopping = true
        pending = [:]
        guard !failed else { return [] }
        return mappings.keys.sorted { $0.rawValue < $1.rawValue }.map { transport in
            issue(transport.rawValue, mappingRequest(transport, suggested: 0, lifetime: 0), now: now)
        }
    }

    var isFinished: Bool { (stopping || failed) && pending.isEmpty }

    /// When `tick` next has something to do.
    var nextTimeout: Int64? {
        let retries = pending.values.map(\.retryAt)
        // A renewal under way waits for its answer or its retry, not its renewal time.
        let renewals = stopping || failed ? [] : mappings.filter { pending[$0.key.rawValue] == nil }.map(\.value.renewAt)
        return (retries + renewals).min()
    }

    /// Retransmissions, renewals, and giving up.
    mutating func tick(now: Int64) -> [Event] {
        var events: [Event] = []
        for (opcode, request) in pending.sorted(by: { $0.key < $1.key }) where request.retryAt <= now {
            if request.attempts >= Self.maxAttempts {
                pending[opcode] = nil
                if stopping {
                    continue  // the mapping expires at the gateway on its own
                }
                return events + fail("no answer from the gateway after \(Self.maxAttempts) tries")
            }
            var next = request
            next.attempts += 1
            next.retryAt = now + Self.firstTimeout << Int64(next.attempts - 1)
            pending[opcode] = next
            events.append(.send(request.bytes))
        }
        guard !stopping, !failed else { return events }
        for (transport, mapping) in mappings.sorted(by: { $0.key.rawValue < $1.key.rawValue })
        where mapping.renewAt <= now && pending[transport.rawValue] == nil {
            events.append(issue(transport.rawValue, mappingRequest(transport, suggested: mapping.externalPort,
                                                                   lifetime: lifetime), now: now))
        }
        return events
    }

    /// An answer from the gateway (datagrams from anyone else must not come here).
    mutating func received(_ datagram: [UInt8], now: Int64) -> [Event] {
        guard !failed, let response = try? NATPMPMessage.parse(datagram) else { return [] }
        switch response {
        case .externalAddress(let result, _, let address):
            guard pending.removeValue(forKey: 0) != nil else { return [] }
            guard result == NATPMPMessage.ResultCode.success else {
                return fail("the gateway refused to tell its address (result \(result))")
            }
            let text = address.map(String.init).joined(separator: ".")
            externalAddress = text
            return [.externalAddress(text)]
        case .mapping(let transport, let result, _, let internalPort, let externalPort, let lifetime):
            guard internalPort == self.internalPort, pending.removeValue(forKey: transport.rawValue) != nil else {
                return []
            }
            if stopping {
                mappings[transport] = nil
                return [.unmapped(transport)]
            }
            guard result == NATPMPMessage.ResultCode.success, externalPort != 0, lifetime > 0 else {
                return fail("the gateway refused the \(transport) mapping (result \(result))")
            }
            let renewal = mappings[transport] != nil
            mappings[transport] = Mapping(externalPort: externalPort, lifetime: lifetime,
                                          renewAt: now + Int64(lifetime) * 1000 * Self.millisecond / 2)
            return [.mapped(transport, externalPort: externalPort, lifetime: lifetime, renewal: renewal)]
        }
    }

    private mutating func issue(_ opcode: UInt8, _ bytes: [UInt8], now: Int64) -> Event {
        pending[opcode] = Pending(bytes: bytes, attempts: 1, retryAt: now + Self.firstTimeout)
        return .send(bytes)
    }

    private func mappingRequest(_ transport: NATPMPMessage.Transport, suggested: UInt16, lifetime: UInt32) -> [UInt8] {
        NATPMPMessage.mappingRequest(transport, internalPort: internalPort, suggestedExternalPort: suggested,
                                     lifetime: lifetime)
    }

    private mutating func fail(_ reason: String) -> [Event] {
        failed = true
        pending = [:]
        return [.failed(reason)]
    }
}
