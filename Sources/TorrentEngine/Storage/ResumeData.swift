import BitTorrent
#if canImport(Glibc)
import Glibc
#endif

/// What survives a restart for one torrent: the verified pieces and, for each data file,
/// its size and modification time when they were recorded. Bencoded on disk, written
/// atomically (temporary file, fsync, rename, fsync of the directory).
public struct ResumeData: Hashable, Sendable {
    public var infoHash: InfoHash
    public var have: Bitfield
    public var files: [FileState?]

    public init(infoHash: InfoHash, have: Bitfield, files: [FileState?]) {
        self.infoHash = infoHash
        self.have = have
        self.files = files
    }

    public var encoded: [UInt8] {
        var root = BDictionary()
        root["info-hash"] = .bytes(infoHash.bytes)
        root["pieces"] = .integer(Int64(have.count))
        root["have"] = .bytes(have.wire)
        root["files"] = .list(files.map { state in
            guard let state else { return .list([]) }
            return .list([.integer(state.size), .integer(state.mtimeNanoseconds)])
        })
        return Bencode.encode(.dictionary(root))
    }

    /// Nil for anything that is not resume data of this shape.
    public init?(encoded bytes: [UInt8]) {
        guard let value = try? Bencode.decode(bytes, limits: BencodeLimits(maxDepth: 4, maxInputSize: 16 << 20)),
              let hashBytes = value["info-hash"]?.bytesValue, let hash = InfoHash(hashBytes),
              let count = value["pieces"]?.integerValue, count > 0, count <= Int64(InfoDictionary.maxPieceCount),
              let wire = value["have"]?.bytesValue, let have = Bitfield(wire: wire, count: Int(count)),
              let list = value["files"]?.listValue else { return nil }
        var files: [FileState?] = []
        for item in list {
            let pair = item.listValue ?? []
            if pair.count == 2, let size = pair[0].integerValue, let mtime = pair[1].integerValue {
                files.append(FileState(size: size, mtimeNanoseconds: mtime))
            } else {
                files.append(nil)
            }
        }
        self.init(infoHash: hash, have: have, files: files)
    }

    /// Pieces that may be trusted without a recheck: verified before, and every
    /// non-padding file they touch still has the recorded size and mtime.
    public func trusted(info: InfoDictionary, current: [FileState?]) -> Bitfield {
        var trusted = Bitfield(count: info.lengths.pieceCount)
        let visible = info.files.filter { !$0.isPadding }
        guard have.count == info.lengths.pieceCount, files.count == visible.count, current.count == visible.count else {
            return trusted
        }
        var changed: [Range<Int64>] = []
        for (index, file) in visible.enumerated() where files[index] == nil || files[index] != current[index] {
            if file.length > 0 { changed.append(file.byteRange) }
        }
        for piece in have.setIndices {
            let range = info.lengths.byteRange(info.lengths.piece(piece)!)
            if !changed.contains(where: { $0.overlaps(range) }) { trusted[piece] = true }
        }
        return trusted
    }

    /// Writes `bytes` to `path` so that a crash leaves either the old or the new file.
    /// Each call has a temporary file of its own: two saves at once (a periodic one and the
    /// one at stop, on two disk threads) must not rename each other's file away.
    /// `durable: false` skips the fsyncs (the rename still replaces the file whole): for
    /// writes on a hot path whose order against later metadata changes of the same
    /// filesystem is enough (an ext4 journal commits them in order).
    public static func writeAtomically(_ bytes: [UInt8], to path: String, durable: Bool = true) throws(EngineError) {
        let temporary = path + ".tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EngineError.io(operation: "open", path: temporary, errno: errno) }
        do {
            try PosixFile.writeAll(bytes, to: fd, path: temporary)
        } catch {
            Glibc.close(fd)
            throw error
        }
        if durable && fsync(fd) != 0 {
            let code = errno
            Glibc.close(fd)
            throw EngineError.io(operation: "fsync", path: temporary, errno: code)
        }
        Glibc.close(fd)
        guard rename(temporary, path) == 0 else { throw EngineError.io(operation: "rename", path: path, errno: errno) }
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let dirFD = durable ? Glibc.open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1
        if dirFD >= 0 {
            fsync(dirFD)
            Glibc.close(dirFD)
        }
    }
}
