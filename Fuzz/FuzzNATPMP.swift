// libFuzzer target: NAT-PMP answers never crash the parser, and an accepted answer
// encodes back to exactly the bytes it came from (every field is kept).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNATPMP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let response = try? NATPMPMessage.parse(bytes) else { return 0 }
    if response.encoded != bytes { fatalError("NAT-PMP answer changed in a round trip") }
    return 0
}
