/// One KRPC message of the mainline DHT (BEP 5): a query, a response or an error, with the
/// transaction id that pairs a response with its query, and the optional top-level fields
/// of the extensions: `ip` (BEP 42: the requester's address as the responder sees it),
/// `ro` (BEP 43: the sender is read-only) and `v` (client version).
public struct KRPCMessage: Hashable, Sendable {
    public enum Body: Hashable, Sendable {
        case query(KRPCQuery)
        case response(KRPCResponse)
        /// `e`: a code (201 generic, 202 server, 203 protocol, 204 method unknown) and text.
        case error(code: Int, message: String)
    }

    /// `t`: opaque bytes chosen by the querier, echoed in the answer.
    public var transaction: [UInt8]
    public var body: Body
    /// `ip`: the address the responder saw the query come from.
    public var requesterAddress: CompactPeer?
    /// `ro`: the sender answers no queries (BEP 43).
    public var readOnly: Bool
    /// `v`: the client's version string (BEP 20 style), at most `KRPCLimits.maxVersionLength`.
    public var version: [UInt8]?

    public init(transaction: [UInt8], body: Body, requesterAddress: CompactPeer? = nil, readOnly: Bool = false,
                version: [UInt8]? = nil) {
        self.transaction = transaction
        self.body = body
        self.requesterAddress = requesterAddress
        self.readOnly = readOnly
        self.version = version
    }

    /// Error codes of BEP 5.
    public static let genericError = 201
    public static let serverError = 202
    public static let protocolError = 203
    public static let methodUnknown = 204

    /// The bencoded datagram.
    public var encoded: [UInt8] {
        var root = BDictionary()
        root["t"] = .bytes(transaction)
        switch body {
        case .query(let query):
            root["y"] = "q"
            root["q"] = .bytes(query.method.name)
            root["a"] = .dictionary(query.arguments)
        case .response(let response):
            root["y"] = "r"
            root["r"] = .dictionary(response.dictionary)
        case .error(let code, let message):
            root["y"] = "e"
            root["e"] = .list([.integer(Int64(code)), .string(message)])
        }
        if let requesterAddress { root["ip"] = .bytes(requesterAddress.compact) }
        if readOnly { root["ro"] = 1 }
        if let version { root["v"] = .bytes(version) }
        return Bencode.encode(.dictionary(root))
    }
}
