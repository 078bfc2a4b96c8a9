import BitTorrent
import Foundation
import TorrentEngine

/// What the server shows: the session's torrents, their files and their URLs. Paths are the
/// torrent's file paths without its top folder (a single-file torrent's path is its name).
struct Catalog: Sendable {
    let session: Session
    /// Seconds a request for a magnet's file waits for its metadata.
    let metadataTimeout: Double

    /// A file of a torrent as served.
    struct File: Sendable {
        let index: Int
        let path: [String]
        let file: TorrentFile
        var name: String { path.last ?? "" }
    }

    /// The visible files of a torrent, with their served paths.
    static func files(of info: InfoDictionary) -> [File] {
        info.files.enumerated().compactMap { index, file in
            guard !file.isPadding else { return nil }
            return File(index: index, path: info.isSingleFile ? [info.name] : file.path, file: file)
        }
    }

    /// The torrent's metadata, waiting for it (a magnet) up to the timeout; nil when the
    /// session has no such torrent or the wait ran out.
    func metainfo(_ hash: InfoHash) async -> Metainfo? {
        let session = session
        return await withTaskGroup(of: Metainfo?.self) { group in
            group.addTask { try? await session.waitForMetadata(hash) }
            group.addTask { [metadataTimeout] in
                try? await Task.sleep(for: .milliseconds(Int(metadataTimeout * 1000)))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// JSON of the index: `[{"infoHash", "name", "size", "progress", "files": [{"path", "size", "url"}]}]`.
    struct IndexEntry: Codable, Sendable {
        struct FileEntry: Codable, Sendable {
            var path: String
            var size: Int64
            var url: String
        }

        var infoHash: String
        var name: String
        var size: Int64?
        var progress: Double
        var files: [FileEntry]
    }

    /// Every torrent, with files for those whose metadata is known (none waits here).
    func index(base: String) async -> [IndexEntry] {
        let status = await session.status()
        var entries: [IndexEntry] = []
        for torrent in status.torrents {
            var files: [IndexEntry.FileEntry] = []
            if torrent.totalSize != nil, let hash = InfoHash(string: torrent.infoHash),
               let metainfo = try? await session.waitForMetadata(hash) {
                files = Self.files(of: metainfo.info).map { file in
                    IndexEntry.FileEntry(path: file.path.joined(separator: "/"), size: file.file.length,
                                         url: base + Self.url(hash, file.path))
                }
            }
            entries.append(IndexEntry(infoHash: torrent.infoHash, name: torrent.name, size: torrent.totalSize,
                                      progress: torrent.progress, files: files))
        }
        return entries
    }

    /// `/t/<hash>/<path, percent-encoded per segment>`.
    static func url(_ hash: InfoHash, _ path: [String]) -> String {
        "/t/\(hash.hex)/" + Route.encode(path)
    }

    /// Whether the session has this torrent (with or without metadata).
    func has(_ hash: InfoHash) async -> Bool {
        await session.stats(hash) != nil
    }
}
