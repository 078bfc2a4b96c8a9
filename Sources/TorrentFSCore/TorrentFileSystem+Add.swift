import BitTorrent
import Foundation
import Logging
import TorrentEngine
#if canImport(Glibc)
import Glibc
#endif

/// The `.add` control file: writes checked line by line, committed on close.
extension TorrentFileSystem {
    // MARK: Writing (`.add`)

    /// Appends to an `.add` handle (offsets are ignored: `>>` writes at the old size).
    /// Complete text lines are checked at once, so `echo junk > .add` fails at the write.
    public func write(handle: UInt64, bytes: UnsafeRawBufferPointer) -> Result<Int, FSError> {
        let outcome = lock.withLock { () -> (Result<Int, FSError>, AddError?) in
            guard case .add(let buffer) = handles[handle] else { return (.failure(FSError(EBADF)), nil) }
            if buffer.failure != nil { return (.failure(FSError(EINVAL)), nil) }
            buffer.bytes += bytes
            do throws(AddError) {
                try AddInput.check(partial: buffer.bytes)
            } catch {
                buffer.failure = error
                return (.failure(FSError(EINVAL)), error)
            }
            return (.success(bytes.count), nil)
        }
        if let error = outcome.1 { recordAddError(error, input: Array(bytes)) }
        return outcome.0
    }

    /// Commits what was written to an `.add` handle (on close): all of it is added, or
    /// nothing and EINVAL. The reply may come later (URLs are fetched first).
    public func flush(handle: UInt64, reply: @escaping @Sendable (Int32) -> Void) {
        let taken = lock.withLock { () -> (bytes: [UInt8], failed: Bool)? in
            guard case .add(let buffer) = handles[handle] else { return nil }
            let bytes = buffer.bytes
            buffer.bytes = []
            return (bytes, buffer.failure != nil)
        }
        guard let taken else { return reply(0) }  // not `.add`: nothing to flush
        if taken.failed { return reply(EINVAL) }
        guard !taken.bytes.isEmpty else { return reply(0) }  // an empty close (e.g. `: > .add`)
        Task.detached { [self] in
            do {
                try await commit(taken.bytes)
                reply(0)
            } catch let error as AddError {
                recordAddError(error, input: taken.bytes)
                reply(EINVAL)
            } catch {
                recordAddError(AddError("\(error)"), input: taken.bytes)
                reply(EINVAL)
            }
        }
    }

    /// Adds what `bytes` hold in any `.add` form (also `POST /` of the mount's HTTP server).
    /// Parses and resolves everything first, so a bad item adds nothing.
    public func commit(_ bytes: [UInt8]) async throws {
        var sources: [(TorrentSource, [UInt8]?)] = []
        for item in try AddInput.parse(bytes) {
            switch item {
            case .magnet(let magnet):
                sources.append((.magnet(magnet), nil))
            case .metainfo(let metainfo, let raw):
                sources.append((.metainfo(metainfo), raw))
            case .path(let path):
                guard let raw = try? PosixFile.read(path, limit: AddInput.maxBytes) else {
                    throw AddError("cannot read \(path)")
                }
                do {
                    sources.append((.metainfo(try Metainfo(bytes: raw)), raw))
                } catch {
                    throw AddError("\(path): not a valid .torrent file: \(error)")
                }
            case .url(let url):
                let raw: [UInt8]
                do {
                    raw = try await session.fetch(url)
                } catch {
                    throw AddError("cannot fetch \(url): \(error)")
                }
                do {
                    sources.append((.metainfo(try Metainfo(bytes: raw)), raw))
                } catch {
                    throw AddError("\(url): not a valid .torrent file: \(error)")
                }
            }
        }
        for (source, raw) in sources { try await add(source, persist: true, torrentBytes: raw) }
    }

    func recordAddError(_ error: AddError, input: [UInt8]) {
        logger.warning("refused .add input", metadata: ["error": "\(error)"])
        let shown = AddInput.looksBencoded(input) ? "(\(input.count) bytes of bencoded data)"
            : AddInput.snippet(String(String(decoding: input.prefix(200), as: UTF8.self).reversed()
                .drop { $0.isWhitespace }.reversed()))
        let record = StatusDocument.RefusedInput(time: ISO8601DateFormatter().string(from: Date()), input: shown,
                                    error: error.description)
        lock.withLock {
            addErrors.append(record)
            if addErrors.count > Self.maxAddErrors { addErrors.removeFirst() }
        }
    }

    /// `truncate`/`setattr` is allowed on `.add` only (shells truncate before writing).
    public func setattr(_ inode: UInt64, size: Int64?) -> Result<NodeAttributes, FSError> {
        lock.withLock {
            guard case .add = nodes[inode] else { return .failure(FSError(nodes[inode] == nil ? ENOENT : EROFS)) }
            return attributes(inode)
        }
    }
}
