import BitTorrent

/// Where verified pieces live. Offsets are in the torrent's byte stream (files
/// concatenated, padding included); implementations map them to files. Calls may block:
/// the engine makes them on its disk threads, never on an event loop.
public protocol PieceStorage: AnyObject, Sendable {
    /// Writes a verified piece's bytes at `offset`.
    func write(_ bytes: [UInt8], at offset: Int64) throws(EngineError)
    /// Reads `length` bytes at `offset` (into a fresh array).
    func read(at offset: Int64, length: Int) throws(EngineError) -> [UInt8]
    /// Reads `buffer.count` bytes at `offset` into `buffer` (streaming reads reuse buffers).
    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(EngineError)
    /// Makes everything written so far durable.
    func sync() throws(EngineError)
    /// Size and modification time of each non-padding file, for resume data; nil where
    /// the file does not exist.
    func fileStates() -> [FileState?]
    /// Gives the space of a byte range back to the filesystem (holes punched in sparse
    /// files); the range reads as zeros afterwards. Only for pieces already marked
    /// unverified everywhere (the bounded cache's eviction).
    func release(at offset: Int64, length: Int) throws(EngineError)
    /// Releases file descriptors.
    func close()
}

extension PieceStorage {
    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(EngineError) {
        let bytes = try read(at: offset, length: buffer.count)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    }
}

/// What resume data remembers of a data file.
public struct FileState: Hashable, Sendable {
    public var size: Int64
    public var mtimeNanoseconds: Int64

    public init(size: Int64, mtimeNanoseconds: Int64) {
        self.size = size
        self.mtimeNanoseconds = mtimeNanoseconds
    }
}
