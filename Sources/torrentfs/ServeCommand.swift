import ArgumentParser
import BitTorrent
import Foundation
import TorrentEngine
import TorrentFSCore
import TorrentHTTP

/// `torrentfs serve`: the engine with an HTTP range server and no FUSE (docs/http.md).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Stream torrents over HTTP (range requests, for players, browsers and curl)."
    )

    @Argument(help: "Torrents to serve: .torrent files, magnet links or info hashes.")
    var torrents: [String] = []

    @Option(help: "Where the HTTP server listens, ADDR:PORT (port 0: any free port).")
    var http = "127.0.0.1:8888"

    @Option(name: .customLong("http-host"), help: "A name accepted in the Host header besides localhost; repeatable.")
    var httpHosts: [String] = []

    @Option(help: "Directory for the torrents' data (default: the XDG data dir's serve/).")
    var data: String?

    @Flag(name: .customLong("allow-add"), help: "Let POST / add torrents (a body in any .add form).")
    var allowAdd = false

    @Flag(name: .customLong("fetch-all"), help: "Download every file, not only what clients read.")
    var fetchAll = false

    @Flag(help: "Show a live full-screen view of the torrents (on a terminal; q stops).")
    var watch = false

    @Option(name: .customLong("metadata-timeout"), help: "Seconds a request waits for a magnet's metadata.")
    var metadataTimeout = 60.0

    @Option(name: .customLong("cache-size"),
            help: "Keep at most SIZE of verified data on disk (e.g. 2G); least recently read pieces are evicted.")
    var cacheSize: String?

    @OptionGroup var network: NetworkOptions

    func run() async throws {
        _ = SignalPipe.shared  // handlers installed before any work starts
        guard let address = MountOptions.hostAndPort(http) else {
            throw CLIError("invalid --http '\(http)': use ADDR:PORT, e.g. 127.0.0.1:8888")
        }
        let sources = try torrents.map { try TorrentInput.load($0).source }
        let dataDirectory = data ?? NetworkOptions.defaultStateDirectory + "/serve"
        var cacheLimit: Int64?
        if let cacheSize {
            guard let bytes = ByteSize.parse(cacheSize), bytes >= MountOptions.minimumCache else {
                throw CLIError("invalid --cache-size '\(cacheSize)': a size of at least 4M, e.g. 2G")
            }
            cacheLimit = bytes
        }
        let (session, port) = try await network.startSession(dataDirectory: dataDirectory, cacheLimit: cacheLimit)
        let adder = Adder(session: session, dataDirectory: dataDirectory, fetchAll: fetchAll,
                          peers: try network.parsedPeers())
        for source in sources { try await adder.add(source) }
        var configuration = TorrentHTTPServer.Configuration()
        (configuration.host, configuration.port) = address
        configuration.hostNames = httpHosts
        configuration.metadataTimeout = metadataTimeout
        configuration.readerOptions.maximumWindow = MountOptions.window(configuration.readerOptions.maximumWindow,
                                                                        cacheSize: cacheLimit)
        if allowAdd { configuration.add = { try await adder.add(input: $0) } }
        let server: TorrentHTTPServer
        do {
            server = try await TorrentHTTPServer.start(session: session, configuration: configuration,
                                                      logger: network.logger())
        } catch {
            await session.shutdown()
            throw CLIError("cannot serve HTTP on \(http): \(error)")
        }
        let host = address.host.contains(":") ? "[\(address.host)]" : address.host
        // Flushed at once: scripts read the URL while we keep running.
        FileHandle.standardOutput.write(Data("http://\(host):\(server.port)/\n".utf8))
        network.note("serving \(sources.count) torrent(s) on http://\(host):\(server.port)/ (peers: port \(port)); Ctrl-C stops")
        _ = await WatchLoop.race(watch: watch, title: "torrentfs serve http://\(host):\(server.port)/",
                                 status: { await session.status() }) { try await Task.sleep(for: .seconds(1_000_000_000)) }
        await server.stop()
        await session.shutdown()
    }

    /// Adds torrents as the server needs them: each in its own data folder, and (unless
    /// `--fetch-all`) nothing fetched but what clients read.
    struct Adder: Sendable {
        let session: Session
        let dataDirectory: String
        let fetchAll: Bool
        let peers: [PeerAddress]

        func add(_ source: TorrentSource) async throws {
            var options = TorrentOptions()
            options.dataDirectory = dataDirectory + "/" + source.infoHash.hex
            options.peers = peers
            if !fetchAll { options.selectedFiles = [] }
            try await session.add(source, options: options)
        }

        /// A `POST /` body in any `.add` form: every item is resolved first, so a bad one adds nothing.
        func add(input bytes: [UInt8]) async throws {
            var sources: [TorrentSource] = []
            for item in try AddInput.parse(bytes) {
                switch item {
                case .magnet(let magnet): sources.append(.magnet(magnet))
                case .metainfo(let metainfo, _): sources.append(.metainfo(metainfo))
                case .path(let path): sources.append(try TorrentInput.load(path).source)
                case .url(let url):
                    do {
                        sources.append(.metainfo(try Metainfo(bytes: try await session.fetch(url))))
                    } catch {
                        throw AddError("cannot fetch a .torrent from \(url): \(error)")
                    }
                }
            }
            for source in sources { try await add(source) }
        }
    }
}
