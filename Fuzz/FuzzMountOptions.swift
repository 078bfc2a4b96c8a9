import TorrentEngine
import TorrentFSCore

// libFuzzer target: `-o` option lists as mount(8) and fstab pass them (one list per line of
// the input). Applying them never crashes; what is accepted is within the documented ranges.
// Every line is also read as a size (ByteSize): a parsed size prints back to itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMountOptions(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let lists = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    for list in lists {
        if let bytes = ByteSize.parse(list) {
            if bytes < 0 || ByteSize.parse(String(bytes)) != bytes { fatalError("size \(list) read as \(bytes)") }
        }
    }
    var options = MountOptions(dataDirectory: "/default")
    do {
        try options.apply(lists)
    } catch {
        _ = error.description
        return 0
    }
    if !options.dataDirectory.hasPrefix("/") { fatalError("relative data directory") }
    if let log = options.logFile, !log.hasPrefix("/") { fatalError("relative log file") }
    if let port = options.listenPort, !(0...65535).contains(port) { fatalError("port \(port)") }
    if let rate = options.downloadLimit, rate <= 0 { fatalError("download limit \(rate)") }
    if let rate = options.uploadLimit, rate <= 0 { fatalError("upload limit \(rate)") }
    if !(1...100_000).contains(options.maxConnections) || !(1...100_000).contains(options.maxPeers) {
        fatalError("connection counts \(options.maxConnections) \(options.maxPeers)")
    }
    if !(0...(1 << 30)).contains(options.readahead) { fatalError("readahead \(options.readahead)") }
    if let seconds = options.readTimeout, !(seconds > 0 && seconds.isFinite) { fatalError("read timeout \(seconds)") }
    if !(options.metadataTimeout >= 0 && options.metadataTimeout.isFinite) { fatalError("metadata timeout") }
    if let ratio = options.seedRatio, !(ratio >= 0 && ratio.isFinite) { fatalError("seed ratio \(ratio)") }
    if let address = options.httpAddress {
        // What `http=` accepted reads back, and writes back to text that reads the same.
        guard let (host, port) = options.http, !host.isEmpty, (0...65535).contains(port) else {
            fatalError("http=\(address) accepted but unreadable")
        }
        let text = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        guard let again = MountOptions.hostAndPort(text), again.host == host, again.port == port else {
            fatalError("http=\(address) does not survive being written back as \(text)")
        }
    }
    if options.httpHosts.contains(where: \.isEmpty) { fatalError("empty http_host accepted") }
    return 0
}
