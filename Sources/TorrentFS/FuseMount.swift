import CFuse
import Foundation
import Logging
import Synchronization
import TorrentFSCore
#if canImport(Glibc)
import Glibc
#endif

/// The libfuse low-level adapter: the ops table, asynchronous replies, mounting and
/// unmounting. Every decision is `TorrentFileSystem`'s; this file only translates.
public final class FuseMount: @unchecked Sendable {
    public let fileSystem: TorrentFileSystem
    public let mountpoint: String
    let logger: Logger
    private var session: OpaquePointer?
    /// Replies owed to the kernel; the session is destroyed only once this is zero.
    private let owed = Mutex(0)
    private let nextRequest = Atomic<UInt64>(1)
    /// The mount's device number (to find it in /proc/self/mountinfo and /sys/fs/fuse).
    public private(set) var device: UInt64 = 0
    private let loopDone = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    /// When the last read arrived (monotonic nanoseconds), to let a teardown wait for quiet.
    private let lastRead = Atomic<UInt64>(0)

    /// Largest read and write the kernel sends (and its readahead).
    static let maxIO = 1 << 20
    static let attributeTimeout = 1.0

    public init(fileSystem: TorrentFileSystem, mountpoint: String, logger: Logger) {
        self.fileSystem = fileSystem
        self.mountpoint = mountpoint
        self.logger = logger
    }

    /// Creates the session, mounts it and starts the loop; the mount is live when this returns.
    public func mount(allowOther: Bool, debug: Bool) throws {
        FuseMount.routeLibfuseLogs(to: logger)
        var options = "fsname=torrentfs,subtype=torrentfs,default_permissions,max_read=\(Self.maxIO)"
        if allowOther { options += ",allow_other" }
        var arguments = ["torrentfs", "-o", options]
        if debug && ProcessInfo.processInfo.environment["TORRENTFS_FUSE_DEBUG"] != nil { arguments.append("-d") }
        var args = fuse_args(argc: 0, argv: nil, allocated: 0)
        for argument in arguments { fuse_opt_add_arg(&args, argument) }
        defer { fuse_opt_free_args(&args) }
        var ops = FuseMount.operations()
        let userdata = Unmanaged.passUnretained(self).toOpaque()
        guard let session = fuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, userdata) else {
            throw FuseError("cannot create the FUSE session (options \(options))")
        }
        guard fuse_session_mount(session, mountpoint) == 0 else {
            fuse_session_destroy(session)
            throw FuseError("cannot mount at \(mountpoint) (is /dev/fuse there, and the folder empty and not mounted?)")
        }
        self.session = session
        startLoop()
        // Only now: a stat of the mount point is a request the loop has to answer.
        var info = Glibc.stat()
        if lstat(mountpoint, &info) == 0 { device = UInt64(info.st_dev) }
        setKernelReadahead()
    }

    /// The kernel's readahead for this mount, raised to 1 MiB (only settable once mounted).
    private func setKernelReadahead() {
        let path = "/sys/class/bdi/\(major(device)):\(minor(device))/read_ahead_kb"
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        let text = "\(Self.maxIO / 1024)"
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        Glibc.close(fd)
    }

    private func major(_ device: UInt64) -> UInt64 { ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff) }
    private func minor(_ device: UInt64) -> UInt64 { (device & 0xff) | ((device >> 12) & ~0xff) }

    /// Runs the session loop on its own threads; returns at once.
    private func startLoop() {
        guard let session else { return }
        let box = SessionBox(session: session)
        let thread = Thread { [loopDone] in
            _ = cfuse_session_loop_mt(box.session, 8)
            loopDone.signal()
        }
        thread.name = "fuse-loop"
        thread.start()
    }

    /// True while the mount is still in the mount table (a lazy unmount removes it there
    /// while open files keep the connection alive).
    public var isMounted: Bool {
        guard let table = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return true }
        let wanted = "\(major(device)):\(minor(device))"
        return table.split(separator: "\n").contains { $0.split(separator: " ").dropFirst(2).first.map(String.init) == wanted }
    }

    /// Waits for the loop to end by itself (an unmount) for up to `seconds`.
    public func waitForLoop(seconds: Double) -> Bool {
        guard loopDone.wait(timeout: .now() + seconds) == .success else { return false }
        loopDone.signal()  // stays signalled for later waits
        return true
    }

    /// Unmounts and tears down: waiting reads get EIO, the loop stops, every reply owed
    /// is sent, then the session is destroyed. Safe to call once the loop ended too.
    public func shutdown() {
        guard !stopping.exchange(true, ordering: .relaxed), let session else { return }
        fileSystem.close()
        // Keep answering (EIO) until reads stop coming: the kernel retries a page whose read
        // failed with a read of its own, and a request left unread when the loop stops is
        // aborted (ECONNABORTED) instead of failing with EIO. A reader that gives up and
        // closes its file also lets a lazily unmounted connection end by itself.
        let started = DispatchTime.now().uptimeNanoseconds
        while !waitForLoop(seconds: 0.02) {
            let now = DispatchTime.now().uptimeNanoseconds
            let quiet = now - max(lastRead.load(ordering: .relaxed), started) > 300_000_000
            if quiet || now - started > 2_000_000_000 { break }
        }
        fuse_session_exit(session)
        var unmounted = false
        if geteuid() == 0 {
            umount2(mountpoint, Int32(MNT_DETACH))  // wakes the loop; the descriptor stays open
        } else {
            fuse_session_unmount(session)  // through fusermount3 (lazy); closes the descriptor
            unmounted = true
        }
        if !waitForLoop(seconds: 3) {
            // Open files keep a lazily unmounted connection alive: abort it.
            abortConnection()
            if !waitForLoop(seconds: 3) { logger.warning("the FUSE loop did not stop") }
        }
        let deadline = Date().addingTimeInterval(5)
        while owed.withLock({ $0 }) > 0 && Date() < deadline { usleep(10_000) }
        if !unmounted { fuse_session_unmount(session) }
        fuse_session_destroy(session)
        self.session = nil
    }

    /// libfuse's own messages go to our log (debug level; errors as warnings). The one it
    /// prints when the mount point was already detached (by us, or a lazy unmount) is noise.
    static func routeLibfuseLogs(to logger: Logger) {
        libfuseLogger.withLock { $0 = logger }
        fuse_set_log_func { level, format, arguments in
            guard let format, let arguments else { return }
            var buffer = [CChar](repeating: 0, count: 1024)
            _ = vsnprintf(&buffer, buffer.count, format, arguments)
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard let logger = FuseMount.libfuseLogger.withLock({ $0 }) else { return }
            if level.rawValue <= FUSE_LOG_ERR.rawValue && !text.contains("failed to unmount") {
                logger.warning("libfuse", metadata: ["message": "\(text)"])
            } else {
                logger.debug("libfuse", metadata: ["message": "\(text)"])
            }
        }
    }

    static let libfuseLogger = Mutex<Logger?>(nil)

    private func abortConnection() {
        let fd = Glibc.open("/sys/fs/fuse/connections/\(minor(device))/abort", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = Glibc.write(fd, "1", 1)
        Glibc.close(fd)
    }

    // MARK: Replies

    /// The errno table: what the filesystem answers with. Anything else is a bug or an
    /// unexpected system error; it is logged and the kernel gets EIO.
    static let answered: Set<Int32> = [0, ENOENT, ENOTDIR, EISDIR, EROFS, EACCES, EINVAL, EINTR, EIO, EAGAIN, EBADF,
                                       ENODATA, ERANGE, EPERM, ENOTSUP, EEXIST, ENOTEMPTY, EBUSY]

    func errno(_ code: Int32) -> Int32 {
        if FuseMount.answered.contains(code) { return code }
        logger.error("unexpected error code, answered EIO", metadata: ["errno": "\(code)"])
        return EIO
    }

    /// Refuses a change to the tree (read-only filesystem).
    func refuse(_ request: fuse_req_t?, parent: fuse_ino_t) {
        fuse_reply_err(request, errno(fileSystem.refuseChange(parent: parent)))
    }

    func owe() { owed.withLock { $0 += 1 } }
    func paid() { owed.withLock { $0 -= 1 } }

    func makeRequestID() -> UInt64 { nextRequest.wrappingAdd(1, ordering: .relaxed).oldValue }

    static func instance(_ request: fuse_req_t?) -> FuseMount {
        Unmanaged<FuseMount>.fromOpaque(fuse_req_userdata(request)!).takeUnretainedValue()
    }

    static func stat(_ attributes: NodeAttributes) -> stat {
        var info = Glibc.stat()
        info.st_ino = UInt(attributes.inode)
        info.st_mode = (attributes.isDirectory ? S_IFDIR : S_IFREG) | attributes.permissions
        info.st_nlink = UInt(attributes.links)
        info.st_size = Int(attributes.size)
        info.st_blocks = Int((attributes.allocated + 511) / 512)
        info.st_blksize = 128 * 1024
        info.st_uid = getuid()
        info.st_gid = getgid()
        info.st_mtim.tv_sec = Int(attributes.modified)
        info.st_ctim.tv_sec = Int(attributes.modified)
        info.st_atim.tv_sec = Int(attributes.modified)
        return info
    }

    func replyEntry(_ request: Request, _ result: Result<NodeAttributes, FSError>) {
        switch result {
        case .success(let attributes):
            var entry = fuse_entry_param()
            entry.ino = attributes.inode
            entry.generation = 1
            entry.attr = FuseMount.stat(attributes)
            entry.attr_timeout = FuseMount.attributeTimeout
            entry.entry_timeout = FuseMount.attributeTimeout
            fuse_reply_entry(request.raw, &entry)
        case .failure(let error):
            fuse_reply_err(request.raw, errno(error.code))
        }
    }

    func replyAttributes(_ request: Request, _ result: Result<NodeAttributes, FSError>) {
        switch result {
        case .success(let attributes):
            var info = FuseMount.stat(attributes)
            // `.status` changes all the time; torrent files only grow in st_blocks.
            fuse_reply_attr(request.raw, &info, attributes.inode == TorrentFileSystem.statusInode ? 0 : FuseMount.attributeTimeout)
        case .failure(let error):
            fuse_reply_err(request.raw, errno(error.code))
        }
    }

    /// Builds the ops table: non-capturing C callbacks that find `self` through the
    /// session's userdata.
    static func operations() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.`init` = { _, connection in
            guard let connection else { return }
            connection.pointee.max_read = UInt32(FuseMount.maxIO)
            connection.pointee.max_readahead = UInt32(FuseMount.maxIO)
            // Synchronous reads: the kernel sends page-cache readahead as background
            // requests otherwise, and a reader waiting on those cannot be interrupted
            // (Ctrl-C) and sees ECONNABORTED instead of EIO at an unmount.
            connection.pointee.want &= ~UInt32(FUSE_CAP_ASYNC_READ)
        }
        ops.lookup = { request, parent, name in
            let mount = FuseMount.instance(request)
            let box = Request(raw: request!)
            mount.owe()
            mount.fileSystem.lookup(parent: parent, name: String(cString: name!)) { result in
                mount.replyEntry(box, result)
                mount.paid()
            }
        }
        ops.forget = { request, _, _ in fuse_reply_none(request) }
        ops.forget_multi = { request, _, _ in fuse_reply_none(request) }
        ops.getattr = { request, inode, _ in
            let mount = FuseMount.instance(request)
            mount.replyAttributes(Request(raw: request!), mount.fileSystem.getattr(inode))
        }
        ops.setattr = { request, inode, _, toSet, _ in
            let mount = FuseMount.instance(request)
            // Only truncating `.add` is allowed (shells do it before writing).
            let onlySize = toSet & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                                     FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME) == 0
            guard onlySize else {
                fuse_reply_err(request, EROFS)
                return
            }
            mount.replyAttributes(Request(raw: request!), mount.fileSystem.setattr(inode, size: 0))
        }
        ops.opendir = { request, inode, info in
            let mount = FuseMount.instance(request)
            switch mount.fileSystem.getattr(inode) {
            case .success(let attributes) where attributes.isDirectory: fuse_reply_open(request, info)
            case .success: fuse_reply_err(request, ENOTDIR)
            case .failure(let error): fuse_reply_err(request, mount.errno(error.code))
            }
        }
        ops.releasedir = { request, _, _ in fuse_reply_err(request, 0) }
        ops.readdir = { request, inode, size, offset, _ in
            let mount = FuseMount.instance(request)
            let box = Request(raw: request!)
            mount.owe()
            mount.fileSystem.readdir(inode) { result in
                defer { mount.paid() }
                switch result {
                case .failure(let error):
                    fuse_reply_err(box.raw, mount.errno(error.code))
                case .success(let entries):
                    var buffer = [CChar](repeating: 0, count: size)
                    var used = 0
                    var index = Int(offset)
                    while index < entries.count {
                        let entry = entries[index]
                        var info = Glibc.stat()
                        info.st_ino = UInt(entry.inode)
                        info.st_mode = entry.isDirectory ? S_IFDIR : S_IFREG
                        let needed = buffer.withUnsafeMutableBufferPointer { raw in
                            fuse_add_direntry(box.raw, raw.baseAddress! + used, size - used, entry.name, &info, off_t(index + 1))
                        }
                        if used + needed > size { break }
                        used += needed
                        index += 1
                    }
                    fuse_reply_buf(box.raw, buffer, used)
                }
            }
        }
        ops.open = { request, inode, info in
            let mount = FuseMount.instance(request)
            let box = Request(raw: request!)
            let copy = FileInfo(value: info!.pointee)
            mount.owe()
            mount.fileSystem.open(inode, flags: cfuse_flags(info)) { result in
                defer { mount.paid() }
                switch result {
                case .success(let opened):
                    var value = copy.value
                    cfuse_set_fh(&value, opened.handle)
                    if opened.keepCache { cfuse_set_keep_cache(&value) }
                    if opened.directIO { cfuse_set_direct_io(&value) }
                    if fuse_reply_open(box.raw, &value) != 0 { mount.fileSystem.release(opened.handle) }
                case .failure(let error):
                    fuse_reply_err(box.raw, mount.errno(error.code))
                }
            }
        }
        ops.read = { request, _, size, offset, info in
            let mount = FuseMount.instance(request)
            mount.lastRead.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
            let id = mount.makeRequestID()
            let reply = FuseReadReply(request: Request(raw: request!), mount: mount)
            mount.owe()
            let start = mount.fileSystem.read(handle: cfuse_fh(info), offset: Int64(offset), size: size,
                                              request: id, reply: reply)
            if start == .pending {
                fuse_req_interrupt_func(request, { interrupted, data in
                    guard let data else { return }
                    // The read's id travels as the callback's data pointer.
                    FuseMount.instance(interrupted).fileSystem.interrupt(UInt64(UInt(bitPattern: data)))
                }, UnsafeMutableRawPointer(bitPattern: UInt(id)))
                mount.fileSystem.activate(id)
            }
        }
        ops.write = { request, _, buffer, size, _, info in
            let mount = FuseMount.instance(request)
            let bytes = UnsafeRawBufferPointer(start: buffer, count: size)
            switch mount.fileSystem.write(handle: cfuse_fh(info), bytes: bytes) {
            case .success(let count): fuse_reply_write(request, count)
            case .failure(let error): fuse_reply_err(request, mount.errno(error.code))
            }
        }
        ops.flush = { request, _, info in
            let mount = FuseMount.instance(request)
            let box = Request(raw: request!)
            mount.owe()
            mount.fileSystem.flush(handle: cfuse_fh(info)) { code in
                fuse_reply_err(box.raw, mount.errno(code))
                mount.paid()
            }
        }
        ops.release = { request, _, info in
            FuseMount.instance(request).fileSystem.release(cfuse_fh(info))
            fuse_reply_err(request, 0)
        }
        ops.rmdir = { request, parent, name in
            let mount = FuseMount.instance(request)
            let box = Request(raw: request!)
            mount.owe()
            mount.fileSystem.rmdir(parent: parent, name: String(cString: name!)) { code in
                fuse_reply_err(box.raw, mount.errno(code))
                mount.paid()
            }
        }
        ops.mkdir = { request, parent, _, _ in
            FuseMount.instance(request).refuse(request, parent: parent)
        }
        ops.mknod = { request, parent, _, _, _ in
            FuseMount.instance(request).refuse(request, parent: parent)
        }
        ops.create = { request, parent, _, _, _ in
            FuseMount.instance(request).refuse(request, parent: parent)
        }
        ops.unlink = { request, parent, _ in
            FuseMount.instance(request).refuse(request, parent: parent)
        }
        ops.rename = { request, parent, _, _, _, _ in
            FuseMount.instance(request).refuse(request, parent: parent)
        }
        ops.symlink = { request, _, parent, _ in
            FuseMount.instance(request).refuse(request, parent: parent)
        }
        ops.link = { request, _, parent, _ in
            FuseMount.instance(request).refuse(request, parent: parent)
        }
        ops.setxattr = { request, inode, name, value, size, flags in
            let mount = FuseMount.instance(request)
            let box = Request(raw: request!)
            let bytes = size > 0 ? Array(UnsafeRawBufferPointer(start: value, count: size)) : []
            mount.owe()
            mount.fileSystem.setxattr(inode, name: String(cString: name!), value: bytes, flags: flags) { error in
                defer { mount.paid() }
                fuse_reply_err(box.raw, error.map { mount.errno($0.code) } ?? 0)
            }
        }
        ops.removexattr = { request, inode, name in
            let mount = FuseMount.instance(request)
            let box = Request(raw: request!)
            mount.owe()
            mount.fileSystem.removexattr(inode, name: String(cString: name!)) { error in
                defer { mount.paid() }
                fuse_reply_err(box.raw, error.map { mount.errno($0.code) } ?? 0)
            }
        }
        ops.listxattr = { request, inode, size in
            let mount = FuseMount.instance(request)
            switch mount.fileSystem.listxattr(inode) {
            case .failure(let error):
                fuse_reply_err(request, mount.errno(error.code))
            case .success(let names):
                let bytes: [UInt8] = names.flatMap { Array($0.utf8) + [0] }
                if size == 0 { fuse_reply_xattr(request, bytes.count) }
                else if size < bytes.count { fuse_reply_err(request, ERANGE) }
                else { fuse_reply_buf(request, bytes.map { CChar(bitPattern: $0) }, bytes.count) }
            }
        }
        ops.getxattr = { request, inode, name, size in
            let mount = FuseMount.instance(request)
            let box = Request(raw: request!)
            mount.owe()
            mount.fileSystem.getxattr(inode, name: String(cString: name!)) { result in
                defer { mount.paid() }
                switch result {
                case .failure(let error):
                    fuse_reply_err(box.raw, mount.errno(error.code))
                case .success(let bytes):
                    if size == 0 { fuse_reply_xattr(box.raw, bytes.count) }
                    else if size < bytes.count { fuse_reply_err(box.raw, ERANGE) }
                    else { fuse_reply_buf(box.raw, bytes.map { CChar(bitPattern: $0) }, bytes.count) }
                }
            }
        }
        ops.statfs = { request, _ in
            var info = statvfs()
            info.f_bsize = 4096
            info.f_frsize = 4096
            info.f_namemax = 255
            fuse_reply_statfs(request, &info)
        }
        return ops
    }
}

/// A FUSE request handle that may cross threads (libfuse allows replying from any thread).
struct Request: @unchecked Sendable {
    let raw: fuse_req_t
}

struct SessionBox: @unchecked Sendable {
    let session: OpaquePointer
}

struct FileInfo: @unchecked Sendable {
    var value: fuse_file_info
}

/// Sends a read's bytes (or error) to the kernel, once.
final class FuseReadReply: ReadReply, @unchecked Sendable {
    let request: Request
    let mount: FuseMount

    init(request: Request, mount: FuseMount) {
        self.request = request
        self.mount = mount
    }

    func data(_ bytes: UnsafeRawBufferPointer) {
        fuse_reply_buf(request.raw, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        mount.paid()
    }

    func error(_ code: Int32) {
        fuse_reply_err(request.raw, mount.errno(code))
        mount.paid()
    }
}

public struct FuseError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
