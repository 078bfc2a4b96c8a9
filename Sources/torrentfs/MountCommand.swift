import ArgumentParser
import Foundation
import Logging
import TorrentEngine
import TorrentFS
import TorrentFSCore
import TorrentHTTP
#if canImport(Glibc)
import Glibc
#endif

struct MountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount torrentfs: torrents written to MOUNTPOINT/.add appear as folders.",
        discussion: """
        Returns once the mount is live; the daemon keeps running (-f: stays in the foreground).
        Also the mount(8) helper `mount.torrentfs SOURCE MOUNTPOINT -o OPTIONS`.
        Options: data=DIR, port=N, download_limit=RATE, upload_limit=RATE, max_connections=N,
        max_peers=N, readahead=SIZE, read_timeout=SECONDS, metadata_timeout=SECONDS, fetch_all,
        remove_data, allow_other, debug, log=FILE, http=ADDR:PORT, http_host=NAME, http_add,
        seed_ratio=R, cache_size=SIZE, blocklist=FILE (see mount.torrentfs(8)).
        """
    )

    @Argument(help: "MOUNTPOINT, or SOURCE MOUNTPOINT as mount(8) passes them (SOURCE is ignored).")
    var places: [String]

    @Option(name: .customShort("o"), help: "Mount options, comma separated (repeatable).")
    var options: [String] = []

    @Flag(name: .customShort("f"), help: "Stay in the foreground and log to stderr.")
    var foreground = false

    @Flag(name: .shortAndLong, help: "Verbose logs (same as -o debug).")
    var verbose = false

    /// mount(8)'s `-f` as the helper sees it: options and mount point checked, nothing mounted.
    @Flag(name: .customLong("fake"), help: .hidden) var fake = false
    @Flag(name: .customShort("n"), help: .hidden) var noMtab = false
    @Flag(name: .customShort("s"), help: .hidden) var sloppy = false

    static let notifyVariable = "TORRENTFS_NOTIFY_FD"

    func validate() throws {
        guard (1...2).contains(places.count) else {
            throw ValidationError("expected MOUNTPOINT, or SOURCE MOUNTPOINT")
        }
    }

    func run() async throws {
        let mountpoint = Self.absolute(places.last!)
        var settings = MountOptions()
        do {
            try settings.apply(options)
        } catch {
            throw CLIError("\(error)")
        }
        if verbose { settings.debug = true }
        var info = stat()
        guard stat(mountpoint, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw CLIError("mount point \(mountpoint) is not a folder")
        }
        if fake { return }
        if foreground {
            // Only a pipe is taken for the parent's "ready" channel (never some other fd).
            var notify = ProcessInfo.processInfo.environment[Self.notifyVariable].flatMap(Int32.init)
            var info = stat()
            if let fd = notify, fstat(fd, &info) != 0 || (info.st_mode & S_IFMT) != S_IFIFO { notify = nil }
            unsetenv(Self.notifyVariable)
            try await serve(mountpoint: mountpoint, settings: settings, notify: notify)
        } else {
            try daemonize(mountpoint: mountpoint, settings: settings)
        }
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }

    // MARK: Background: the same command with -f, detached, reporting when it is mounted

    private func daemonize(mountpoint: String, settings: MountOptions) throws {
        do {
            try makeDirectories(settings.dataDirectory)
        } catch {
            throw CLIError("cannot create \(settings.dataDirectory): \(error)")
        }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw CLIError("pipe: \(String(cString: strerror(errno)))") }
        // Both ends well above 3 and close-on-exec: the daemon gets the write end as fd 3 and
        // nothing else (a pipe end that was itself fd 3 would be closed after the dup2).
        for index in 0..<2 {
            let high = fcntl(fds[index], F_DUPFD_CLOEXEC, 10)
            close(fds[index])
            guard high >= 0 else { throw CLIError("fcntl: \(String(cString: strerror(errno)))") }
            fds[index] = high
        }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var arguments = [executable, "mount", mountpoint, "-f"]
        for list in options { arguments += ["-o", list] }
        if verbose { arguments.append("-v") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let log = settings.resolvedLogFile
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, 0x80)  // POSIX_SPAWN_SETSID (a GNU extension Swift does not see)
        var environment = ProcessInfo.processInfo.environment
        environment[Self.notifyVariable] = "3"
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            throw CLIError("cannot start the daemon: \(String(cString: strerror(spawned)))")
        }
        // The daemon writes "ready" once mounted, or "error: …"; EOF means it died.
        var message: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let got = read(fds[0], &byte, 1)
            if got < 0 && errno == EINTR { continue }
            if got <= 0 || byte == UInt8(ascii: "\n") { break }
            message.append(byte)
        }
        close(fds[0])
        let text = String(decoding: message, as: UTF8.self)
        if text == "ready" { return }
        if text.hasPrefix("error: ") { throw CLIError(String(text.dropFirst(7))) }
        throw CLIError("the daemon stopped before mounting; see \(log)")
    }

    private func makeDirectories(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    // MARK: Foreground: the daemon itself

    /// Mounts and serves until unmounted. `notify`: where the parent waits for "ready".
    private func serve(mountpoint: String, settings: MountOptions, notify: Int32?) async throws {
        func report(_ line: String) {
            guard let notify else { return }
            _ = (line + "\n").withCString { write(notify, $0, strlen($0)) }
            close(notify)
        }
        _ = SignalPipe.shared  // handlers installed before any work starts
        _ = loggingBootstrap
        var logger = Logger(label: "torrentfs")
        logger.logLevel = settings.debug ? .debug : .info
        let session: Session
        let fileSystem: TorrentFileSystem
        let mount: FuseMount
        var httpServer: TorrentHTTPServer?
        do {
            try makeDirectories(settings.dataDirectory)
            session = Session(configuration: try sessionConfiguration(settings, logger: logger), logger: logger)
            fileSystem = TorrentFileSystem(session: session, options: settings, logger: logger)
            do {
                try await fileSystem.start()
            } catch EngineError.listenFailed where settings.listenPort == nil {
                // The default port is taken: any free port will do.
                await session.shutdown()
                var fallback = settings
                fallback.listenPort = 0
                return try await serve(mountpoint: mountpoint, settings: fallback, notify: notify)
            }
            mount = FuseMount(fileSystem: fileSystem, mountpoint: mountpoint, logger: logger)
            try mount.mount(allowOther: settings.allowOther, debug: settings.debug)
            if let http = settings.http {
                var configuration = TorrentHTTPServer.Configuration()
                (configuration.host, configuration.port) = http
                configuration.hostNames = settings.httpHosts
                configuration.metadataTimeout = settings.metadataTimeout
                configuration.readerOptions.maximumWindow = settings.effectiveReadahead
                configuration.readerOptions.timeout = settings.readTimeout
                if settings.httpAdd { configuration.add = { try await fileSystem.commit($0) } }
                do {
                    httpServer = try await TorrentHTTPServer.start(session: session, configuration: configuration, logger: logger)
                } catch {
                    mount.shutdown()
                    await session.shutdown()
                    throw CLIError("cannot serve HTTP on \(settings.httpAddress ?? ""): \(error)")
                }
            }
        } catch {
            report("error: \(error)")
            throw CLIError("\(error)")
        }
        logger.info("mounted", metadata: ["mountpoint": "\(mountpoint)", "data": "\(settings.dataDirectory)"])
        report("ready")
        // Until a signal, an unmount (the loop ends), or a lazy unmount (gone from the table).
        while !SignalPipe.shared.received {
            if mount.waitForLoop(seconds: 0) || !mount.isMounted { break }
            try? await Task.sleep(for: .milliseconds(250))
        }
        logger.info("unmounting", metadata: ["mountpoint": "\(mountpoint)"])
        await httpServer?.stop()
        mount.shutdown()
        await session.shutdown()
        logger.info("stopped")
    }

    private func sessionConfiguration(_ settings: MountOptions, logger: Logger) throws -> SessionConfiguration {
        var configuration = SessionConfiguration(dataDirectory: settings.dataDirectory + "/data")
        if let file = settings.blocklistFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CLIError("cannot read blocklist \(file)")
            }
            let bad = configuration.blocklist.load(text)
            if !bad.isEmpty {
                logger.warning("blocklist: ignored unreadable lines", metadata: ["count": "\(bad.count)", "first": "\(bad[0])"])
            }
        }
        configuration.stateDirectory = settings.dataDirectory + "/state"
        configuration.listenPort = settings.listenPort ?? 6881
        configuration.downloadLimit = settings.downloadLimit
        configuration.uploadLimit = settings.uploadLimit
        configuration.maxConnections = settings.maxConnections
        configuration.maxConnectionsPerTorrent = settings.maxPeers
        configuration.cacheLimit = settings.cacheSize
        configuration.localDiscovery = settings.lsd
        configuration.natPMP = settings.natpmp
        configuration.upnp = settings.upnp
        configuration.dht = settings.dht
        configuration.utp = settings.utp
        if !settings.dhtRouters.isEmpty { configuration.dhtRouters = settings.dhtRouters }
        configuration.portMappingLease = settings.natpmpLease
        configuration.encryption = settings.encryption
        return configuration
    }
}
