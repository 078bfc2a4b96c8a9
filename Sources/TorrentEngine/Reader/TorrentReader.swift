import BitTorrent

/// Why a streaming read returned no data.
public enum ReadFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The torrent was removed from the session.
    case removed
    /// The reader cancelled the read (an interrupted reader, a client that went away).
    case cancelled
    /// The data did not arrive within the reader's timeout.
    case timedOut
    /// The session is shutting down.
    case shutDown
    /// Verified data could not be read back from storage.
    case storage(String)
    /// The torrent is paused (its storage failed: a full disk) and fetches nothing until
    /// it resumes by itself.
    case paused(String)

    public var description: String {
        switch self {
        case .removed: return "torrent removed"
        case .cancelled: return "read cancelled"
        case .timedOut: return "read timed out"
        case .shutDown: return "session shutting down"
        case .storage(let message): return "storage: \(message)"
        case .paused(let reason): return "torrent paused: \(reason)"
        }
    }
}

/// Where a streaming read's answer goes: exactly one of the two calls, once, from any
/// thread. The bytes are valid only during the call.
public protocol ReadSink: Sendable {
    func data(_ bytes: UnsafeRawBufferPointer)
    func failed(_ failure: ReadFailure)
}

/// How a reader fetches ahead and how long its reads may wait.
public struct ReaderOptions: Sendable, Equatable {
    /// Readahead after a seek; then it follows the reader's speed (`ReadaheadWindow`).
    public var initialWindow = 2 << 20
    /// Largest readahead window in bytes.
    public var maximumWindow = 32 << 20
    /// Seconds a read may wait for missing pieces before it fails with `.timedOut`
    /// (nil: wait as long as it takes, like a slow disk).
    public var timeout: Double?

    public init() {}
}

/// How a read started.
public enum StreamRead: Sendable, Equatable {
    /// The sink was already called (data, an empty read past the end, or a failure).
    case done
    /// Waiting for pieces; the id cancels it.
    case pending(UInt64)
}

/// One reader of one file of a torrent (an open file handle, an HTTP response): reads
/// complete when their bytes are SHA-1-verified, nearest deadline first, and the reader's
/// sequential speed sets how far ahead pieces are fetched. Thread-safe.
public final class TorrentReader: Sendable {
    public let infoHash: InfoHash
    public let fileIndex: Int
    public let file: TorrentFile
    let id: UInt64
    let coordinator: ReadCoordinator

    init(infoHash: InfoHash, fileIndex: Int, file: TorrentFile, id: UInt64, coordinator: ReadCoordinator) {
        self.infoHash = infoHash
        self.fileIndex = fileIndex
        self.file = file
        self.id = id
        self.coordinator = coordinator
    }

    /// Reads `size` bytes at `offset` in the file (fewer at its end, none past it). Verified
    /// bytes are served at once on the caller's thread; otherwise the missing pieces get
    /// deadlines and the sink is called once they are verified.
    public func read(offset: Int64, size: Int, sink: any ReadSink) -> StreamRead {
        coordinator.read(self, offset: offset, size: size, sink: sink)
    }

    /// Ends a pending read: its sink gets `failure`. Nothing happens if it already ended.
    public func cancel(_ read: UInt64, failure: ReadFailure = .cancelled) {
        coordinator.cancel(infoHash, read: read, failure: failure)
    }

    /// Releases the reader's readahead; reads still pending fail with `.cancelled`.
    public func close() { coordinator.close(self) }

    /// Why the torrent is paused (reads of missing data fail at once), if it is.
    public var pausedReason: String? { coordinator.pausedReason(infoHash) }
}
