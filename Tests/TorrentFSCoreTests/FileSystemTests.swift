import BitTorrent
import Foundation
import Testing
import TestSupport
import TorrentEngine
@testable import TorrentFSCore

/// The filesystem suite, in process: the same behaviour the mount tests check through
/// /dev/fuse (Tests/interop/test_mount.py), driven through `TorrentFileSystem` directly.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct FileSystemTests {
    static let multi: [([String], Int)] = [(["big.bin"], 3 << 20), (["docs", "small.txt"], 10_000),
                                           (["docs", "other.bin"], 2 << 20)]

    @Test func streamsFromASeederThroughMagnet() async throws {
        let harness = try Harness(name: "multi", files: Self.multi, pieceLength: 64 << 10)
        try await harness.startSeeder()
        try await harness.mount()
        do {
            #expect(await harness.add(harness.magnet + "\n") == 0)
            // The folder is there at once, named from `dn`; its listing waits for the metadata.
            #expect(try await harness.list(TorrentFileSystem.rootInode).get().contains("multi"))
            let folder = try await harness.lookup(TorrentFileSystem.rootInode, "multi").get()
            #expect(try await harness.list(folder.inode).get() == ["big.bin", "docs"])
            let docs = try await harness.lookup(folder.inode, "docs").get()
            #expect(try await harness.list(docs.inode).get() == ["other.bin", "small.txt"])

            let big = try await harness.readFile(["multi", "big.bin"])
            #expect(big == harness.contents[["big.bin"]]!)
            // Random reads of another file equal the source.
            let node = try await harness.resolve(["multi", "docs", "other.bin"]).get()
            #expect(node.size == 2 << 20 && node.permissions == 0o444 && !node.isDirectory)
            let opened = try await harness.open(node.inode).get()
            #expect(opened.keepCache)
            var generator = SplitMix64(seed: 7)
            let source = harness.contents[["docs", "other.bin"]]!
            for _ in 0..<20 {
                let offset = Int(generator.next() % UInt64(source.count))
                let size = Int(generator.next() % 200_000) + 1
                let got = try await harness.read(opened.handle, offset: Int64(offset), size: size).get()
                #expect(got[...] == source[offset..<min(source.count, offset + size)])
            }
            // Past the end: nothing.
            #expect(try await harness.read(opened.handle, offset: Int64(source.count), size: 10).get().isEmpty)
            harness.fs.release(opened.handle)
            let status = try await harness.status()
            let torrents = status["torrents"] as! [[String: Any]]
            #expect(torrents.count == 1 && torrents[0]["folder"] as? String == "multi")
        } catch {
            Issue.record(error)
        }
        await harness.tearDown()
    }

    @Test func readingASmallFileFetchesLittleElse() async throws {
        let harness = try Harness(name: "multi", files: Self.multi, pieceLength: 16 << 10, seed: 2)
        try await harness.startSeeder()
        try await harness.mount()
        do {
            #expect(await harness.add(harness.magnet) == 0)
            let small = try await harness.readFile(["multi", "docs", "small.txt"])
            #expect(small == harness.contents[["docs", "small.txt"]]!)
            // Once nothing is wanted any more, nothing else will be fetched: then count.
            var stats = try #require(await harness.stats())
            for _ in 0..<200 where stats.wantedBytes > 0 {
                try await Task.sleep(for: .milliseconds(10))
                stats = try #require(await harness.stats())
            }
            // The small file spans two 16 KiB pieces; readahead stops at its end.
            #expect(stats.downloaded < 200_000, "downloaded \(stats.downloaded) of \(harness.metainfo.info.totalLength)")
            #expect(stats.state == .idle)
            // Nothing is being fetched any more: nothing wanted, nothing left to wait for.
            #expect(stats.wantedBytes == 0 && stats.eta == 0, "\(stats)")
            #expect(stats.verifiedBytes > 0 && stats.progress == Double(stats.verifiedBytes) / Double(stats.totalSize ?? 1))
        } catch {
            Issue.record(error)
        }
        await harness.tearDown()
    }

    @Test func blockedReadsWaitWithoutBlockingAnythingElseAndCanBeInterrupted() async throws {
        let harness = try Harness(name: "lonely", files: [([], 1 << 20)], pieceLength: 64 << 10, seed: 3)
        try await harness.mount()
        do {
            // The .torrent bytes, no peer: nothing can be fetched.
            #expect(await harness.add(harness.torrentBytes) == 0)
            let file = try await harness.resolve(["lonely", "lonely"]).get()
            #expect(file.size == 1 << 20 && file.allocated == 0)
            let opened = try await harness.open(file.inode).get()
            let first = harness.startRead(opened.handle, offset: 0, size: 4096)
            let second = harness.startRead(opened.handle, offset: 500_000, size: 4096)
            #expect(first.start == .pending && second.start == .pending)
            // Everything else answers at once.
            #expect(try await harness.list(TorrentFileSystem.rootInode).get().contains("lonely"))
            #expect(harness.fs.getattr(file.inode).map(\.size) == .success(1 << 20))
            #expect((try await harness.status()["torrents"] as! [Any]).count == 1)
            // What the reads wait for is what is wanted now; no rate, so no ETA.
            var waitedFor: [String: Any] = [:]
            for _ in 0..<100 {
                waitedFor = try #require((try await harness.status()["torrents"] as! [[String: Any]]).first)
                if (waitedFor["wantedBytes"] as? Int ?? 0) > 0 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect((waitedFor["wantedBytes"] as? Int ?? 0) >= 2 * (64 << 10), "\(waitedFor)")
            #expect(waitedFor["verifiedWantedBytes"] as? Int == 0 && waitedFor["eta"] == nil, "\(waitedFor)")
            #expect(waitedFor["folder"] as? String == "lonely" && waitedFor["progress"] as? Double == 0)
            // The engine has the reads' deadlines and no peer: both are still waiting.
            #expect(!first.reply.isAnswered && !second.reply.isAnswered)
            // Ctrl-C in the reader: EINTR for that read only.
            harness.fs.interrupt(first.request)
            #expect(await first.reply.value() == .failure(FSError(EINTR)))
            #expect(!second.reply.isAnswered)
            // Unmount: EIO at once, and new reads fail too.
            harness.fs.close()
            #expect(await second.reply.value() == .failure(FSError(EIO)))
            #expect(await harness.read(opened.handle, offset: 0, size: 1) == .failure(FSError(EIO)))
            #expect(first.reply.replies == 1 && second.reply.replies == 1)
        } catch {
            Issue.record(error)
        }
        await harness.tearDown()
    }

    @Test func readTimeoutFailsWithEIO() async throws {
        let harness = try Harness(name: "slow", files: [([], 100_000)], pieceLength: 16 << 10, seed: 4)
        harness.options.readTimeout = 0.3
        try await harness.mount()
        do {
            #expect(await harness.add(harness.torrentBytes) == 0)
            let file = try await harness.resolve(["slow", "slow"]).get()
            let opened = try await harness.open(file.inode).get()
            let started = Date()
            #expect(await harness.read(opened.handle, offset: 0, size: 10) == .failure(FSError(EIO)))
            #expect(Date().timeIntervalSince(started) < 3)
        } catch {
            Issue.record(error)
        }
        await harness.tearDown()
    }

    @Test func badInputIsRefusedAndRecorded() async throws {
        let harness = try Harness(name: "x", files: [([], 50_000)], pieceLength: 16 << 10, seed: 5)
        try await harness.mount()
        do {
            #expect(await harness.add("this is not a torrent\n") == EINVAL)
            #expect(await harness.add(Array(harness.torrentBytes.prefix(100))) == EINVAL)
            #expect(await harness.add("magnet:?xt=urn:btih:nothex\n") == EINVAL)
            // One bad line spoils the whole write: nothing is added.
            #expect(await harness.add(harness.metainfo.infoHash.hex + "\nbad line\n") == EINVAL)
            #expect(await harness.add("/nonexistent/file.torrent\n") == EINVAL)
            #expect(try await harness.list(TorrentFileSystem.rootInode).get() == [".add", ".status"])
            let errors = try await harness.status()["addErrors"] as! [[String: Any]]
            #expect(errors.count == 5)
            #expect((errors[1]["error"] as! String).contains("not a valid .torrent"))
            // Still healthy: a good add works.
            #expect(await harness.add(harness.torrentBytes) == 0)
            #expect(try await harness.list(TorrentFileSystem.rootInode).get() == [".add", ".status", "x"])
        } catch {
            Issue.record(error)
        }
        await harness.tearDown()
    }

    @Test func addingTwiceMergesPeersIntoOneFolder() async throws {
        let harness = try Harness(name: "twice", files: [([], 300_000)], pieceLength: 16 << 10, seed: 6)
        try await harness.startSeeder()
        try await harness.mount()
        do {
            #expect(await harness.add(harness.torrentBytes) == 0)
            let file = try await harness.resolve(["twice", "twice"]).get()
            let opened = try await harness.open(file.inode).get()
            let read = harness.startRead(opened.handle, offset: 100_000, size: 50_000)
            #expect(read.start == .pending)  // no peer known yet
            #expect(await harness.add(harness.metainfo.infoHash.hex + "\n" + harness.magnet + "\n") == 0)
            let bytes = try await read.reply.value().get()
            #expect(bytes[...] == harness.contents[["twice"]]![100_000..<150_000])
            #expect(try await harness.list(TorrentFileSystem.rootInode).get() == [".add", ".status", "twice"])
        } catch {
            Issue.record(error)
        }
        await harness.tearDown()
    }

    @Test(arguments: [false, true])
    func rmdirRemovesTheTorrent(removeData: Bool) async throws {
        let harness = try Harness(name: "gone", files: [([], 200_000)], pieceLength: 16 << 10, seed: 8)
        harness.options.removeData = removeData
        try await harness.startSeeder()
        try await harness.mount()
        do {
            #expect(await harness.add(harness.magnet) == 0)
            #expect(try await harness.readFile(["gone", "gone"]) == harness.contents[["gone"]]!)
            let dataDirectory = harness.fs.dataDirectory(for: harness.metainfo.infoHash)
            #expect(FileManager.default.fileExists(atPath: dataDirectory + "/gone"))
            let code = await withCheckedContinuation { continuation in
                harness.fs.rmdir(parent: TorrentFileSystem.rootInode, name: "gone") { continuation.resume(returning: $0) }
            }
            #expect(code == 0)
            #expect(try await harness.list(TorrentFileSystem.rootInode).get() == [".add", ".status"])
            #expect(await harness.stats() == nil)
            #expect(FileManager.default.fileExists(atPath: dataDirectory + "/gone") == !removeData)
            // Not there after a remount either.
            await harness.unmount()
            try await harness.mount()
            #expect(try await harness.list(TorrentFileSystem.rootInode).get() == [".add", ".status"])
        } catch {
            Issue.record(error)
        }
        await harness.tearDown()
    }

    @Test func remountServesVerifiedDataWithoutPeersAndNothingElse() async throws {
        let harness = try Harness(name: "keep", files: [(["a.bin"], 400_000), (["b.bin"], 400_000)],
                                  pieceLength: 16 << 10, seed: 9)
        harness.options.readTimeout = 0.5
        harness.options.readahead = 0
        try await harness.startSeeder()
        try await harness.mount()
        do {
            #expect(await harness.add(harness.magnet) == 0)
            #expect(try await harness.readFile(["keep", "a.bin"]) == harness.contents[["a.bin"]]!)
            await harness.stopSeeder()
            await harness.unmount()
            try await harness.mount()
            #expect(try await harness.list(TorrentFileSystem.rootInode).get() == [".add", ".status", "keep"])
            // Wait for the check of the data on disk, then read with no peer anywhere.
            #expect(try await harness.readFile(["keep", "a.bin"]) == harness.contents[["a.bin"]]!)
            let b = try await harness.resolve(["keep", "b.bin"]).get()
            let opened = try await harness.open(b.inode).get()
            // b.bin's first piece shares bytes with a.bin's last: ask beyond it.
            #expect(await harness.read(opened.handle, offset: 100_000, size: 1000) == .failure(FSError(EIO)))
        } catch {
            Issue.record(error)
        }
        await harness.tearDown()
    }

    @Test func treeAttributesAndRefusals() async throws {
        let harness = try Harness(name: "attrs", files: [(["d", "f.txt"], 20_000), (["g.txt"], 5)],
                                  pieceLength: 16 << 10, seed: 10)
        try await harness.mount()
        do {
            #expect(await harness.add(harness.torrentBytes) == 0)
            let root = harness.fs.getattr(TorrentFileSystem.rootInode)
            #expect(root.map(\.permissions) == .success(0o555))
            #expect(harness.fs.getattr(TorrentFileSystem.addInode).map(\.permissions) == .success(0o644))
            let folder = try await harness.resolve(["attrs"]).get()
            #expect(folder.isDirectory && folder.permissions == 0o555)
            let file = try await harness.resolve(["attrs", "d", "f.txt"]).get()
            #expect(file.size == 20_000 && file.permissions == 0o444)
            #expect(await harness.lookup(folder.inode, "missing") == .failure(FSError(ENOENT)))
            #expect(await harness.open(file.inode, flags: O_WRONLY) == .failure(FSError(EACCES)))
            #expect(harness.fs.refuseChange(parent: folder.inode) == EROFS)
            #expect(harness.fs.setattr(file.inode, size: 0) == .failure(FSError(EROFS)))
            #expect(harness.fs.listxattr(file.inode) == .success(TorrentFileSystem.xattrNames))
            func xattr(_ inode: UInt64, _ name: String) async -> String? {
                await withCheckedContinuation { continuation in
                    harness.fs.getxattr(inode, name: name) {
                        continuation.resume(returning: (try? $0.get()).map { String(decoding: $0, as: UTF8.self) })
                    }
                }
            }
            #expect(await xattr(folder.inode, "user.torrentfs.infohash") == harness.metainfo.infoHash.hex)
            #expect(await xattr(file.inode, "user.torrentfs.progress") == "0.0000")
            #expect(await xattr(file.inode, "user.torrentfs.magnet")?.hasPrefix("magnet:?xt=urn:btih:") == true)
            #expect(await xattr(file.inode, "user.torrentfs.peers") == "0")
            #expect(await xattr(file.inode, "user.other") == nil)
            // rmdir of something that is not a torrent folder.
            let code = await withCheckedContinuation { continuation in
                harness.fs.rmdir(parent: folder.inode, name: "d") { continuation.resume(returning: $0) }
            }
            #expect(code == EROFS)
        } catch {
            Issue.record(error)
        }
        await harness.tearDown()
    }

    @Test func aTorrentFileCompletesAMagnetWaitingForMetadata() async throws {
        let harness = try Harness(name: "late", files: [(["a"], 30_000), (["b"], 40_000)], pieceLength: 16 << 10, seed: 11)
        try await harness.mount()
        do {
            // No peer: the metadata cannot come from the swarm.
            #expect(await harness.add("magnet:?xt=urn:btih:\(harness.metainfo.infoHash.hex)&dn=Waiting\n") == 0)
            let folder = try await harness.lookup(TorrentFileSystem.rootInode, "Waiting").get()
            let listing = Task { await harness.list(folder.inode) }
            // The listing is waiting for the metadata (observed, not assumed after a sleep).
            try await harness.waitForMetadataWaiters(harness.metainfo.infoHash, count: 1)
            #expect(await harness.add(harness.torrentBytes) == 0)
            #expect(try await listing.value.get() == ["a", "b"])
            #expect(try await harness.list(TorrentFileSystem.rootInode).get() == [".add", ".status", "late"])
            let stats = try #require(await harness.stats())
            #expect(stats.totalSize == 70_000)
        } catch {
            Issue.record(error)
        }
        await harness.tearDown()
    }

    @Test func readingAddGivesAnEmptyFile() async throws {
        let harness = try Harness(name: "e", files: [([], 10)], pieceLength: 16 << 10, seed: 12)
        try await harness.mount()
        let opened = try await harness.open(TorrentFileSystem.addInode).get()
        #expect(await harness.read(opened.handle, offset: 0, size: 100) == .success([]))
        harness.fs.release(opened.handle)
        await harness.tearDown()
    }

    @Test func listingsWaitingForMetadataFailWhenTheTorrentGoesOrTimeOut() async throws {
        let harness = try Harness(name: "w", files: [([], 10)], pieceLength: 16 << 10, seed: 13)
        harness.options.metadataTimeout = 0.3
        try await harness.mount()
        do {
            #expect(await harness.add("magnet:?xt=urn:btih:\(harness.metainfo.infoHash.hex)&dn=Gone\n") == 0)
            let folder = try await harness.lookup(TorrentFileSystem.rootInode, "Gone").get()
            // No peer: the listing times out with EAGAIN.
            #expect(await harness.list(folder.inode) == .failure(FSError(EAGAIN)))
            // Removed while a listing waits: ENOENT at once.
            let waiting = Task { await harness.list(folder.inode) }
            try await harness.waitForMetadataWaiters(harness.metainfo.infoHash, count: 1)
            let code = await withCheckedContinuation { continuation in
                harness.fs.rmdir(parent: TorrentFileSystem.rootInode, name: "Gone") { continuation.resume(returning: $0) }
            }
            #expect(code == 0)
            #expect(await waiting.value == .failure(FSError(ENOENT)))
        } catch {
            Issue.record(error)
        }
        await harness.tearDown()
    }

    @Test func sameNamesAreDisambiguatedAndControlNamesAvoided() async throws {
        let first = try Harness(name: "same", files: [([], 1000)], pieceLength: 16 << 10, seed: 21)
        let second = try Harness(name: "same", files: [([], 2000)], pieceLength: 16 << 10, seed: 22)
        let control = try Harness(name: ".status", files: [([], 3000)], pieceLength: 16 << 10, seed: 23)
        try await first.mount()
        do {
            #expect(await first.add(first.torrentBytes) == 0)
            #expect(await first.add(second.torrentBytes) == 0)
            #expect(await first.add(control.torrentBytes) == 0)
            #expect(try await first.list(TorrentFileSystem.rootInode).get() == [".add", ".status", "_.status", "same", "same (2)"])
            #expect(try await first.resolve(["same (2)", "same"]).get().size == 2000)
            #expect(try await first.resolve(["_.status", ".status"]).get().size == 3000)
        } catch {
            Issue.record(error)
        }
        await first.tearDown()
        await second.tearDown()
        await control.tearDown()
    }
}
