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
            case .folder: return .success(Self.xattrNames + TorrentSettings.names)
            case .directory, .file: return .success(Self.xattrNames)
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
            if TorrentSettings.names.contains(name) {
                guard case .folder = nodes[inode] else { return .failure(FSError(ENODATA)) }
                return .success(mounted.settings.value(of: name, mountFetchAll: options.fetchAll) ?? [])
            }
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

    /// Writes a torrent folder's setting (`TorrentSettings`): kept with the torrent and
    /// applied to the running torrent before `reply`. Errors: the setting is read-only
    /// (EPERM), unknown or not on a torrent folder (ENOTSUP), already there with
    /// `XATTR_CREATE` (EEXIST), a value not understood (EINVAL).
    public func setxattr(_ inode: UInt64, name: String, value: [UInt8], flags: Int32,
                         reply: @escaping @Sendable (FSError?) -> Void) {
        changeSetting(inode, name: name, reply: reply) { settings in
            guard flags & Self.xattrCreate == 0 else { return EEXIST }  // a setting always exists
            return settings.set(name, to: value) ? nil : EINVAL
        }
    }

    /// setxattr(2)'s XATTR_CREATE flag (sys/xattr.h).
    static let xattrCreate: Int32 = 1

    /// Removing a setting puts the mount's behaviour back.
    public func removexattr(_ inode: UInt64, name: String, reply: @escaping @Sendable (FSError?) -> Void) {
        changeSetting(inode, name: name, reply: reply) { settings in
            settings.reset(name)
            return nil
        }
    }

    private func changeSetting(_ inode: UInt64, name: String, reply: @escaping @Sendable (FSError?) -> Void,
                               change: (inout TorrentSettings) -> Int32?) {
        let outcome = lock.withLock { () -> Result<(InfoHash, TorrentSettings), FSError> in
            guard let node = nodes[inode] else { return .failure(FSError(ENOENT)) }
            guard case .folder(let hash) = node, let mounted = torrents[hash] else {
                return .failure(FSError(Self.xattrNames.contains(name) ? EPERM : ENOTSUP))
            }
            if Self.xattrNames.contains(name) { return .failure(FSError(EPERM)) }
            guard TorrentSettings.names.contains(name) else { return .failure(FSError(ENOTSUP)) }
            var settings = mounted.settings
            if let code = change(&settings) { return .failure(FSError(code)) }
            mounted.settings = settings
            return .success((hash, settings))
        }
        guard case .success(let (hash, settings)) = outcome else {
            if case .failure(let error) = outcome { reply(error) }
            return
        }
        do {
            try library.saveSettings(settings, for: hash)
        } catch {
            logger.error("cannot save a torrent's settings", metadata: ["infohash": "\(hash.hex)", "error": "\(error)"])
        }
        let session = session
        let fetchAll = settings.fetchAll ?? options.fetchAll
        Task {
            await session.setDownloadLimit(hash, settings.downloadLimit)
            await session.setSelection(hash, fetchAll ? nil : [])
            reply(nil)
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
