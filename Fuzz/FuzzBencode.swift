// libFuzzer target: bencode decoding never crashes, and whatever decodes re-encodes to
// bytes that decode to the same value (and canonical input re-encodes byte-exact).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBencode(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for limits in [BencodeLimits.strict, BencodeLimits.torrentFile] {
        guard let value = try? Bencode.decode(bytes, limits: limits) else { continue }
        let encoded = Bencode.encode(value)
        guard let again = try? Bencode.decode(encoded, limits: .strict) else {
            fatalError("re-encoded value does not decode")
        }
        if limits.requireCanonicalKeys && encoded != bytes { fatalError("canonical input did not re-encode byte-exact") }
        if limits.requireCanonicalKeys && again != value { fatalError("round trip changed the value") }
    }
    return 0
}
