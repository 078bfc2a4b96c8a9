// libFuzzer target: an HTTP tracker's response body, read as an announce answer and as a
// scrape answer (for every 20-byte key under `files` and for a hash it does not name).
// Parsing never crashes, and what parses is within the bounds the parser promises. There
// is no response encoder, so no round trip.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPTracker(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let response = try HTTPTrackerProtocol.parseAnnounce(bytes)
        if response.interval < HTTPTrackerProtocol.minimumInterval { fatalError("interval \(response.interval)") }
        for peer in response.peers where peer.port == 0 || peer.host.isEmpty { fatalError("bad peer \(peer)") }
    } catch {
        _ = error.description
    }
    var hashes = [InfoHash(Array(repeating: 0xA5, count: 20))!]
    if let value = try? Bencode.decode(bytes, limits: .torrentFile), let files = value["files"]?.dictionaryValue {
        hashes += files.entries.compactMap { InfoHash($0.key) }
    }
    for hash in hashes {
        do {
            let entry = try HTTPTrackerProtocol.parseScrape(bytes, infoHash: hash)
            if entry.seeders < 0 || entry.completed < 0 || entry.leechers < 0 { fatalError("negative count \(entry)") }
        } catch {
            _ = error.description
        }
    }
    return 0
}
