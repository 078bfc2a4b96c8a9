import BitTorrent

/// UPnP IGD port mapping without sockets or clocks: SSDP search for an Internet gateway
/// device, its description fetched for the WAN connection service's control URL, then
/// SOAP calls one at a time: `GetExternalIPAddress`, `AddPortMapping` for TCP and UDP of
/// the listen port (renewed halfway through the lease), `DeletePortMapping` for both at
/// `stop`. The caller sends what `Action`s say and reports back through `ssdpReceived`,
/// `described` and `answered`; `tick` drives the search's retries and the renewals.
struct UPnPClient: Sendable {
    static let second: Int64 = 1_000_000_000
    /// M-SEARCH sent at 0, 1 and 2 s; no gateway by `searchTimeout` → failed.
    static let searchTries = 3
    static let searchTimeout = 3 * second
    static let description = "torrentfs"

    enum Action: Hashable, Sendable {
        /// An M-SEARCH to the SSDP group.
        case search([UInt8])
        /// GET the device description at this URL.
        case fetch(String)
        /// POST a SOAP call; answer with `answered`.
        case soap(url: String, soapAction: String, body: String)
        case externalAddress(String)
        case mapped(NATPMPMessage.Transport, externalPort: UInt16, lease: Int, renewal: Bool)
        case unmapped(NATPMPMessage.Transport)
        case failed(String)
    }

    enum Step: Hashable, Sendable {
        case idle, searching, describing
        case externalAddress
        case adding(NATPMPMessage.Transport)
        case mapped
        case deleting(NATPMPMessage.Transport)
        case done
    }

    let internalPort: UInt16
    /// Seconds each mapping is asked for (renewed halfway).
    let lease: Int
    private(set) var step = Step.idle
    private(set) var controlURL: String?
    private(set) var serviceType: String?
    /// Our address as the gateway sees it (`NewInternalClient`).
    private(set) var localAddress: String?
    private(set) var mapped = Set<NATPMPMessage.Transport>()
    private(set) var failed = false
    private var searchesSent = 0
    private var searchStarted: Int64 = 0
    private var renewAt: Int64?
    private var renewing = false

    init(internalPort: UInt16, lease: Int) {
        self.internalPort = internalPort
        self.lease = max(lease, 2)
    }

    var isFinished: Bool { step == .done || failed }

    mutating func start(now: Int64) -> [Action] {
        step = .searching
        searchStarted = now
        searchesSent = 1
        return [.search(UPnPMessages.search())]
    }

    /// When `tick` next has something to do.
    var nextTimeout: Int64? {
        switch step {
        case .searching: return searchStarted + Int64(searchesSent) * Self.second
        case .mapped: return renewAt
        default: return nil
        }
    }

    mutating func tick(now: Int64) -> [Action] {
        switch step {
        case .searching:
            if now - searchStarted >= Self.searchTimeout { return fail("no UPnP gateway answered the search") }
            guard now >= searchStarted + Int64(searchesSent) * Self.second, searchesSent < Self.searchTries else { return [] }
            searchesSent += 1
            return [.search(UPnPMessages.search())]
        case .mapped:
            guard let renewAt, now >= renewAt else { return [] }
            self.renewAt = nil
            renewing = true
            return add(.tcp)
        default:
            return []
        }
    }

    /// An SSDP datagram from `sender`: the first gateway whose description URL points at
    /// the sender itself is taken.
    mutating func ssdpReceived(_ datagram: [UInt8], from sender: String) -> [Action] {
        guard step == .searching, let location = UPnPMessages.location(ofSSDP: datagram),
              HTTPURL(location)?.host == sender else { return [] }
        step = .describing
        return [.fetch(location)]
    }

    /// The description fetched (`body` nil: the request failed), with the address our
    /// connection to the gateway came from.
    mutating func described(location: String, status: Int, body: [UInt8]?, localAddress: String?) -> [Action] {
        guard step == .describing else { return [] }
        guard status == 200, let body, let localAddress,
              let service = UPnPMessages.controlService(description: body, location: location) else {
            return fail("no WAN connection service in the gateway's description (HTTP \(status))")
        }
        controlURL = service.controlURL
        serviceType = service.serviceType
        self.localAddress = localAddress
        step = .externalAddress
        return [call("GetExternalIPAddress", [])]
    }

    /// The answer to the SOAP call under way (`body` nil: no answer).
    mutating func answered(status: Int, body: [UInt8]?, now: Int64) -> [Action] {
        let body = body ?? []
        let ok = status == 200
        let error = UPnPMessages.soapValue("errorCode", in: body).map { " (UPnP error \($0))" } ?? ""
        switch step {
        case .externalAddress:
            var actions: [Action] = []
            if ok, let address = UPnPMessages.soapValue("NewExternalIPAddress", in: body) {
                actions.append(.externalAddress(address))
            }
            return actions + add(.tcp)  // the address is informative; mapping goes on without it
        case .adding(let transport):
            guard ok else {
                renewing = false
                return fail("the gateway refused the \(transport) mapping: HTTP \(status)\(error)")
            }
            mapped.insert(transport)
            let event = Action.mapped(transport, externalPort: internalPort, lease: lease, renewal: renewing)
            if transport == .tcp { return [event] + add(.udp) }
            step = .mapped
            renewing = false
            renewAt = now + Int64(lease) * Self.second / 2
            return [event]
        case .deleting(let transport):
            mapped.remove(transport)
            let event: [Action] = ok ? [.unmapped(transport)] : []
            return event + deleteNext()
        default:
            return []
        }
    }

    /// Deletes what was mapped, one call at a time; `isFinished` when done.
    mutating func stop() -> [Action] {
        guard !failed, controlURL != nil, !mapped.isEmpty else {
            step = .done
            return []
        }
        return deleteNext()
    }

    private mutating func deleteNext() -> [Action] {
        guard let transport = [NATPMPMessage.Transport.tcp, .udp].first(where: { mapped.contains($0) }) else {
            step = .done
            return []
        }
        step = .deleting(transport)
        return [call("DeletePortMapping", [("NewRemoteHost", ""), ("NewExternalPort", "\(internalPort)"),
                                          ("NewProtocol", transport.upnpName)])]
    }

    private mutating func add(_ transport: NATPMPMessage.Transport) -> [Action] {
        step = .adding(transport)
        return [call("AddPortMapping", [
            ("NewRemoteHost", ""), ("NewExternalPort", "\(internalPort)"), ("NewProtocol", transport.upnpName),
            ("NewInternalPort", "\(internalPort)"), ("NewInternalClient", localAddress ?? ""), ("NewEnabled", "1"),
            ("NewPortMappingDescription", Self.description), ("NewLeaseDuration", "\(lease)"),
        ])]
    }

    private func call(_ action: String, _ arguments: [(String, String)]) -> Action {
        let service = serviceType ?? UPnPMessages.wanServices[1]
        return .soap(url: controlURL ?? "", soapAction: UPnPMessages.soapAction(service: service, action: action),
                     body: UPnPMessages.soapBody(service: service, action: action, arguments: arguments))
    }

    private mutating func fail(_ reason: String) -> [Action] {
        failed = true
        return [.failed(reason)]
    }
}

extension NATPMPMessage.Transport {
    /// `NewProtocol` of a UPnP mapping.
    var upnpName: String { self == .tcp ? "TCP" : "UDP" }
}
