// libFuzzer target: a BEP 15 UDP tracker datagram, read as from an IPv4 and from an IPv6
// tracker. Parsing never crashes, and what parses says what the bytes say: the action and
// transaction of the header, one peer per whole compact entry with a non-zero port, one
// scrape entry per 12 bytes. The encoders build requests, not responses: no round trip.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUDPTracker(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for ipv6 in [false, true] {
        let response: UDPTrackerPacket.Response
        do {
            response = try UDPTrackerPacket.parse(bytes, ipv6: ipv6)
        } catch {
            _ = error.description
            continue
        }
        if response.transaction != UDPTrackerPacket.get32(bytes, 4) { fatalError("transaction id changed") }
        let action = UDPTrackerPacket.get32(bytes, 0)
        switch response {
        case .connected(_, let connection):
            if action != 0 || connection != UDPTrackerPacket.get64(bytes, 8) { fatalError("bad connect response") }
        case .announced(_, let announce):
            let entry = ipv6 ? 18 : 6
            if action != 1 || (bytes.count - 20) % entry != 0 { fatalError("bad announce response accepted") }
            if announce.peers.count > (bytes.count - 20) / entry { fatalError("more peers than entries") }
            if announce.interval < HTTPTrackerProtocol.minimumInterval { fatalError("interval \(announce.interval)") }
            for peer in announce.peers where peer.port == 0 { fatalError("peer with port 0") }
        case .scraped(_, let entries):
            if action != 2 || entries.count != (bytes.count - 8) / 12 { fatalError("bad scrape response") }
        case .error(_, let message):
            if action != 3 { fatalError("bad error response") }
            _ = message
        }
    }
    return 0
}
