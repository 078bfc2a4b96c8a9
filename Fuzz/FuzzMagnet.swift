// libFuzzer target: magnet parsing never crashes, and a parsed magnet survives a round trip
// through its URI.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMagnet(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let magnet = try? MagnetLink(parsing: text) else { return 0 }
    guard let again = try? MagnetLink(parsing: magnet.uri) else { fatalError("built URI does not parse: \(magnet.uri)") }
    if again.infoHash != magnet.infoHash || again.trackers != magnet.trackers || again.peers != magnet.peers
        || again.webSeeds != magnet.webSeeds || again.exactLength != magnet.exactLength {
        fatalError("magnet changed in a round trip: \(magnet.uri)")
    }
    return 0
}
