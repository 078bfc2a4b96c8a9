import BitTorrent
import CPosix
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Files in their real layout under a root directory, created sparse on first write.
/// Padding files (BEP 47) are never created: they read as zeros and writes skip them.
///
/// Descriptors are owned by `OpenFile` objects: every read, write and sync holds a strong
/// reference for as long as it uses the number, and the number is closed only when the
/// last reference goes. `close()` merely forgets the table's references, so an I/O running
/// on another thread keeps its file open; the number cannot be reused by another `open`
/// while any call may still pass it to `pread`/`pwrite`.
public final class FileStorage: PieceStorage {
    public let root: String
    let files: [TorrentFile]
    private let descriptors: Mutex<[OpenFile?]>

    /// Directory holding the files: `root` for a single-file torrent, `root/NAME` otherwise.
    public let base: String

    /// `root` is the directory that holds the torrent's folder (multi-file) or file.
    public init(root: String, info: InfoDictionary) {
        self.root = root
        base = info.isSingleFile ? root : root + "/" + info.name
        files = info.files
        descriptors = Mutex([OpenFile?](repeating: nil, count: info.files.count))
    }

    /// Absolute path of file `index`.
    public func path(of index: Int) -> String { base + "/" + files[index].path.joined(separator: "/") }

    /// The open file `index`, opened (and with `create`, created) if needed. The caller
    /// uses its descriptor only while it holds the returned reference.
    private func descriptor(_ index: Int, create: Bool) throws(EngineError) -> OpenFile? {
        if let existing = descriptors.withLock({ $0[index] }) { return existing }
        let path = path(of: index)
        var fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        if fd < 0 && errno == ENOENT {
            guard create else { return nil }
            try FileStorage.makeParents(of: path)
            fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else { throw EngineError.io(operation: "open", path: path, errno: errno) }
        let opened = OpenFile(fd)
        // Two threads may open at once: the first in the table wins, the other's closes.
        return descriptors.withLock { table -> OpenFile in
            if let winner = table[index] { return winner }
            table[index] = opened
            return opened
        }
    }

    static func makeParents(of path: String) throws(EngineError) {
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !parent.isEmpty { try PosixFile.makeDirectories(parent) }
    }

    /// File segments overlapping a byte range of the torrent.
    private func segments(offset: Int64, length: Int) -> [(file: Int, fileOffset: Int64, bufferOffset: Int, count: Int)] {
        var out: [(Int, Int64, Int, Int)] = []
        let end = offset + Int64(length)
        // Binary search for the first file that ends after `offset`.
        var low = 0
        var high = files.count
        while low < high {
            let mid = (low + high) / 2
            if files[mid].offset + files[mid].length <= offset { low = mid + 1 } else { high = mid }
        }
        var index = low
        while index < files.count && files[index].offset < end {
            let file = files[index]
            let start = max(offset, file.offset)
            let stop = min(end, file.offset + file.length)
            if stop > start { out.append((index, start - file.offset, Int(start - offset), Int(stop - start))) }
            index += 1
        }
        return out
    }

    public func write(_ bytes: [UInt8], at offset: Int64) throws(EngineError) {
        for segment in segments(offset: offset, length: bytes.count) where !files[segment.file].isPadding {
            guard let file = try descriptor(segment.file, create: true) else { continue }
            // Held until the loop ends: ARC may otherwise release it right after reading `fd`.
            defer { withExtendedLifetime(file) {} }
            var done = 0
            while done < segment.count {
                let written = bytes.withUnsafeBytes { raw in
                    pwrite(file.fd, raw.baseAddress! + segment.bufferOffset + done, segment.count - done,
                           off_t(segment.fileOffset + Int64(done)))
                }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw EngineError.io(operation: "write", path: path(of: segment.file), errno: errno)
                }
                done += written
            }
        }
    }

    public func release(at offset: Int64, length: Int) throws(EngineError) {
        for segment in segments(offset: offset, length: length) where !files[segment.file].isPadding {
            guard let file = try descriptor(segment.file, create: false) else { continue }
            defer { withExtendedLifetime(file) {} }
            while tfs_punch_hole(file.fd, off_t(segment.fileOffset), off_t(segment.count)) != 0 {
                if errno == EINTR { continue }
                throw EngineError.io(operation: "punch hole", path: path(of: segment.file), errno: errno)
            }
        }
    }

    public func read(at offset: Int64, length: Int) throws(EngineError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        let failure = out.withUnsafeMutableBytes { raw -> EngineError? in
            do throws(EngineError) { try read(at: offset, into: raw) } catch { return error }
            return nil
        }
        if let failure { throw failure }
        return out
    }

    /// Reads `buffer.count` bytes at a torrent offset into `buffer` (padding and the
    /// unwritten tail of a sparse file read as zeros).
    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(EngineError) {
        let length = buffer.count
        for segment in segments(offset: offset, length: length) {
            guard !files[segment.file].isPadding else {
                (buffer.baseAddress! + segment.bufferOffset).initializeMemory(as: UInt8.self, repeating: 0, count: segment.count)
                continue
            }
            guard let file = try descriptor(segment.file, create: false) else {
                throw EngineError.io(operation: "open", path: path(of: segment.file), errno: ENOENT)
            }
            defer { withExtendedLifetime(file) {} }
            var done = 0
            while done < segment.count {
                let got = pread(file.fd, buffer.baseAddress! + segment.bufferOffset + done, segment.count - done,
                                off_t(segment.fileOffset + Int64(done)))
                if got < 0 {
                    if errno == EINTR { continue }
                    throw EngineError.io(operation: "read", path: path(of: segment.file), errno: errno)
                }
                if got == 0 {
                    // The sparse tail past the end of what was written reads as zeros.
                    (buffer.baseAddress! + segment.bufferOffset + done).initializeMemory(
                        as: UInt8.self, repeating: 0, count: segment.count - done)
                    break
                }
                done += got
            }
        }
    }

    public func sync() throws(EngineError) {
        let open = descriptors.withLock { $0 }
        for (index, file) in open.enumerated() {
            guard let file else { continue }
            let failed = withExtendedLifetime(file) { fsync(file.fd) != 0 }
            if failed { throw EngineError.io(operation: "fsync", path: path(of: index), errno: errno) }
        }
    }

    public func fileStates() -> [FileState?] {
        files.indices.filter { !files[$0].isPadding }.map { index in
            var info = stat()
            guard stat(path(of: index), &info) == 0 else { return nil }
            return FileState(size: Int64(info.st_size),
                             mtimeNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
        }
    }

    /// Forgets every open file: each is closed at once, or by the last I/O still using it.
    public func close() {
        // Released outside the lock: a deinit closes a descriptor.
        let forgotten = descriptors.withLock { table -> [OpenFile?] in
            defer { table = [OpenFile?](repeating: nil, count: table.count) }
            return table
        }
        _ = forgotten
    }
}

/// A descriptor closed when the last reference to it goes, never earlier.
final class OpenFile: Sendable {
    let fd: Int32

    init(_ fd: Int32) { self.fd = fd }

    deinit { Glibc.close(fd) }
}
