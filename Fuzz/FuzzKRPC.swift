// libFuzzer target: a KRPC datagram (BEP 5, 32, 42, 43) as a DHT node receives it.
// Decoding never crashes; what decodes re-encodes to a datagram that decodes to the same
// message and encodes to the same bytes again, and the limits of KRPCLimits hold.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKRPC(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let message: KRPCMessage
    do {
        message = try KRPCMessage(decoding: bytes)
    } catch {
        _ = error.description
        return 0
    }
    if bytes.count > KRPCLimits.maxDatagramSize { fatalError("datagram of \(bytes.count) bytes accepted") }
    if message.transaction.isEmpty || message.transaction.count > KRPCLimits.maxTransactionLength {
        fatalError("transaction id of \(message.transaction.count) bytes")
    }
    switch message.body {
    case .query(let query):
        if case .announcePeer(_, let port, let implied, let token) = query.method {
            if port == 0 && !implied { fatalError("announce with port 0") }
            if token.count > KRPCLimits.maxTokenLength { fatalError("token of \(token.count) bytes") }
        }
    case .response(let response):
        if response.nodes.count > KRPCLimits.maxNodesPerList || response.nodes6.count > KRPCLimits.maxNodesPerList {
            fatalError("too many nodes")
        }
        if response.values.count > KRPCLimits.maxValues { fatalError("too many values") }
        if response.nodes.contains(where: { $0.endpoint.address.count != 4 })
            || response.nodes6.contains(where: { $0.endpoint.address.count != 16 }) {
            fatalError("node of the wrong family")
        }
        if let token = response.token, token.count > KRPCLimits.maxTokenLength { fatalError("long token") }
    case .error(_, let text):
        if text.utf8.count > KRPCLimits.maxErrorMessageLength { fatalError("long error text") }
    }
    let encoded = message.encoded
    guard let again = try? KRPCMessage(decoding: encoded), again == message else {
        fatalError("KRPC message did not survive a round trip: \(String(describing: message).prefix(300))")
    }
    if again.encoded != encoded { fatalError("KRPC message encodes two ways") }
    return 0
}
