// The engine as a library: download one torrent (a magnet, a 40-hex info hash, or a
// .torrent file) into a folder, printing progress, then exit.
//
//   swift run example-download MAGNET|HASH|FILE.torrent OUT_DIR [HOST:PORT ...]
//
// Peers given as HOST:PORT are contacted directly (as a magnet's x.pe would be).
import BitTorrent
import Foundation
import TorrentEngine

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: example-download MAGNET|HASH|FILE.torrent OUT_DIR [HOST:PORT ...]\n".utf8))
    exit(2)
}
let target = arguments[1]
let output = arguments[2]

// What to download: a magnet link, a bare info hash, or the bytes of a .torrent file.
let source: TorrentSource
if target.hasPrefix("magnet:") {
    source = .magnet(try MagnetLink(parsing: target))
} else if let hash = InfoHash(string: target) {
    source = .magnet(MagnetLink(infoHash: hash))
} else {
    source = .metainfo(try Metainfo(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: target)))))
}

var configuration = SessionConfiguration(dataDirectory: output)
configuration.listenHosts = ["127.0.0.1"]  // this example talks to local peers only
let session = Session(configuration: configuration)
_ = try await session.start()

var options = TorrentOptions()
options.peers = arguments.dropFirst(3).compactMap(PeerAddress.init)
let hash = try await session.add(source, options: options)

// Progress once a second until every piece is verified on disk.
let progress = Task {
    while !Task.isCancelled {
        if let stats = await session.stats(hash) {
            print(String(format: "%@  %5.1f%%  %d peers  %@", stats.name, stats.progress * 100, stats.peers.count,
                         stats.state.rawValue))
        }
        try? await Task.sleep(for: .seconds(1))
    }
}
try await session.waitForCompletion(hash)
progress.cancel()
let stats = await session.stats(hash)
print("done: \(stats?.name ?? hash.hex), \(stats?.verifiedBytes ?? 0) bytes verified in \(output)")
await session.shutdown()
