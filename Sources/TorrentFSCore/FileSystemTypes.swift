#if canImport(Glibc)
import Glibc
#endif

/// Attributes of a node, as `getattr` reports them.
public struct NodeAttributes: Sendable, Equatable {
    public var inode: UInt64
    public var isDirectory: Bool
    /// Permission bits (0555 folders, 0444 files, 0644 for `.add`).
    public var permissions: UInt32
    public var size: Int64
    /// Bytes backing the node: verified bytes for torrent files.
    public var allocated: Int64
    public var links: UInt32
    /// Seconds since the epoch.
    public var modified: Int64
}

/// A failed operation: the errno FUSE replies with.
public struct FSError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: Int32
    public init(_ code: Int32) { self.code = code }
    public var description: String { String(cString: strerror(code)) }
}

/// One entry of a directory listing.
public struct DirectoryEntry: Sendable, Equatable {
    public var name: String
    public var inode: UInt64
    public var isDirectory: Bool
}

/// Where the answer to a read goes. Called exactly once per read, from any thread.
public protocol ReadReply: Sendable {
    func data(_ bytes: UnsafeRawBufferPointer)
    func error(_ code: Int32)
}

/// How `open` went: the handle, and whether the kernel may keep cached pages (torrent
/// data never changes) or must read afresh (control files).
public struct OpenResult: Sendable, Equatable {
    public var handle: UInt64
    public var keepCache: Bool
    public var directIO: Bool
}

/// The outcome of starting a read.
public enum ReadStart: Sendable, Equatable {
    /// The reply was sent (or an error).
    case done
    /// Waiting for pieces: call `activate(_:)` once interrupts can reach `interrupt(_:)`.
    case pending
}
