#if canImport(Glibc)
import Glibc
#endif

/// Errors of the engine, each with the context needed to act on it.
public enum EngineError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A system call failed on a path.
    case io(operation: String, path: String, errno: Int32)
    /// There is nothing to put in a torrent.
    case emptyContent(path: String)
    /// A file shrank or grew while it was being read.
    case fileChanged(path: String)
    /// A piece length the caller gave is unusable.
    case invalidPieceLength(Int)
    /// No listening socket could be opened.
    case listenFailed(String)

    public var description: String {
        switch self {
        case .io(let operation, let path, let code):
            return "\(operation) \(path): \(String(cString: strerror(code)))"
        case .emptyContent(let path): return "\(path): no data to share (total size is 0)"
        case .fileChanged(let path): return "\(path): file changed while it was being read"
        case .listenFailed(let why): return "cannot listen: \(why)"
        case .invalidPieceLength(let length):
            return "invalid piece length \(length): must be a positive multiple of 16 KiB, at most 256 MiB"
        }
    }
}
