import BitTorrent
import Foundation
import Logging
import TorrentEngine
#if canImport(Glibc)
import Glibc
#endif

/// Extended attributes and the `.status` document.
extension TorrentFileSystem {
    // MARK: Extended attributes

    public func listxattr(_ inode: UInt64) -> Result<[String], FSError> {
        lock.withLock {
            switch nodes[inode] {
            case .folder, .directory, .file: return .success(Self.xattrNames)
            case nil: return .failure(FSError(ENOENT))
            default: return .success([])
            }
        }
    }

    public func getxattr(_ inode: UInt64, name: String, reply: @escaping @Sendable (Result<[UInt8], FSError>) -> Void) {
        let result = lock.withLock { () -> Result<[UInt8], FSError>? in
            let hash: InfoHash
            var range: Range<Int64>?
            switch nodes[inode] {
            case .folder(let owner):
                hash = owner
            case .directory(let owner, let path):
                hash = owner
                if let info = torrents[owner]?.metainfo?.info {
                    let inside = info.files.filter { !$0.isPadding && $0.path.starts(with: path) }
                    if let first = inside.first, let last = inside.last { range = first.offset..<(last.offset + last.length) }
                }
            case .file(let owner, let index):
                hash = owner
                range = torrents[owner]?.metainfo?.info.files[index].byteRange
            case nil:
                return .failure(FSError(ENOENT))
            default:
                return .failure(FSError(ENODATA))
            }
            guard let mounted = torrents[hash] else { return .failure(FSError(ENOENT)) }
            switch name {
            case "user.torrentfs.infohash":
                return .success(Array(hash.hex.utf8))
            case "user.torrentfs.magnet":
                return .success(Array(mounted.magnet.uri.utf8))
            case "user.torrentfs.progress":
                guard let info = mounted.metainfo?.info else { return .success(Array("0.0000".utf8)) }
                let span = range ?? 0..<info.totalLength
                let fraction = span.isEmpty ? 1 : Double(session.verifiedBytes(hash, in: span)) / Double(span.count)
                return .success(Array(String(format: "%.4f", fraction).utf8))
            case "user.torrentfs.peers":
                return nil
            default:
                return .failure(FSError(ENODATA))
            }
        }
        if let result { return reply(result) }
        session.withStatus { [weak self] status in
            guard let self else { return reply(.failure(FSError(EIO))) }
            let hash = self.lock.withLock { () -> InfoHash? in
                switch self.nodes[inode] {
                case .folder(let owner), .directory(let owner, _), .file(let owner, _): return owner
                default: return nil
                }
            }
            guard let hash, let stat = status.torrents.first(where: { $0.infoHash == hash.hex }) else {
                return reply(.failure(FSError(ENOENT)))
            }
            reply(.success(Array("\(stat.peers.count)".utf8)))
        }
    }

    // MARK: .status

    /// The engine's status document with the mount's own fields: each torrent's folder,
    /// only mounted torrents, in folder order, and the refused `.add` inputs.
    func statusDocument(_ status: StatusDocument) -> [UInt8] {
        let document = lock.withLock { () -> StatusDocument in
            var document = status
            document.torrents = status.torrents.compactMap { stat in
                guard let hash = InfoHash(string: stat.infoHash), let mounted = torrents[hash] else { return nil }
                var stat = stat
                stat.folder = mounted.folderName
                return stat
            }.sorted { ($0.folder ?? "") < ($1.folder ?? "") }
            document.addErrors = addErrors
            return document
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array((try? encoder.encode(document)) ?? Data("{}".utf8)) + [UInt8(ascii: "\n")]
    }
}
