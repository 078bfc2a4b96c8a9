/// Port mapping on the gateway in the status document (`portMapping`; absent when port
/// mapping is off or there is no gateway).
public struct PortMappingStatus: Sendable, Codable, Hashable {
    /// "natpmp" or "upnp" (after NAT-PMP failed, or with NAT-PMP off).
    public var method: String
    /// The gateway asked.
    public var gateway: String?
    /// The gateway's external IPv4 address, once it told us.
    public var externalAddress: String?
    /// External ports mapped to the listen port, while mapped.
    public var tcpPort: Int?
    public var udpPort: Int?
    /// Seconds a mapping lasts at the gateway (renewed halfway).
    public var lifetime: Int?
    /// Seconds from the start of mapping until both ports were mapped.
    public var mappedAfter: Double?
    /// Renewals the gateway confirmed.
    public var renewals: Int
    /// Why mapping stopped (no answer, refused).
    public var error: String?

    public init(method: String, gateway: String?) {
        self.method = method
        self.gateway = gateway
        renewals = 0
    }
}
