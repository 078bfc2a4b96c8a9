import BitTorrent
import Crypto
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Makes a .torrent from a file or a directory: deterministic file order, pieces hashed in
/// parallel on every core while the next batch is read, in bounded memory (two batches).
public enum TorrentCreator {
    /// Bytes read per batch (rounded to whole pieces); two batches are in memory at once.
    public static let batchBytes = 32 << 20

    public struct Result: Sendable {
        /// The .torrent file.
        public var torrent: [UInt8]
        public var metainfo: Metainfo
    }

    /// Hashes `path` and returns the torrent. `pieceLength` nil chooses one automatically.
    public static func create(path: String, pieceLength: Int? = nil, options: TorrentBuilder.Options = .init(),
                              threads: Int = System.coreCount) throws(EngineError) -> Result {
        let content = try ContentScanner.scan(path)
        let total = content.files.reduce(Int64(0)) { $0 + $1.length }
        guard total > 0 else { throw EngineError.emptyContent(path: path) }
        let pieceLength = pieceLength ?? TorrentBuilder.automaticPieceLength(totalLength: total)
        guard pieceLength > 0, pieceLength % Lengths.blockSize == 0,
              Int64(pieceLength) <= InfoDictionary.maxPieceLength else {
            throw EngineError.invalidPieceLength(pieceLength)
        }
        let hashes = try hashPieces(content, totalLength: total, pieceLength: pieceLength, threads: threads)
        let specs = content.files.map { TorrentBuilder.FileSpec(path: $0.relativePath, length: $0.length) }
        let info = TorrentBuilder.infoDictionary(name: content.name, files: specs, pieceLength: pieceLength,
                                                 pieceHashes: hashes, options: options)
        let torrent = TorrentBuilder.torrentFile(info: info, options: options)
        // Parsing what we wrote both validates it and yields the info hash.
        let metainfo: Metainfo
        do {
            metainfo = try Metainfo(bytes: torrent)
        } catch {
            preconditionFailure("torrent built from \(path) does not parse: \(error)")
        }
        return Result(torrent: torrent, metainfo: metainfo)
    }

    static func hashPieces(_ content: ContentScanner.Content, totalLength: Int64, pieceLength: Int,
                           threads: Int) throws(EngineError) -> [Digest20] {
        let pieceCount = Int((totalLength + Int64(pieceLength) - 1) / Int64(pieceLength))
        let piecesPerBatch = max(1, batchBytes / pieceLength)
        let batchSize = piecesPerBatch * pieceLength
        let digests = DigestTable(count: pieceCount)
        defer { digests.deallocate() }
        var reader = ContentReader(files: content.files)
        defer { reader.close() }
        let buffers = [UnsafeMutableRawBufferPointer.allocate(byteCount: batchSize, alignment: 64),
                       UnsafeMutableRawBufferPointer.allocate(byteCount: batchSize, alignment: 64)]
        defer { buffers.forEach { $0.deallocate() } }
        let queue = DispatchQueue(label: "torrentfs.create.hash")
        var current = 0
        var firstPiece = 0
        var filled = try reader.read(into: buffers[current])
        while filled > 0 {
            let job = HashJob(buffer: UnsafeRawBufferPointer(buffers[current]), filled: filled,
                              pieceLength: pieceLength, firstPiece: firstPiece, digests: digests, threads: threads)
            let group = DispatchGroup()
            queue.async(group: group) { job.run() }
            let next = 1 - current
            let nextFilled: Int
            do {
                nextFilled = try reader.read(into: buffers[next])
            } catch {
                group.wait()
                throw error
            }
            group.wait()
            firstPiece += (filled + pieceLength - 1) / pieceLength
            current = next
            filled = nextFilled
        }
        return digests.values
    }
}

/// Piece digests written by many threads, each to its own slot.
final class DigestTable: @unchecked Sendable {
    let storage: UnsafeMutableBufferPointer<UInt8>
    let count: Int

    init(count: Int) {
        self.count = count
        storage = .allocate(capacity: count * 20)
    }

    func set(_ index: Int, _ digest: Insecure.SHA1.Digest) {
        digest.withUnsafeBytes { bytes in
            UnsafeMutableRawBufferPointer(start: storage.baseAddress! + index * 20, count: 20).copyMemory(from: bytes)
        }
    }

    var values: [Digest20] { (0..<count).map { Digest20(storage[($0 * 20)..<($0 * 20 + 20)])! } }

    func deallocate() { storage.deallocate() }
}

/// Hashing one batch of whole pieces (the last may be short) on all threads.
struct HashJob: @unchecked Sendable {
    let buffer: UnsafeRawBufferPointer
    let filled: Int
    let pieceLength: Int
    let firstPiece: Int
    let digests: DigestTable
    let threads: Int

    func run() {
        let pieces = (filled + pieceLength - 1) / pieceLength
        let workers = max(1, min(threads, pieces))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var piece = worker
            while piece < pieces {
                let start = piece * pieceLength
                let end = min(filled, start + pieceLength)
                digests.set(firstPiece + piece, Insecure.SHA1.hash(data: UnsafeRawBufferPointer(rebasing: buffer[start..<end])))
                piece += workers
            }
        }
    }
}

/// Reads the concatenation of a torrent's files sequentially.
struct ContentReader {
    let files: [ContentScanner.File]
    var fileIndex = 0
    var offsetInFile: Int64 = 0
    var fd: Int32 = -1

    init(files: [ContentScanner.File]) { self.files = files }

    /// Fills `buffer` as far as the content allows; returns the bytes filled (0 at the end).
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(EngineError) -> Int {
        var filled = 0
        while filled < buffer.count && fileIndex < files.count {
            let file = files[fileIndex]
            if offsetInFile == file.length {
                close()
                fileIndex += 1
                offsetInFile = 0
                continue
            }
            if fd < 0 {
                fd = Glibc.open(file.absolutePath, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw EngineError.io(operation: "open", path: file.absolutePath, errno: errno) }
            }
            let want = Int(min(Int64(buffer.count - filled), file.length - offsetInFile))
            let got = pread(fd, buffer.baseAddress! + filled, want, off_t(offsetInFile))
            if got < 0 {
                if errno == EINTR { continue }
                throw EngineError.io(operation: "read", path: file.absolutePath, errno: errno)
            }
            guard got > 0 else { throw EngineError.fileChanged(path: file.absolutePath) }
            filled += got
            offsetInFile += Int64(got)
        }
        return filled
    }

    mutating func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }
}
