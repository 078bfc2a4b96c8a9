// libFuzzer target: the payload of a BEP 10 extended message, read as each kind we decode
// (extension handshake, BEP 9 ut_metadata, BEP 11 ut_pex). Decoding never crashes; what
// decodes re-encodes to a payload that decodes to the same value and encodes to the same
// bytes again, and the limits the decoders promise hold.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExtension(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let handshake = try? ExtensionHandshake(payload: bytes) {
        guard let again = try? ExtensionHandshake(payload: handshake.payload), again == handshake else {
            fatalError("extension handshake did not survive a round trip: \(handshake)")
        }
        if again.payload != handshake.payload { fatalError("extension handshake encodes two ways") }
        if let port = handshake.listenPort, port == 0 { fatalError("listen port 0 accepted") }
        if let depth = handshake.requestQueueDepth, !(1...100_000).contains(depth) { fatalError("reqq \(depth)") }
        if let ip = handshake.yourIP, ip.count != 4 && ip.count != 16 { fatalError("yourip of \(ip.count) bytes") }
        if let size = handshake.metadataSize, size <= 0 { fatalError("metadata_size \(size)") }
    }
    if let message = try? MetadataMessage(payload: bytes) {
        guard let again = try? MetadataMessage(payload: message.payload), again == message else {
            fatalError("ut_metadata message did not survive a round trip: \(String(describing: message).prefix(200))")
        }
        if again.payload != message.payload { fatalError("ut_metadata message encodes two ways") }
        switch message {
        case .request(let piece), .reject(let piece), .data(let piece, _, _):
            if piece < 0 || piece >= MetadataMessage.maxMetadataSize / MetadataMessage.pieceSize {
                fatalError("metadata piece \(piece) out of range")
            }
        }
        if case .data(_, let total, _) = message, total <= 0 || total > MetadataMessage.maxMetadataSize {
            fatalError("metadata total_size \(total) out of range")
        }
    }
    if let pex = try? PEXMessage(payload: bytes) {
        guard let again = try? PEXMessage(payload: pex.payload), again == pex else {
            fatalError("ut_pex message (\(pex.added.count) added, \(pex.dropped.count) dropped) did not survive a round trip")
        }
        if again.payload != pex.payload { fatalError("ut_pex message encodes two ways") }
        if pex.added.count > PEXMessage.maxAddedPeers || pex.dropped.count > PEXMessage.maxDroppedPeers {
            fatalError("\(pex.added.count) added and \(pex.dropped.count) dropped peers read")
        }
        for peer in pex.added + pex.dropped where peer.port == 0 || (peer.address.count != 4 && peer.address.count != 16) {
            fatalError("bad compact peer \(peer)")
        }
    }
    return 0
}
