import BitTorrent
import Crypto
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Makes a .torrent from a file or a directory: deterministic file order, and every core
/// reading and hashing its own runs of consecutive pieces, in bounded memory (one chunk
/// per thread).
public enum TorrentCreator {
    /// Bytes one thread reads at a time (rounded to whole pieces, at least one piece).
    public static let chunkBytes = 8 << 20

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
        let piecesPerChunk = max(1, chunkBytes / pieceLength)
        let chunkCount = (pieceCount + piecesPerChunk - 1) / piecesPerChunk
        let digests = DigestTable(count: pieceCount)
        defer { digests.deallocate() }
        let job = ChunkJob(files: content.files, totalLength: totalLength, pieceLength: pieceLength,
                           piecesPerChunk: piecesPerChunk, chunkCount: chunkCount,
                           workers: max(1, min(threads, chunkCount)), digests: digests)
        DispatchQueue.concurrentPerform(iterations: job.workers) { job.run(worker: $0) }
        if let error = job.failure.withLock({ $0 }) { throw error }
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

/// One thread's share of the hashing: chunks `worker`, `worker + workers`, … each read with
/// positional reads and hashed piece by piece.
final class ChunkJob: Sendable {
    let files: [ContentScanner.File]
    let offsets: [Int64]
    let totalLength: Int64
    let pieceLength: Int
    let piecesPerChunk: Int
    let chunkCount: Int
    let workers: Int
    let digests: DigestTable
    let failure = Mutex<EngineError?>(nil)

    init(files: [ContentScanner.File], totalLength: Int64, pieceLength: Int, piecesPerChunk: Int, chunkCount: Int,
         workers: Int, digests: DigestTable) {
        self.files = files
        var offsets: [Int64] = []
        var running: Int64 = 0
        for file in files {
            offsets.append(running)
            running += file.length
        }
        self.offsets = offsets
        self.totalLength = totalLength
        self.pieceLength = pieceLength
        self.piecesPerChunk = piecesPerChunk
        self.chunkCount = chunkCount
        self.workers = workers
        self.digests = digests
    }

    func run(worker: Int) {
        let chunkLength = piecesPerChunk * pieceLength
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkLength, alignment: 64)
        defer { buffer.deallocate() }
        var reader = ContentReader(files: files, offsets: offsets)
        defer { reader.close() }
        var chunk = worker
        while chunk < chunkCount && failure.withLock({ $0 == nil }) {
            let firstPiece = chunk * piecesPerChunk
            let start = Int64(firstPiece) * Int64(pieceLength)
            let length = Int(min(Int64(chunkLength), totalLength - start))
            do {
                try reader.read(at: start, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]))
            } catch {
                failure.withLock { $0 = $0 ?? error }
                return
            }
            var offset = 0
            var piece = firstPiece
            while offset < length {
                let end = min(length, offset + pieceLength)
                digests.set(piece, Insecure.SHA1.hash(data: UnsafeRawBufferPointer(rebasing: buffer[offset..<end])))
                offset = end
                piece += 1
            }
            chunk += workers
        }
    }
}

/// Positional reads of the concatenation of a torrent's files, one open file at a time.
struct ContentReader {
    let files: [ContentScanner.File]
    let offsets: [Int64]
    var openIndex = -1
    var fd: Int32 = -1

    /// Fills `buffer` with the content bytes starting at `offset`.
    mutating func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(EngineError) {
        // The last file starting at or before `offset`…
        var low = 0
        var high = files.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if offsets[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        var index = low
        var filled = 0
        var position = offset
        while filled < buffer.count {
            guard index < files.count else { throw EngineError.fileChanged(path: files[files.count - 1].absolutePath) }
            let file = files[index]
            let inFile = position - offsets[index]
            if inFile >= file.length {  // …skipping empty files and ones already read past
                index += 1
                continue
            }
            let fd = try descriptor(index)
            let want = Int(min(Int64(buffer.count - filled), file.length - inFile))
            let got = pread(fd, buffer.baseAddress! + filled, want, off_t(inFile))
            if got < 0 {
                if errno == EINTR { continue }
                throw EngineError.io(operation: "read", path: file.absolutePath, errno: errno)
            }
            guard got > 0 else { throw EngineError.fileChanged(path: file.absolutePath) }
            filled += got
            position += Int64(got)
        }
    }

    private mutating func descriptor(_ index: Int) throws(EngineError) -> Int32 {
        if openIndex == index { return fd }
        close()
        let path = files[index].absolutePath
        fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EngineError.io(operation: "open", path: path, errno: errno) }
        openIndex = index
        return fd
    }

    mutating func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
        openIndex = -1
    }
}
