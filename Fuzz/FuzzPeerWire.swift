// libFuzzer target: a peer's byte stream as a connection reads it — a handshake if the
// input starts with one, then length-prefixed messages until one is refused or more input
// is needed. Decoding never crashes; the handshake and every message re-encode to exactly
// the bytes they were decoded from (the wire form has one encoding) and decode back to the
// same value; a shorter prefix of those bytes asks for more input instead of failing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPeerWire(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var rest = bytes[...]
    do {
        if let handshake = try Handshake.decode(rest) {
            let frame = Array(rest.prefix(Handshake.length))
            if handshake.encoded != frame { fatalError("handshake did not re-encode byte-exact") }
            if (try? Handshake.decode(handshake.encoded[...])) != handshake { fatalError("handshake round trip") }
            // The same bytes at a non-zero slice start decode the same.
            if (try? Handshake.decode(([0] + frame)[1...])) != handshake { fatalError("handshake depends on slice start") }
            for cut in 0..<Handshake.length {
                guard asksForMore({ try Handshake.decode(rest.prefix(cut)) }) else {
                    fatalError("a \(cut)-byte prefix of a valid handshake did not ask for more")
                }
            }
            rest = rest.dropFirst(Handshake.length)
        }
    } catch {
        _ = error.description  // not a handshake: read the input as messages
    }
    let decoder = PeerMessageDecoder()
    while true {
        let decoded: (message: PeerMessage, consumed: Int)?
        do {
            decoded = try decoder.decode(rest)
        } catch {
            _ = error.description
            break
        }
        guard let (message, consumed) = decoded else { break }
        func what() -> Substring { String(describing: message).prefix(100) }  // a piece's block can be long
        if consumed < 4 || consumed > rest.count { fatalError("consumed \(consumed) of \(rest.count) bytes") }
        let frame = rest.prefix(consumed)
        let encoded = message.encoded
        if encoded != Array(frame) { fatalError("\(what()) did not re-encode byte-exact") }
        guard let again = try? decoder.decode(encoded[...]), again.message == message, again.consumed == consumed else {
            fatalError("\(what()) did not survive a round trip")
        }
        for cut in Set([0, 3, 4, consumed / 2, consumed - 1]) where cut < consumed {
            guard asksForMore({ try decoder.decode(frame.prefix(cut)) }) else {
                fatalError("a \(cut)-byte prefix of \(what()) did not ask for more")
            }
        }
        rest = rest.dropFirst(consumed)
    }
    return 0
}

/// Whether a decoder asks for more input: neither a value nor an error.
private func asksForMore<T>(_ decode: () throws -> T?) -> Bool {
    do { return try decode() == nil } catch { return false }
}
