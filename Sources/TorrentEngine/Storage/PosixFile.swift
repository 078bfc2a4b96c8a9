#if canImport(Glibc)
import Glibc
#endif

/// Whole-file helpers over POSIX calls (EINTR retried) for the small files around the
/// data: resume data, saved torrents, what is written to a mount's `.add`.
public enum PosixFile {
    /// The whole file; fails past `limit` bytes (EFBIG).
    public static func read(_ path: String, limit: Int = Int.max) throws(EngineError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EngineError.io(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, 65536) }
            if got < 0 {
                if errno == EINTR { continue }
                throw EngineError.io(operation: "read", path: path, errno: errno)
            }
            if got == 0 { return out }
            guard out.count + got <= limit else { throw EngineError.io(operation: "read", path: path, errno: EFBIG) }
            out += chunk[0..<got]
        }
    }

    /// Writes every byte to `fd` (`path` names it in errors).
    public static func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws(EngineError) {
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if written < 0 {
                if errno == EINTR { continue }
                throw EngineError.io(operation: "write", path: path, errno: errno)
            }
            done += written
        }
    }

    /// `mkdir -p`: the folder and every missing parent (0755).
    public static func makeDirectories(_ path: String) throws(EngineError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw EngineError.io(operation: "mkdir", path: prefix, errno: errno)
            }
        }
    }
}
