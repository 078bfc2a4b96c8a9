import BitTorrent
#if canImport(Glibc)
import Glibc
#endif

/// Finds the files to put in a torrent, in a deterministic order.
enum ContentScanner {
    struct File: Sendable {
        var absolutePath: String
        /// Path below the torrent folder; empty for a single-file torrent.
        var relativePath: [String]
        var length: Int64
    }

    struct Content: Sendable {
        var name: String
        var files: [File]
    }

    /// A regular file becomes a single-file torrent; a directory a multi-file one with its
    /// files sorted by path bytes. Symbolic links to files are followed; links to
    /// directories are skipped so a cycle cannot make the walk endless.
    static func scan(_ path: String) throws(EngineError) -> Content {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        var info = stat()
        guard stat(trimmed, &info) == 0 else { throw EngineError.io(operation: "stat", path: trimmed, errno: errno) }
        let name = trimmed.split(separator: "/").last.map(String.init) ?? trimmed
        if info.st_mode & S_IFMT == S_IFREG {
            return Content(name: name, files: [File(absolutePath: trimmed, relativePath: [], length: Int64(info.st_size))])
        }
        var files: [File] = []
        try walk(directory: trimmed, relative: [], into: &files)
        return Content(name: name, files: files)
    }

    private static func walk(directory: String, relative: [String], into files: inout [File]) throws(EngineError) {
        guard let dir = opendir(directory) else { throw EngineError.io(operation: "opendir", path: directory, errno: errno) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        names.sort { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        for name in names {
            let full = directory + "/" + name
            var link = stat()
            guard lstat(full, &link) == 0 else { throw EngineError.io(operation: "lstat", path: full, errno: errno) }
            var target = link
            if link.st_mode & S_IFMT == S_IFLNK {
                guard stat(full, &target) == 0 else { continue }  // dangling link
                if target.st_mode & S_IFMT == S_IFDIR { continue }
            }
            switch target.st_mode & S_IFMT {
            case S_IFDIR: try walk(directory: full, relative: relative + [name], into: &files)
            case S_IFREG: files.append(File(absolutePath: full, relativePath: relative + [name], length: Int64(target.st_size)))
            default: continue  // sockets, fifos, devices have no content to share
            }
        }
    }
}
