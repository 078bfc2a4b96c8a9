import BitTorrent
import Crypto
import Foundation
import TestSupport
import Testing
import TorrentEngine

/// A scratch directory holding one item named `content`, removed when the test ends.
final class Scratch {
    let root: URL
    var content: URL { root.appendingPathComponent("content") }
    var path: String { content.path }

    init() throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("torrentfs-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// Writes a file below `content` (or `content` itself for an empty path).
    func write(_ relative: [String], _ bytes: [UInt8]) throws {
        let url = relative.reduce(content) { $0.appendingPathComponent($1) }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }

    func makeDirectory(_ relative: [String] = []) throws {
        let url = relative.reduce(content) { $0.appendingPathComponent($1) }
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
}

/// Checks every piece hash of `result` against SHA-1 (swift-crypto) of `data`, the
/// expected concatenation of the files.
func verifyPieces(_ result: TorrentCreator.Result, data: [UInt8], pieceLength: Int,
                  sourceLocation: SourceLocation = #_sourceLocation) {
    let info = result.metainfo.info
    #expect(info.pieceLength == pieceLength, sourceLocation: sourceLocation)
    #expect(info.totalLength == Int64(data.count), sourceLocation: sourceLocation)
    let expectedCount = (data.count + pieceLength - 1) / pieceLength
    #expect(info.pieceHashes.count == expectedCount, sourceLocation: sourceLocation)
    guard info.pieceHashes.count == expectedCount else { return }
    var mismatches: [Int] = []
    data.withUnsafeBytes { raw in
        for index in 0..<expectedCount {
            let start = index * pieceLength
            let end = min(data.count, start + pieceLength)
            let digest = Array(Insecure.SHA1.hash(data: UnsafeRawBufferPointer(rebasing: raw[start..<end])))
            if info.pieceHashes[index].bytes != digest { mismatches.append(index) }
        }
    }
    #expect(mismatches.isEmpty, "pieces with wrong hashes: \(mismatches.prefix(10))", sourceLocation: sourceLocation)
    // What the creator returns is exactly what its bytes parse to.
    #expect((try? Metainfo(bytes: result.torrent)) == result.metainfo, sourceLocation: sourceLocation)
}

@Suite("TorrentCreator")
struct TorrentCreatorTests {
    @Test("single file with an odd size")
    func singleFile() throws {
        let scratch = try Scratch()
        var generator = SplitMix64(seed: 1)
        let data = generator.bytes(100_003)
        try scratch.write([], data)
        let result = try TorrentCreator.create(path: scratch.path, pieceLength: 16384)
        verifyPieces(result, data: data, pieceLength: 16384)
        #expect(result.metainfo.info.isSingleFile)
        #expect(result.metainfo.info.name == "content")
        #expect(result.metainfo.info.files == [TorrentFile(path: ["content"], length: 100_003, offset: 0)])
    }

    @Test("a file of exactly one piece", arguments: [16384, 32768])
    func exactlyOnePiece(pieceLength: Int) throws {
        let scratch = try Scratch()
        var generator = SplitMix64(seed: 2)
        let data = generator.bytes(pieceLength)
        try scratch.write([], data)
        let result = try TorrentCreator.create(path: scratch.path, pieceLength: pieceLength)
        verifyPieces(result, data: data, pieceLength: pieceLength)
        #expect(result.metainfo.info.pieceHashes.count == 1)
    }

    @Test("nested multi-file content with an empty file, in path order")
    func multiFile() throws {
        let scratch = try Scratch()
        var generator = SplitMix64(seed: 3)
        // Written out of order: the creator sorts by name at every level.
        let layout: [([String], Int)] = [
            (["z"], 7),
            (["sub", "deeper", "c"], 16384),
            (["a.txt"], 1000),
            (["sub", "b.bin"], 50001),
            (["sub", "empty"], 0),
            (["B-upper"], 3),
        ]
        var contents: [[String]: [UInt8]] = [:]
        for (path, size) in layout {
            let bytes = generator.bytes(size)
            contents[path] = bytes
            try scratch.write(path, bytes)
        }
        let order: [[String]] = [["B-upper"], ["a.txt"], ["sub", "b.bin"], ["sub", "deeper", "c"], ["sub", "empty"], ["z"]]
        let data = order.flatMap { contents[$0]! }
        let result = try TorrentCreator.create(path: scratch.path, pieceLength: 32768)
        verifyPieces(result, data: data, pieceLength: 32768)
        let info = result.metainfo.info
        #expect(!info.isSingleFile)
        #expect(info.name == "content")
        #expect(info.files.map(\.path) == order)
        #expect(info.files.map(\.length) == order.map { Int64(contents[$0]!.count) })
        var offset: Int64 = 0
        for file in info.files {
            #expect(file.offset == offset)
            offset += file.length
        }
    }

    @Test("a directory holding one file is a multi-file torrent")
    func directoryWithOneFile() throws {
        let scratch = try Scratch()
        try scratch.write(["only"], [1, 2, 3])
        let result = try TorrentCreator.create(path: scratch.path + "/")
        verifyPieces(result, data: [1, 2, 3], pieceLength: 16384)
        #expect(!result.metainfo.info.isSingleFile)
        #expect(result.metainfo.info.name == "content")
        #expect(result.metainfo.info.files.map(\.path) == [["only"]])
    }

    @Test("many chunks per thread, with file boundaries inside pieces and chunks")
    func severalBatches() throws {
        let scratch = try Scratch()
        var generator = SplitMix64(seed: 4)
        let sizes = [(13 << 20) + 1, (20 << 20) + 3, 7 << 20]  // 40 MiB + 4 bytes
        var data: [UInt8] = []
        for (index, size) in sizes.enumerated() {
            let bytes = generator.bytes(size)
            try scratch.write(["part\(index)"], bytes)
            data += bytes
        }
        #expect(data.count > 4 * TorrentCreator.chunkBytes)
        let result = try TorrentCreator.create(path: scratch.path, pieceLength: 16384)
        verifyPieces(result, data: data, pieceLength: 16384)
        #expect(result.metainfo.info.pieceHashes.count == 2561)
    }

    @Test("a single 40 MiB file in 16 KiB pieces")
    func largeSingleFile() throws {
        let scratch = try Scratch()
        var generator = SplitMix64(seed: 5)
        let data = generator.bytes(40 << 20)
        try scratch.write([], data)
        let result = try TorrentCreator.create(path: scratch.path, pieceLength: 16384, threads: 3)
        verifyPieces(result, data: data, pieceLength: 16384)
        #expect(result.metainfo.info.pieceHashes.count == 2560)
    }

    @Test("pieces larger than a batch")
    func pieceLargerThanBatch() throws {
        let scratch = try Scratch()
        var generator = SplitMix64(seed: 6)
        let data = generator.bytes((64 << 20) + 5)
        try scratch.write([], data)
        let result = try TorrentCreator.create(path: scratch.path, pieceLength: 64 << 20, threads: 2)
        verifyPieces(result, data: data, pieceLength: 64 << 20)
    }

    @Test("same input, same bytes: deterministic without a creation date")
    func deterministic() throws {
        var generator = SplitMix64(seed: 7)
        let files: [([String], [UInt8])] = [
            (["x", "1"], generator.bytes(30000)), (["y"], generator.bytes(12345)), (["x", "0"], generator.bytes(1)),
        ]
        var torrents: [[UInt8]] = []
        for _ in 0..<2 {
            let scratch = try Scratch()  // different absolute paths
            for (path, bytes) in files { try scratch.write(path, bytes) }
            torrents.append(try TorrentCreator.create(path: scratch.path, pieceLength: 16384).torrent)
        }
        #expect(torrents[0] == torrents[1])
        #expect(try Bencode.decode(torrents[0])["creation date"] == nil)
    }

    @Test("1 and 4 threads give identical torrents")
    func threadCounts() throws {
        let scratch = try Scratch()
        var generator = SplitMix64(seed: 8)
        let data = generator.bytes(3 << 20 | 12345)
        try scratch.write(["a"], data)
        try scratch.write(["b"], Array(data.prefix(70000)))
        let one = try TorrentCreator.create(path: scratch.path, pieceLength: 16384, threads: 1)
        let four = try TorrentCreator.create(path: scratch.path, pieceLength: 16384, threads: 4)
        #expect(one.torrent == four.torrent)
        #expect(one.metainfo.infoHash == four.metainfo.infoHash)
        verifyPieces(four, data: data + data.prefix(70000), pieceLength: 16384)
    }

    @Test("automatic piece length and options reach the torrent")
    func optionsAndAutomaticLength() throws {
        let scratch = try Scratch()
        try scratch.write(["f"], [UInt8](repeating: 9, count: 50000))
        var options = TorrentBuilder.Options()
        options.trackers = [["udp://t:1"], ["http://u/"]]
        options.webSeeds = ["http://seed/"]
        options.isPrivate = true
        options.comment = "c"
        options.creationDate = 1234
        let result = try TorrentCreator.create(path: scratch.path, options: options)
        let metainfo = result.metainfo
        verifyPieces(result, data: [UInt8](repeating: 9, count: 50000), pieceLength: 16384)
        #expect(metainfo.info.isPrivate)
        #expect(metainfo.trackerTiers == [["udp://t:1"], ["http://u/"]])
        #expect(metainfo.webSeeds == ["http://seed/"])
        #expect(metainfo.comment == "c")
        #expect(metainfo.creationDate == 1234)
    }

    // MARK: Failures

    @Test("an empty directory has no content")
    func emptyDirectory() throws {
        let scratch = try Scratch()
        try scratch.makeDirectory(["nested", "deeper"])
        #expect(throws: EngineError.emptyContent(path: scratch.path)) {
            try TorrentCreator.create(path: scratch.path)
        }
    }

    @Test("only empty files is no content either")
    func onlyEmptyFiles() throws {
        let scratch = try Scratch()
        try scratch.write(["a"], [])
        try scratch.write(["sub", "b"], [])
        #expect(throws: EngineError.emptyContent(path: scratch.path)) {
            try TorrentCreator.create(path: scratch.path)
        }
        let single = try Scratch()
        try single.write([], [])
        #expect(throws: EngineError.emptyContent(path: single.path)) {
            try TorrentCreator.create(path: single.path)
        }
    }

    @Test("a missing path is an I/O error naming the path")
    func missingPath() throws {
        let scratch = try Scratch()
        let missing = scratch.root.appendingPathComponent("does-not-exist").path
        #expect(throws: EngineError.io(operation: "stat", path: missing, errno: ENOENT)) {
            try TorrentCreator.create(path: missing)
        }
    }

    struct WrongOutcome: Error {}

    /// Metainfo refuses pieces over 256 MiB, so the creator must refuse them too instead of
    /// hashing, building a torrent it cannot parse, and stopping the process.
    @Test("a piece length over the 256 MiB metainfo limit is refused, not a crash")
    func pieceLengthOverLimit() async throws {
        // The scratch belongs to this process: a crashing child could not clean it up.
        let scratch = try Scratch()
        try scratch.write([], [1, 2, 3])
        let path = scratch.path
        await #expect(processExitsWith: .success) { [path = path as String] in
            do {
                _ = try TorrentCreator.create(path: path, pieceLength: 512 << 20, threads: 1)
            } catch EngineError.invalidPieceLength(512 << 20) {
                return
            }
            throw WrongOutcome()
        }
    }

    @Test("piece lengths that are not positive multiples of 16 KiB are refused", arguments: [0, -16384, 1000, 16385])
    func invalidPieceLength(length: Int) throws {
        let scratch = try Scratch()
        try scratch.write([], [1])
        #expect(throws: EngineError.invalidPieceLength(length)) {
            try TorrentCreator.create(path: scratch.path, pieceLength: length)
        }
    }
}
