import ArgumentParser
import BitTorrent
import Foundation
import Logging
import TorrentEngine

struct DownloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Download a torrent to a directory (no filesystem needed), with a progress bar."
    )

    @Argument(help: "A magnet URI, a .torrent file or an info hash.")
    var torrent: String

    @Option(name: .shortAndLong, help: "Directory to download into.")
    var output = "."

    @OptionGroup var network: NetworkOptions

    @Flag(help: "Keep seeding after the download completes, until interrupted.")
    var seed = false

    @Flag(help: "Fetch pieces in order instead of rarest first.")
    var sequential = false

    @Flag(help: "Show a live full-screen view instead of the progress line (on a terminal; q stops).")
    var watch = false

    func run() async throws {
        let source = try TorrentInput.load(torrent).source
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let (session, port) = try await network.startSession(dataDirectory: output)
        var options = TorrentOptions()
        options.peers = try network.parsedPeers()
        options.sequential = sequential
        options.stopOnStorageError = true
        let hash = try await session.add(source, options: options)
        network.note("listening on port \(port)")
        let progress = ProgressReporter(session: session, infoHash: hash, watch: watch)
        let outcome = await progress.race { try await session.waitForCompletion(hash) }
        switch outcome {
        case .finished(.success):
            if let stats = await session.stats(hash) {
                print("complete: \(stats.name) (\(ByteCount.format(stats.totalSize ?? 0))) in \(output)")
            }
            if seed {
                network.note("seeding; press Ctrl-C to stop")
                _ = await progress.race(line: false) { try await Task.sleep(for: .seconds(1_000_000_000)) }
            }
            await session.shutdown()
        case .finished(.failure(let error)):
            await session.shutdown()
            throw CLIError("download failed: \(error)")
        case .interrupted:
            await session.shutdown()
            throw ExitCode(130)
        }
    }
}

struct SeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Seed existing data: a file or directory (a torrent is made for it) or a .torrent with --data."
    )

    @Argument(help: "A file or directory to share, or a .torrent file whose data is in --data.")
    var path: String

    @Option(help: "Directory holding the torrent's data (for a .torrent argument; default: here).")
    var data: String?

    @Option(name: .customLong("torrent-out"), help: "Also write the .torrent made for PATH here.")
    var torrentOut: String?

    @Option(name: .long, help: "Tracker URL for the torrent made for PATH; repeatable.")
    var tracker: [String] = []

    @OptionGroup var network: NetworkOptions

    func run() async throws {
        let metainfo: Metainfo
        let dataDirectory: String
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CLIError("cannot read \(path): no such file or directory")
        }
        if !isDirectory.boolValue, path.hasSuffix(".torrent"), case .metainfo(let parsed) = try TorrentInput.load(path) {
            metainfo = parsed
            dataDirectory = data ?? "."
        } else {
            var options = TorrentBuilder.Options()
            options.trackers = tracker.map { [$0] }
            options.creationDate = Int64(Date().timeIntervalSince1970)
            do {
                metainfo = try TorrentCreator.create(path: path, options: options).metainfo
            } catch {
                throw CLIError("\(error)")
            }
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            dataDirectory = (absolute as NSString).deletingLastPathComponent
            if let torrentOut {
                let bytes = TorrentBuilder.torrentFile(info: try! Bencode.decode(metainfo.infoBytes, limits: .torrentFile),
                                                       options: options)
                do {
                    try Data(bytes).write(to: URL(fileURLWithPath: torrentOut), options: .atomic)
                } catch {
                    throw CLIError("cannot write \(torrentOut): \(error.localizedDescription)")
                }
            }
        }
        // A seed wants to be reachable: port mapping unless --natpmp off / --upnp off.
        let (session, port) = try await network.startSession(dataDirectory: dataDirectory, natpmpByDefault: true)
        var options = TorrentOptions()
        options.peers = try network.parsedPeers()
        let hash = try await session.add(.metainfo(metainfo), options: options)
        // Flushed at once: scripts read the magnet while we keep running.
        FileHandle.standardOutput.write(Data((MagnetLink(metainfo: metainfo).uri + "\n").utf8))
        network.note("seeding \(metainfo.info.name) from \(dataDirectory) on port \(port); Ctrl-C stops")
        let checked = await SignalWaiter.race { try await session.waitForCompletion(hash) }
        if case .finished(.failure(let error)) = checked {
            await session.shutdown()
            throw CLIError("cannot seed: \(error) (is the data in \(dataDirectory)?)")
        }
        if case .finished(.success) = checked {
            network.note("data verified; seeding")
            _ = await SignalWaiter.race { try await Task.sleep(for: .seconds(1_000_000_000)) }
        }
        await session.shutdown()
    }
}

/// Options every networked command shares.
struct NetworkOptions: ParsableArguments {
    @Option(help: "TCP port to listen on (0 = any free port).")
    var port = 0

    @Option(name: .customLong("peer"), help: "A peer to contact, HOST:PORT or [V6]:PORT; repeatable.")
    var peers: [String] = []

    @Option(name: .customLong("download-limit"), help: "Download limit in bytes per second (K/M suffixes).")
    var downloadLimit: String?

    @Option(name: .customLong("upload-limit"), help: "Upload limit in bytes per second (K/M suffixes).")
    var uploadLimit: String?

    @Option(name: .customLong("max-connections"), help: "Most peer connections.")
    var maxConnections = 200

    @Option(help: "Blocklist file (P2P `name:a.b.c.d-e.f.g.h` or CIDR lines).")
    var blocklist: String?

    @Option(help: "Directory for resume data (default: XDG data dir).")
    var state: String?

    @Option(help: "Local service discovery (BEP 14): on or off.")
    var lsd: OnOff = .on

    @Option(help: "Map the listen port on the gateway with NAT-PMP: on or off (default: on for seed, off otherwise).")
    var natpmp: OnOff?

    @Option(help: "Map it with UPnP IGD when NAT-PMP is off or fails: on or off (default: on for seed, off otherwise).")
    var upnp: OnOff?

    @Option(help: "The mainline DHT (BEP 5) for public torrents: on or off.")
    var dht: OnOff = .on

    @Option(help: "uTP (BEP 29) beside TCP: on (dial uTP, and TCP 25 ms later; the first to connect is used) or off (TCP only).")
    var utp: OnOff = .on

    @Option(help: "Message stream encryption of peer connections: prefer (encrypted first, plaintext on failure), require or off.")
    var encryption: EncryptionPolicy = .prefer

    @Option(name: .customLong("dht-router"),
            help: "A DHT bootstrap router, HOST:PORT; repeatable (replaces the default routers).")
    var dhtRouters: [String] = []

    @Flag(name: .shortAndLong, help: "Log what happens (repeat for debug detail).")
    var verbose: Int

    @Flag(help: "Print nothing but errors and results.")
    var quiet = false

    /// `natpmpByDefault`: port mapping (NAT-PMP, UPnP) when `--natpmp`/`--upnp` are not
    /// given (`seed`).
    func configuration(dataDirectory: String, natpmpByDefault: Bool = false) throws -> SessionConfiguration {
        var configuration = SessionConfiguration(dataDirectory: dataDirectory)
        guard (0...65535).contains(port) else { throw CLIError("--port must be 0…65535") }
        configuration.listenPort = port
        configuration.maxConnections = maxConnections
        configuration.stateDirectory = state ?? NetworkOptions.defaultStateDirectory
        configuration.localDiscovery = lsd == .on
        configuration.natPMP = natpmp.map { $0 == .on } ?? natpmpByDefault
        configuration.upnp = upnp.map { $0 == .on } ?? natpmpByDefault
        configuration.dht = dht == .on
        configuration.utp = utp == .on
        configuration.encryption = encryption
        if !dhtRouters.isEmpty {
            for router in dhtRouters where PeerAddress(router) == nil {
                throw CLIError("invalid --dht-router '\(router)' (HOST:PORT)")
            }
            configuration.dhtRouters = dhtRouters
        }
        if let downloadLimit {
            guard let rate = (ByteSize.parse(downloadLimit).map { Int(clamping: $0) }), rate > 0 else {
                throw CLIError("invalid --download-limit '\(downloadLimit)'")
            }
            configuration.downloadLimit = rate
        }
        if let uploadLimit {
            guard let rate = (ByteSize.parse(uploadLimit).map { Int(clamping: $0) }), rate > 0 else {
                throw CLIError("invalid --upload-limit '\(uploadLimit)'")
            }
            configuration.uploadLimit = rate
        }
        if let blocklist {
            guard let text = try? String(contentsOfFile: blocklist, encoding: .utf8) else {
                throw CLIError("cannot read blocklist \(blocklist)")
            }
            let bad = configuration.blocklist.load(text)
            if !bad.isEmpty { note("blocklist: ignored \(bad.count) unreadable lines (first: line \(bad[0]))") }
        }
        return configuration
    }

    /// A session for these options, listening; its port.
    func startSession(dataDirectory: String, cacheLimit: Int64? = nil,
                      natpmpByDefault: Bool = false) async throws -> (Session, Int) {
        var configuration = try configuration(dataDirectory: dataDirectory, natpmpByDefault: natpmpByDefault)
        configuration.cacheLimit = cacheLimit
        let session = Session(configuration: configuration, logger: logger())
        do {
            return (session, try await session.start())
        } catch {
            await session.shutdown()
            throw CLIError("cannot listen: \(error)")
        }
    }

    func parsedPeers() throws -> [PeerAddress] {
        try peers.map { text in
            guard let peer = PeerAddress(text) else { throw CLIError("invalid --peer '\(text)': use HOST:PORT") }
            return peer
        }
    }

    func logger() -> Logger {
        _ = loggingBootstrap
        var logger = Logger(label: "torrentfs")
        logger.logLevel = verbose >= 2 ? .debug : verbose == 1 ? .info : .warning
        return logger
    }

    func note(_ text: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static var defaultStateDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/torrentfs" }
        return (environment["HOME"] ?? "/tmp") + "/.local/share/torrentfs"
    }
}

/// Logs go to stderr, so stdout stays machine-readable. Bootstrapped once, on first use.
let loggingBootstrap: Void = LoggingSystem.bootstrap(StreamLogHandler.standardError)

extension TorrentInput {
    var source: TorrentSource {
        switch self {
        case .metainfo(let metainfo): return .metainfo(metainfo)
        case .magnet(let magnet): return .magnet(magnet)
        }
    }
}
