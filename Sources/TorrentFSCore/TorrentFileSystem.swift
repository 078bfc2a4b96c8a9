import BitTorrent
import Foundation
import Logging
import TorrentEngine
#if canImport(Glibc)
import Glibc
#endif

/// Everything the filesystem does, independent of FUSE: the inode table, the folder tree
/// of each torrent, the control files, attributes, xattrs, errno mapping, persistence of
/// what is mounted. File reads go through the engine's streaming readers (one per open
/// handle); this type only parks their answers until FUSE can take them.
///
/// Thread-safe: FUSE threads, the engine's thread (observer events) and the I/O queue all
/// call in; one lock guards the tables and is never held across I/O or a reply.
public final class TorrentFileSystem: SessionObserver, @unchecked Sendable {
    public static let rootInode: UInt64 = 1
    public static let addInode: UInt64 = 2
    public static let statusInode: UInt64 = 3
    public static let addName = ".add"
    public static let statusName = ".status"
    /// Attribute names offered on torrent folders and files.
    public static let xattrNames = ["user.torrentfs.progress", "user.torrentfs.infohash",
                                    "user.torrentfs.magnet", "user.torrentfs.peers"]
    /// Most `.add` errors kept for `.status`.
    static let maxAddErrors = 20

    public let session: Session
    public let options: MountOptions
    let logger: Logger
    let library: Library
    let mountTime = Int64(Date().timeIntervalSince1970)
    let lock = NSLock()
    let io = DispatchQueue(label: "torrentfs.io", attributes: .concurrent)

    // Guarded by `lock`.
    var nodes: [UInt64: Node] = [TorrentFileSystem.rootInode: .root, TorrentFileSystem.addInode: .add,
                                             TorrentFileSystem.statusInode: .status]
    var torrents: [InfoHash: Mounted] = [:]
    var nextID: UInt64 = 16
    var handles: [UInt64: Handle] = [:]
    /// Reads waiting for pieces, by FUSE request.
    var pending: [UInt64: ParkedRead] = [:]
    var addErrors: [StatusDocument.RefusedInput] = []
    var closed = false

    enum Node {
        case root, add, status
        case folder(InfoHash)
        case directory(InfoHash, path: [String])
        case file(InfoHash, index: Int)
    }

    enum Handle {
        case add(AddBuffer)
        case status([UInt8])
        case reader(TorrentReader)
    }

    final class AddBuffer {
        var bytes: [UInt8] = []
        var failure: AddError?
    }

    /// A torrent shown in the mount.
    final class Mounted {
        let hash: InfoHash
        let folderInode: UInt64
        var folderName: String
        var magnet: MagnetLink
        var metainfo: Metainfo?
        /// Directory inode → child name → inode.
        var children: [UInt64: [String: UInt64]] = [:]
        /// Inode of each visible file, by index into `info.files`.
        var fileInodes: [Int: UInt64] = [:]
        var metadataWaiters: [UInt64: @Sendable (Int32?) -> Void] = [:]
        /// Set through the folder's extended attributes.
        var settings = TorrentSettings()

        init(hash: InfoHash, folderInode: UInt64, folderName: String, magnet: MagnetLink) {
            self.hash = hash
            self.folderInode = folderInode
            self.folderName = folderName
            self.magnet = magnet
        }
    }

    public init(session: Session, options: MountOptions, logger: Logger) {
        self.session = session
        self.options = options
        self.logger = logger
        library = Library(directory: options.dataDirectory + "/torrents")
    }

    // MARK: Start and stop

    /// Starts the engine and brings back every torrent mounted before.
    public func start() async throws {
        try PosixFile.makeDirectories(options.dataDirectory)
        await session.addObserver(self)
        _ = try await session.start()
        let (sources, errors) = library.load()
        for error in errors { logger.error("cannot load a saved torrent", metadata: ["error": "\(error)"]) }
        for source in sources {
            do {
                try await add(source, persist: false)
            } catch {
                logger.error("cannot restore torrent", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Answers every waiting request (EIO) and refuses new ones. The engine is shut down
    /// by its owner afterwards.
    public func close() {
        let (reads, waiters) = lock.withLock { () -> ([ParkedRead], [@Sendable (Int32?) -> Void]) in
            closed = true
            let reads = Array(pending.values)
            var waiters: [@Sendable (Int32?) -> Void] = []
            for mounted in torrents.values {
                waiters += mounted.metadataWaiters.values
                mounted.metadataWaiters = [:]
            }
            return (reads, waiters)
        }
        for read in reads { read.cancel(.shutDown) }
        for waiter in waiters { waiter(EIO) }
    }

    // MARK: Adding

    /// Adds a torrent (or merges trackers and peers into one already mounted).
    func add(_ source: TorrentSource, persist: Bool, torrentBytes: [UInt8]? = nil) async throws {
        let hash = source.infoHash
        let saved = library.settings(hash) ?? TorrentSettings()
        let isNew = lock.withLock { () -> Bool in
            if let existing = torrents[hash] {
                // A .torrent for a magnet still waiting for its metadata: the tree appears now.
                if case .metainfo(let metainfo) = source, existing.metainfo == nil { metadataKnown(existing, metainfo) }
                return false
            }
            let magnet: MagnetLink
            switch source {
            case .magnet(let link): magnet = link
            case .metainfo(let metainfo): magnet = MagnetLink(metainfo: metainfo)
            }
            let mounted = Mounted(hash: hash, folderInode: makeID(), folderName: "", magnet: magnet)
            mounted.settings = saved
            mounted.folderName = uniqueFolderName(magnet.displayName ?? hash.hex, except: nil)
            torrents[hash] = mounted
            nodes[mounted.folderInode] = .folder(hash)
            if case .metainfo(let metainfo) = source { metadataKnown(mounted, metainfo) }
            return true
        }
        var torrentOptions = TorrentOptions()
        torrentOptions.dataDirectory = dataDirectory(for: hash)
        if !(saved.fetchAll ?? options.fetchAll) { torrentOptions.selectedFiles = [] }
        torrentOptions.downloadLimit = saved.downloadLimit
        torrentOptions.seedRatio = options.seedRatio
        if persist {
            switch source {
            case .magnet(let magnet):
                if isNew { try? library.saveMagnet(magnet) }
            case .metainfo(let metainfo):
                if isNew || !FileManager.default.fileExists(atPath: library.directory + "/\(hash.hex).torrent") {
                    try? library.saveTorrent(torrentBytes ?? Library.torrentBytes(metainfo), for: hash)
                }
            }
        }
        do {
            try await session.add(source, options: torrentOptions)
        } catch {
            if isNew { forget(hash) }
            throw error
        }
        logger.info(isNew ? "torrent added" : "torrent merged", metadata: ["infohash": "\(hash.hex)"])
    }

    func dataDirectory(for hash: InfoHash) -> String { options.dataDirectory + "/data/" + hash.hex }

    func forget(_ hash: InfoHash) {
        lock.withLock {
            guard let mounted = torrents.removeValue(forKey: hash) else { return }
            nodes[mounted.folderInode] = nil
            for inode in mounted.children.keys { nodes[inode] = nil }
            for inode in mounted.fileInodes.values { nodes[inode] = nil }
        }
    }

    func makeID() -> UInt64 {
        nextID += 1
        return nextID
    }

    /// A root folder name not used by another torrent (lock held).
    func uniqueFolderName(_ wanted: String, except: InfoHash?) -> String {
        var base = String(wanted.map { $0 == "/" || $0 == "\0" ? "_" : $0 })
        if base.isEmpty || base == "." || base == ".." || base == Self.addName || base == Self.statusName {
            base = "_" + base
        }
        while base.utf8.count > 240 { base.removeLast() }
        let taken = Set(torrents.values.filter { $0.hash != except }.map(\.folderName))
        var name = base
        var number = 2
        while taken.contains(name) {
            name = "\(base) (\(number))"
            number += 1
        }
        return name
    }

    /// Builds the folder tree once the metadata is known (lock held).
    func metadataKnown(_ mounted: Mounted, _ metainfo: Metainfo) {
        guard mounted.metainfo == nil else { return }
        mounted.metainfo = metainfo
        mounted.folderName = uniqueFolderName(metainfo.info.name, except: mounted.hash)
        mounted.children[mounted.folderInode] = [:]
        var directories: [[String]: UInt64] = [[]: mounted.folderInode]
        for (index, file) in metainfo.info.files.enumerated() where !file.isPadding {
            // A single-file torrent's folder holds that one file, under the torrent's name.
            let path = metainfo.info.isSingleFile ? [metainfo.info.name] : file.path
            var parent = mounted.folderInode
            for depth in 1..<path.count {
                let prefix = Array(path[..<depth])
                if let existing = directories[prefix] {
                    parent = existing
                    continue
                }
                let inode = makeID()
                nodes[inode] = .directory(mounted.hash, path: prefix)
                mounted.children[inode] = [:]
                mounted.children[parent, default: [:]][prefix.last!] = inode
                directories[prefix] = inode
                parent = inode
            }
            let inode = makeID()
            nodes[inode] = .file(mounted.hash, index: index)
            mounted.fileInodes[index] = inode
            mounted.children[parent, default: [:]][path.last!] = inode
        }
    }

    // MARK: SessionObserver (engine thread)

    public func metadataReceived(_ infoHash: InfoHash, metainfo: Metainfo) {
        let waiters = lock.withLock { () -> [@Sendable (Int32?) -> Void] in
            guard let mounted = torrents[infoHash] else { return [] }
            metadataKnown(mounted, metainfo)
            let waiters = Array(mounted.metadataWaiters.values)
            mounted.metadataWaiters = [:]
            return waiters
        }
        let library = library
        let logger = logger
        io.async {
            do {
                try library.saveTorrent(Library.torrentBytes(metainfo), for: infoHash)
            } catch {
                logger.error("cannot save metadata", metadata: ["error": "\(error)"])
            }
        }
        for waiter in waiters { waiter(nil) }
    }

    // MARK: Attributes and listings

    public func getattr(_ inode: UInt64) -> Result<NodeAttributes, FSError> {
        lock.withLock { attributes(inode) }
    }

    func attributes(_ inode: UInt64) -> Result<NodeAttributes, FSError> {
        guard let node = nodes[inode] else { return .failure(FSError(ENOENT)) }
        func directory(links: Int) -> NodeAttributes {
            NodeAttributes(inode: inode, isDirectory: true, permissions: 0o555, size: 4096, allocated: 0,
                           links: UInt32(2 + links), modified: mountTime)
        }
        switch node {
        case .root:
            return .success(directory(links: torrents.count))
        case .add:
            return .success(NodeAttributes(inode: inode, isDirectory: false, permissions: 0o644, size: 0, allocated: 0,
                                           links: 1, modified: mountTime))
        case .status:
            return .success(NodeAttributes(inode: inode, isDirectory: false, permissions: 0o444, size: 0, allocated: 0,
                                           links: 1, modified: Int64(Date().timeIntervalSince1970)))
        case .folder(let hash), .directory(let hash, _):
            guard let mounted = torrents[hash] else { return .failure(FSError(ENOENT)) }
            let subfolders = (mounted.children[inode] ?? [:]).values.filter {
                if case .directory = nodes[$0] { return true } else { return false }
            }.count
            return .success(directory(links: subfolders))
        case .file(let hash, let index):
            guard let mounted = torrents[hash], let info = mounted.metainfo?.info else { return .failure(FSError(ENOENT)) }
            let file = info.files[index]
            let verified = session.verifiedBytes(hash, in: file.byteRange)
            return .success(NodeAttributes(inode: inode, isDirectory: false, permissions: 0o444, size: file.length,
                                           allocated: verified, links: 1, modified: mountTime))
        }
    }

    /// Finds `name` in a folder. Inside a torrent whose metadata is still unknown, the
    /// answer waits for it (up to `metadataTimeout`, then EAGAIN) without holding a thread.
    public func lookup(parent: UInt64, name: String, reply: @escaping @Sendable (Result<NodeAttributes, FSError>) -> Void) {
        let result = lock.withLock { () -> Result<NodeAttributes, FSError>? in
            switch nodes[parent] {
            case .root:
                if name == Self.addName { return attributes(Self.addInode) }
                if name == Self.statusName { return attributes(Self.statusInode) }
                guard let mounted = torrents.values.first(where: { $0.folderName == name }) else { return .failure(FSError(ENOENT)) }
                return attributes(mounted.folderInode)
            case .folder(let hash), .directory(let hash, _):
                guard let mounted = torrents[hash] else { return .failure(FSError(ENOENT)) }
                guard mounted.metainfo != nil else {
                    waitForMetadata(mounted, failing: reply) { $0.lookup(parent: parent, name: name, reply: reply) }
                    return nil
                }
                guard let inode = mounted.children[parent]?[name] else { return .failure(FSError(ENOENT)) }
                return attributes(inode)
            case .add, .status, .file:
                return .failure(FSError(ENOTDIR))
            case nil:
                return .failure(FSError(ENOENT))
            }
        }
        if let result { reply(result) }
    }

    /// Runs `retry` once the metadata is known, or fails `reply` (EAGAIN after the timeout,
    /// EIO after an unmount, ENOENT once the torrent is removed); lock held.
    func waitForMetadata<T>(_ mounted: Mounted, failing reply: @escaping @Sendable (Result<T, FSError>) -> Void,
                                    retry: @escaping @Sendable (TorrentFileSystem) -> Void) {
        waitForMetadata(mounted) { [weak self] failure in
            guard let self else { return reply(.failure(FSError(EIO))) }
            if let failure { return reply(.failure(FSError(failure))) }
            retry(self)
        }
    }

    /// Registers a metadata waiter with a timeout (lock held).
    func waitForMetadata(_ mounted: Mounted, _ done: @escaping @Sendable (Int32?) -> Void) {
        if closed { return done(EIO) }
        let id = makeID()
        mounted.metadataWaiters[id] = done
        let hash = mounted.hash
        io.asyncAfter(deadline: .now() + options.metadataTimeout) { [weak self] in
            guard let self else { return }
            let waiter = self.lock.withLock { self.torrents[hash]?.metadataWaiters.removeValue(forKey: id) }
            waiter?(EAGAIN)
        }
    }

    /// Lists a folder: the mount root never waits; a torrent folder waits for its metadata.
    public func readdir(_ inode: UInt64, reply: @escaping @Sendable (Result<[DirectoryEntry], FSError>) -> Void) {
        let result = lock.withLock { () -> Result<[DirectoryEntry], FSError>? in
            switch nodes[inode] {
            case .root:
                var entries = [DirectoryEntry(name: ".", inode: inode, isDirectory: true),
                               DirectoryEntry(name: "..", inode: inode, isDirectory: true),
                               DirectoryEntry(name: Self.addName, inode: Self.addInode, isDirectory: false),
                               DirectoryEntry(name: Self.statusName, inode: Self.statusInode, isDirectory: false)]
                entries += torrents.values.sorted { $0.folderName < $1.folderName }.map {
                    DirectoryEntry(name: $0.folderName, inode: $0.folderInode, isDirectory: true)
                }
                return .success(entries)
            case .folder(let hash), .directory(let hash, _):
                guard let mounted = torrents[hash] else { return .failure(FSError(ENOENT)) }
                guard mounted.metainfo != nil else {
                    waitForMetadata(mounted, failing: reply) { $0.readdir(inode, reply: reply) }
                    return nil
                }
                var entries = [DirectoryEntry(name: ".", inode: inode, isDirectory: true),
                               DirectoryEntry(name: "..", inode: Self.rootInode, isDirectory: true)]
                for (name, child) in (mounted.children[inode] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    var isDirectory = false
                    if case .directory = nodes[child] { isDirectory = true }
                    entries.append(DirectoryEntry(name: name, inode: child, isDirectory: isDirectory))
                }
                return .success(entries)
            case .add, .status, .file:
                return .failure(FSError(ENOTDIR))
            case nil:
                return .failure(FSError(ENOENT))
            }
        }
        if let result { reply(result) }
    }

    // MARK: Opening

    /// Opens a file. `.status` takes its snapshot here, so its reply may come later.
    public func open(_ inode: UInt64, flags: Int32, reply: @escaping @Sendable (Result<OpenResult, FSError>) -> Void) {
        let writing = (flags & O_ACCMODE) != O_RDONLY
        let result = lock.withLock { () -> Result<OpenResult, FSError>? in
            switch nodes[inode] {
            case .add:
                let id = makeID()
                handles[id] = .add(AddBuffer())
                return .success(OpenResult(handle: id, keepCache: false, directIO: true))
            case .status:
                if writing { return .failure(FSError(EACCES)) }
                return nil
            case .file(let hash, let index):
                if writing { return .failure(FSError(EACCES)) }
                guard let info = torrents[hash]?.metainfo?.info else { return .failure(FSError(ENOENT)) }
                var readerOptions = ReaderOptions()
                readerOptions.maximumWindow = options.effectiveReadahead
                readerOptions.timeout = options.readTimeout
                let id = makeID()
                handles[id] = .reader(session.openReader(hash, info: info, fileIndex: index, options: readerOptions))
                return .success(OpenResult(handle: id, keepCache: true, directIO: false))
            case .root, .folder, .directory:
                return .failure(FSError(EISDIR))
            case nil:
                return .failure(FSError(ENOENT))
            }
        }
        if let result { return reply(result) }
        // `.status`: a snapshot from the engine's thread, answered from there.
        session.withStatus { [weak self] status in
            guard let self else { return reply(.failure(FSError(EIO))) }
            let document = self.statusDocument(status)
            let id = self.lock.withLock { () -> UInt64 in
                let id = self.makeID()
                self.handles[id] = .status(document)
                return id
            }
            reply(.success(OpenResult(handle: id, keepCache: false, directIO: true)))
        }
    }

    public func release(_ handle: UInt64) {
        let removed = lock.withLock { handles.removeValue(forKey: handle) }
        if case .reader(let reader) = removed { reader.close() }
    }

    // MARK: Reading

    /// Serves a read: at once when its pieces are verified, otherwise after they are
    /// (`.pending`; the caller then calls `activate`). `request` identifies the read for
    /// `interrupt`.
    public func read(handle: UInt64, offset: Int64, size: Int, request: UInt64, reply: ReadReply) -> ReadStart {
        enum Plan {
            case fail(Int32)
            case bytes([UInt8])
            case stream(TorrentReader, ParkedRead)
        }
        let plan = lock.withLock { () -> Plan in
            guard !closed else { return .fail(EIO) }
            switch handles[handle] {
            case .status(let document):
                guard offset < document.count else { return .bytes([]) }
                let start = Int(offset)
                return .bytes(Array(document[start..<min(document.count, start + size)]))
            case .add:
                return .bytes([])  // write-only in spirit: reads see an empty file
            case .reader(let reader):
                let parked = ParkedRead(request: request, hash: reader.infoHash, reader: reader, reply: reply) {
                    [weak self] request in
                    _ = self?.lock.withLock { self?.pending.removeValue(forKey: request) }
                }
                pending[request] = parked
                return .stream(reader, parked)
            case nil:
                return .fail(EBADF)
            }
        }
        switch plan {
        case .fail(let code):
            reply.error(code)
        case .bytes(let bytes):
            bytes.withUnsafeBytes { reply.data($0) }
        case .stream(let reader, let parked):
            if case .pending(let id) = reader.read(offset: offset, size: size, sink: parked) {
                parked.started(id)
                return .pending
            }
            // Answered already (verified data, or an error): nothing to interrupt.
            parked.activate()
        }
        return .done
    }

    /// Called after `read` returned `.pending`, once `interrupt` can be called for it.
    public func activate(_ request: UInt64) {
        lock.withLock { pending[request] }?.activate()
    }

    /// The reader gave up (Ctrl-C): its read fails with EINTR.
    public func interrupt(_ request: UInt64) {
        lock.withLock { pending[request] }?.cancel(.cancelled)
    }

    // MARK: Removing

    /// `rmdir` of a torrent folder in the mount root removes the torrent.
    public func rmdir(parent: UInt64, name: String, reply: @escaping @Sendable (Int32) -> Void) {
        let removed = lock.withLock { () -> (Mounted, [ParkedRead], [@Sendable (Int32?) -> Void])? in
            guard case .root = nodes[parent] else { return nil }
            guard let mounted = torrents.values.first(where: { $0.folderName == name }) else { return nil }
            torrents[mounted.hash] = nil
            nodes[mounted.folderInode] = nil
            for inode in mounted.children.keys { nodes[inode] = nil }
            for inode in mounted.fileInodes.values { nodes[inode] = nil }
            let reads = pending.values.filter { $0.hash == mounted.hash }
            let waiters = Array(mounted.metadataWaiters.values)
            mounted.metadataWaiters = [:]
            return (mounted, reads, waiters)
        }
        guard let (mounted, reads, waiters) = removed else {
            let code = lock.withLock { () -> Int32 in
                if case .root = nodes[parent] {
                    return [Self.addName, Self.statusName].contains(name) ? ENOTDIR : ENOENT
                }
                return nodes[parent] == nil ? ENOENT : EROFS
            }
            return reply(code)
        }
        for read in reads { read.cancel(.removed) }
        for waiter in waiters { waiter(ENOENT) }  // the folder is gone
        library.remove(mounted.hash)
        let deleteData = options.removeData
        let directory = dataDirectory(for: mounted.hash)
        let session = session
        let logger = logger
        Task.detached {
            await session.remove(mounted.hash, deleteData: deleteData)
            // The engine deleted the files and their folders; their torrent's folder is left.
            if deleteData { _ = Glibc.rmdir(directory) }
            logger.info("torrent removed", metadata: ["infohash": "\(mounted.hash.hex)", "dataDeleted": "\(deleteData)"])
            reply(0)
        }
    }

    /// Any other change to the tree is refused: the filesystem is read-only.
    public func refuseChange(parent: UInt64) -> Int32 {
        lock.withLock { nodes[parent] == nil ? ENOENT : EROFS }
    }
}
