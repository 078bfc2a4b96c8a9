import BitTorrent
import Foundation
import Logging
import TestSupport
import TorrentEngine
@testable import TorrentFSCore

/// A seeder session on 127.0.0.1 and a filesystem over a second session: the in-process
/// counterpart of a mount (no FUSE), driven through the same calls the adapter makes.
final class Harness: @unchecked Sendable {
    let directory: String
    let metainfo: Metainfo
    let torrentBytes: [UInt8]
    /// Source bytes of each visible file, by path inside the torrent.
    let contents: [[String]: [UInt8]]
    var seeder: Session?
    var seederPort = 0
    var session: Session!
    var fs: TorrentFileSystem!
    var options: MountOptions

    static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }()

    /// Writes `files` (path → size) of seeded random bytes and makes the torrent.
    init(name: String, files: [([String], Int)], pieceLength: Int, seed: UInt64 = 1) throws {
        directory = NSTemporaryDirectory() + "torrentfs-core-\(UUID().uuidString)"
        var generator = SplitMix64(seed: seed)
        var contents: [[String]: [UInt8]] = [:]
        let source = directory + "/src/" + name
        for (path, size) in files {
            let bytes = generator.bytes(size)
            let full = files.count == 1 && path.isEmpty ? source : source + "/" + path.joined(separator: "/")
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: full, contents: Data(bytes))
            contents[path.isEmpty ? [name] : path] = bytes
        }
        self.contents = contents
        let created = try TorrentCreator.create(path: source, pieceLength: pieceLength)
        metainfo = created.metainfo
        torrentBytes = created.torrent
        options = MountOptions(dataDirectory: directory + "/data")
        options.metadataTimeout = 20
    }

    static func configuration(_ data: String) -> SessionConfiguration {
        var configuration = SessionConfiguration(dataDirectory: data)
        configuration.listenHosts = ["127.0.0.1"]
        configuration.listenPort = 0
        return configuration
    }

    func startSeeder() async throws {
        let seeder = Session(configuration: Self.configuration(directory + "/seed-state"), logger: Self.logger)
        seederPort = try await seeder.start()
        var torrentOptions = TorrentOptions()
        torrentOptions.dataDirectory = directory + "/src"
        try await seeder.add(.metainfo(metainfo), options: torrentOptions)
        try await seeder.waitForCompletion(metainfo.infoHash)
        self.seeder = seeder
    }

    func stopSeeder() async {
        await seeder?.shutdown()
        seeder = nil
    }

    func mount() async throws {
        session = Session(configuration: Self.configuration(options.dataDirectory + "/data"), logger: Self.logger)
        fs = TorrentFileSystem(session: session, options: options, logger: Self.logger)
        try await fs.start()
    }

    func unmount() async {
        fs?.close()
        await session?.shutdown()
        fs = nil
        session = nil
    }

    func tearDown() async {
        await unmount()
        await stopSeeder()
        try? FileManager.default.removeItem(atPath: directory)
    }

    var magnet: String {
        "magnet:?xt=urn:btih:\(metainfo.infoHash.hex)&dn=\(metainfo.info.name)&x.pe=127.0.0.1:\(seederPort)"
    }

    // MARK: The calls FUSE would make

    /// Writes to `.add` and closes: the errno of the write, else of the close.
    func add(_ bytes: [UInt8]) async -> Int32 {
        guard case .success(let opened) = await open(TorrentFileSystem.addInode, flags: O_WRONLY | O_TRUNC) else { return EIO }
        defer { fs.release(opened.handle) }
        let written = bytes.withUnsafeBytes { fs.write(handle: opened.handle, bytes: $0) }
        if case .failure(let error) = written { return error.code }
        return await withCheckedContinuation { continuation in
            fs.flush(handle: opened.handle) { continuation.resume(returning: $0) }
        }
    }

    func add(_ text: String) async -> Int32 { await add(Array(text.utf8)) }

    func open(_ inode: UInt64, flags: Int32 = O_RDONLY) async -> Result<OpenResult, FSError> {
        await withCheckedContinuation { continuation in
            fs.open(inode, flags: flags) { continuation.resume(returning: $0) }
        }
    }

    func lookup(_ parent: UInt64, _ name: String) async -> Result<NodeAttributes, FSError> {
        await withCheckedContinuation { continuation in
            fs.lookup(parent: parent, name: name) { continuation.resume(returning: $0) }
        }
    }

    func list(_ inode: UInt64) async -> Result<[String], FSError> {
        await withCheckedContinuation { continuation in
            fs.readdir(inode) { continuation.resume(returning: $0.map { $0.map(\.name).filter { $0 != "." && $0 != ".." } }) }
        }
    }

    /// Resolves a path from the root, component by component.
    func resolve(_ path: [String]) async -> Result<NodeAttributes, FSError> {
        var current = fs.getattr(TorrentFileSystem.rootInode)
        for name in path {
            guard case .success(let node) = current else { return current }
            current = await lookup(node.inode, name)
        }
        return current
    }

    private var nextRequest: UInt64 = 1000

    /// Starts a read; the returned task finishes with its reply.
    func startRead(_ handle: UInt64, offset: Int64, size: Int) -> (request: UInt64, reply: CapturedRead, start: ReadStart) {
        nextRequest += 1
        let reply = CapturedRead()
        let start = fs.read(handle: handle, offset: offset, size: size, request: nextRequest, reply: reply)
        if start == .pending { fs.activate(nextRequest) }
        return (nextRequest, reply, start)
    }

    func read(_ handle: UInt64, offset: Int64, size: Int) async -> Result<[UInt8], FSError> {
        await startRead(handle, offset: offset, size: size).reply.value()
    }

    /// Opens and reads a whole file in 1 MiB reads.
    func readFile(_ path: [String]) async throws -> [UInt8] {
        let node = try await resolve(path).get()
        let opened = try await open(node.inode).get()
        defer { fs.release(opened.handle) }
        var out: [UInt8] = []
        while true {
            let chunk = try await read(opened.handle, offset: Int64(out.count), size: 1 << 20).get()
            if chunk.isEmpty { return out }
            out += chunk
        }
    }

    func status() async throws -> [String: Any] {
        let opened = try await open(TorrentFileSystem.statusInode).get()
        defer { fs.release(opened.handle) }
        let bytes = try await read(opened.handle, offset: 0, size: 1 << 20).get()
        return try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
    }

    func stats() async -> TorrentStats? { await session.stats(metainfo.infoHash) }

    /// Waits (up to 5 s) until `count` lookups or listings wait for the torrent's metadata.
    func waitForMetadataWaiters(_ hash: InfoHash, count: Int) async throws {
        for _ in 0..<500 {
            if fs.lock.withLock({ fs.torrents[hash]?.metadataWaiters.count }) == count { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw FSError(ETIMEDOUT)
    }
}

/// A read's reply, awaitable once.
final class CapturedRead: ReadReply, @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<[UInt8], FSError>?
    private var waiter: CheckedContinuation<Result<[UInt8], FSError>, Never>?
    private(set) var replies = 0

    func data(_ bytes: UnsafeRawBufferPointer) { finish(.success(Array(bytes))) }
    func error(_ code: Int32) { finish(.failure(FSError(code))) }

    private func finish(_ value: Result<[UInt8], FSError>) {
        let waiter = lock.withLock { () -> CheckedContinuation<Result<[UInt8], FSError>, Never>? in
            replies += 1
            result = value
            let waiter = self.waiter
            self.waiter = nil
            return waiter
        }
        waiter?.resume(returning: value)
    }

    var isAnswered: Bool { lock.withLock { result != nil } }

    func value() async -> Result<[UInt8], FSError> {
        await withCheckedContinuation { continuation in
            let ready = lock.withLock { () -> Result<[UInt8], FSError>? in
                if let result { return result }
                waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// Polls `condition` every 20 ms for up to `seconds`.
func eventually(_ seconds: Double = 10, _ condition: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}
