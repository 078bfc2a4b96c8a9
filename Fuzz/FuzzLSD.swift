// libFuzzer target: BEP 14 announces never crash the decoder, and an accepted announce
// survives a round trip through its encoding within the datagram limit.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLSD(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let announce = try? LSDAnnouncement(datagram: bytes) else { return 0 }
    let encoded = announce.encoded
    guard encoded.count <= LSDAnnouncement.maxDatagramLength else { fatalError("encoded announce too long: \(encoded.count)") }
    guard let again = try? LSDAnnouncement(datagram: encoded) else { fatalError("encoded announce does not parse") }
    if again != announce { fatalError("announce changed in a round trip") }
    if announce.infoHashes.isEmpty || announce.infoHashes.count > LSDAnnouncement.maxInfoHashes || announce.port == 0 {
        fatalError("announce out of bounds")
    }
    return 0
}
