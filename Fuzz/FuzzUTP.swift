// libFuzzer target: a uTP datagram. Decoding never crashes; what decodes encodes back to
// the same bytes (except skipped unknown extensions, which are dropped: then it decodes
// again to the same packet); and the datagram, fed to a connected socket and to an
// endpoint, never breaks their invariants.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    checkUTPDatagram(bytes)
    return 0
}

func checkUTPDatagram(_ bytes: [UInt8]) {
    if let packet = try? UTPPacket.decode(bytes) {
        guard let again = try? UTPPacket.decode(packet.encoded), again == packet else {
            fatalError("decoded packet does not survive encoding")
        }
        if packet.payload.count + packet.overhead > bytes.count { fatalError("more bytes than the datagram") }
    }
    // A connected pair with data in flight, then the datagram as if from the peer.
    let now: Int64 = 1_000_000_000
    let client = UTPSocket.connect(recvID: 10, seq: 100, now: now)
    let syn = try! UTPPacket.decode(client.takeDatagrams()[0])
    let server = UTPSocket.accept(syn, seq: 500, now: now)
    for datagram in server.takeDatagrams() { client.receive(try! UTPPacket.decode(datagram), now: now + 1000) }
    client.write([UInt8](repeating: 1, count: 20_000))
    client.flush(now: now + 2000)
    _ = client.takeDatagrams()
    if var packet = try? UTPPacket.decode(bytes) {
        packet.connectionID = client.recvID
        client.receive(packet, now: now + 3000)
        client.drained(now: now + 3000)
        client.tick(now: now + 4_000_000_000)
        if client.flightBytes < 0 || client.flightBytes > 20_000 { fatalError("flight \(client.flightBytes)") }
        for datagram in client.takeDatagrams() where (try? UTPPacket.decode(datagram)) == nil {
            fatalError("the socket sent a datagram it cannot decode")
        }
    }
    let endpoint = UTPEndpoint<Int>(random: { 7 }, configure: { _ in UTPSocket.Configuration() })
    for sender in 0..<3 {
        _ = endpoint.receive(bytes, from: sender, bufferSize: 65536, now: now)
        if endpoint.count > endpoint.limits.maxHalfOpen { fatalError("too many connections") }
    }
}
