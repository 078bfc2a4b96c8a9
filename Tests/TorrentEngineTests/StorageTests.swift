import BitTorrent
import Foundation
import TestSupport
import Testing
@testable import TorrentEngine

/// a.txt 10 000 | pad 6 384 | dir/b.bin 20 000 | empty 0 | dir/c 5 000: 41 384 bytes,
/// three 16 KiB pieces. Offsets: a 0, pad 10 000, b 16 384, empty 36 384, c 36 384.
private let layout = [
    InfoFixture.File(["a.txt"], 10000),
    InfoFixture.File([".pad", "6384"], 6384, attr: "p"),
    InfoFixture.File(["dir", "b.bin"], 20000),
    InfoFixture.File(["empty"], 0),
    InfoFixture.File(["dir", "c"], 5000),
]
private let total = 41384
private let padRange = 10000..<16384

private func contents(_ path: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path).map(Array.init)
}

/// The error `body` throws, or nil.
private func engineError<T>(_ body: () throws(EngineError) -> T) -> EngineError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

@Suite("File storage")
struct FileStorageTests {
    let scratch: Scratch
    let info: InfoDictionary
    let data: [UInt8]

    init() throws {
        scratch = try Scratch()
        info = try InfoFixture.info(name: "multi", files: layout)
        var generator = SplitMix64(seed: 0x5707)
        data = generator.bytes(total)
    }

    var base: String { scratch.root.path + "/multi" }

    /// What reading the whole torrent back must give: the data with the padding zeroed.
    var expected: [UInt8] {
        var out = data
        for index in padRange { out[index] = 0 }
        return out
    }

    @Test("the layout is what the tests assume")
    func layoutCheck() {
        #expect(info.files.map(\.offset) == [0, 10000, 16384, 36384, 36384])
        #expect(info.files.map(\.isPadding) == [false, true, false, false, false])
        #expect(info.lengths.pieceCount == 3)
    }

    @Test("release punches a hole: the space is freed, the range reads as zeros, the size and the rest stay")
    func releaseFreesSpace() throws {
        let big = try InfoFixture.info(name: "big", files: [.init(["f.bin"], 16 * 16384)])
        let storage = FileStorage(root: scratch.root.path, info: big)
        defer { storage.close() }
        var generator = SplitMix64(seed: 3)
        let bytes = generator.bytes(16 * 16384)
        try storage.write(bytes, at: 0)
        try storage.sync()
        let path = scratch.root.path + "/big/f.bin"
        func allocated() -> Int64 {
            var info = stat()
            _ = stat(path, &info)
            return Int64(info.st_blocks) * 512
        }
        let before = allocated()
        try storage.release(at: 4 * 16384, length: 4 * 16384)
        #expect(before - allocated() == 4 * 16384, "the released range's blocks are freed")
        #expect(try storage.read(at: 4 * 16384, length: 4 * 16384) == [UInt8](repeating: 0, count: 4 * 16384))
        #expect(try storage.read(at: 0, length: 4 * 16384) == Array(bytes[0..<(4 * 16384)]))
        #expect(try storage.read(at: 8 * 16384, length: 8 * 16384) == Array(bytes[(8 * 16384)...]))
        let state = storage.fileStates().first ?? nil
        #expect(state?.size == Int64(16 * 16384), "the file keeps its size")
    }

    @Test("writing the whole stream in pieces puts every byte in its file")
    func wholeStream() throws {
        let storage = FileStorage(root: scratch.root.path, info: info)
        defer { storage.close() }
        for piece in info.lengths.pieces {
            let range = info.lengths.byteRange(piece)
            try storage.write(Array(data[Int(range.lowerBound)..<Int(range.upperBound)]), at: range.lowerBound)
        }
        try storage.sync()
        #expect(storage.path(of: 2) == base + "/dir/b.bin")
        #expect(contents(base + "/a.txt") == Array(data[0..<10000]))
        #expect(contents(base + "/dir/b.bin") == Array(data[16384..<36384]))
        #expect(contents(base + "/dir/c") == Array(data[36384..<41384]))
        #expect(try storage.read(at: 0, length: total) == expected)
        // Any window reads back the same bytes.
        var generator = SplitMix64(seed: 1)
        for _ in 0..<50 {
            let start = Int(generator.next() % UInt64(total))
            let length = Int(generator.next() % UInt64(total - start + 1))
            #expect(try storage.read(at: Int64(start), length: length) == Array(expected[start..<(start + length)]))
        }
    }

    @Test("pad bytes never create a file or directory and read as zeros")
    func padding() throws {
        let storage = FileStorage(root: scratch.root.path, info: info)
        defer { storage.close() }
        // A write entirely inside the padding touches nothing.
        try storage.write([UInt8](repeating: 0xEE, count: 1000), at: 11000)
        #expect(!FileManager.default.fileExists(atPath: base))
        // Reading inside the padding needs no file at all.
        #expect(try storage.read(at: 10000, length: 6384) == [UInt8](repeating: 0, count: 6384))
        // A write spanning a → pad → b fills a's tail and b's head only.
        try storage.write(Array(data[9000..<17000]), at: 9000)
        #expect(!FileManager.default.fileExists(atPath: base + "/.pad"))
        let a = try #require(contents(base + "/a.txt"))
        #expect(a.count == 10000)
        #expect(Array(a[9000...]) == Array(data[9000..<10000]))
        #expect(a[0..<9000].allSatisfy { $0 == 0 }, "sparse head")
        #expect(contents(base + "/dir/b.bin") == Array(data[16384..<17000]))
        #expect(try storage.read(at: 9000, length: 8000) == Array(expected[9000..<17000]))
    }

    @Test("writes spanning b → empty → c land in the right files")
    func acrossEmptyFile() throws {
        let storage = FileStorage(root: scratch.root.path, info: info)
        defer { storage.close() }
        try storage.write(Array(data[36000..<37000]), at: 36000)
        let b = try #require(contents(base + "/dir/b.bin"))
        #expect(b.count == 20000)
        #expect(Array(b[(36000 - 16384)...]) == Array(data[36000..<36384]))
        #expect(contents(base + "/dir/c") == Array(data[36384..<37000]))
        #expect(try storage.read(at: 36000, length: 1000) == Array(data[36000..<37000]))
    }

    @Test("reading a file that does not exist is EngineError.io naming it")
    func missingFile() {
        let storage = FileStorage(root: scratch.root.path, info: info)
        defer { storage.close() }
        let error = engineError { () throws(EngineError) in try storage.read(at: 16384, length: 10) }
        #expect(error == .io(operation: "open", path: base + "/dir/b.bin", errno: ENOENT))
        // The error names the first missing file of a spanning read.
        let spanning = engineError { () throws(EngineError) in try storage.read(at: 9990, length: 20) }
        #expect(spanning == .io(operation: "open", path: base + "/a.txt", errno: ENOENT))
    }

    @Test("a short file reads as zeros past its end")
    func shortFile() throws {
        let storage = FileStorage(root: scratch.root.path, info: info)
        defer { storage.close() }
        try FileManager.default.createDirectory(atPath: base + "/dir", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: base + "/dir/c", contents: Data([1, 2, 3])))
        #expect(try storage.read(at: 36384, length: 5) == [1, 2, 3, 0, 0])
    }

    @Test("fileStates: one per visible file, nil where missing")
    func fileStates() throws {
        let storage = FileStorage(root: scratch.root.path, info: info)
        defer { storage.close() }
        #expect(storage.fileStates() == [nil, nil, nil, nil])
        try storage.write(Array(data[36384..<41384]), at: 36384)
        let states = storage.fileStates()
        #expect(states.count == 4)  // a, b, empty, c: the pad file is not listed
        #expect(states[0] == nil)
        #expect(states[3]?.size == 5000)
        #expect((states[3]?.mtimeNanoseconds ?? 0) > 0)
        try storage.write([1], at: 0)
        #expect(storage.fileStates()[0]?.size == 1)
    }

    @Test("a single-file torrent lives at root/name")
    func singleFile() throws {
        var root = BDictionary()
        root["length"] = 20000
        root["name"] = "one.bin"
        root["piece length"] = 16384
        root["pieces"] = .bytes([UInt8](repeating: 1, count: 40))
        let single = try InfoDictionary(.dictionary(root))
        let storage = FileStorage(root: scratch.root.path, info: single)
        defer { storage.close() }
        #expect(storage.path(of: 0) == scratch.root.path + "/one.bin")
        try storage.write(Array(data[0..<20000]), at: 0)
        #expect(contents(scratch.root.path + "/one.bin") == Array(data[0..<20000]))
        #expect(storage.fileStates().count == 1)
    }

    @Test("close then use again reopens the files")
    func reopen() throws {
        let storage = FileStorage(root: scratch.root.path, info: info)
        try storage.write([9, 8, 7], at: 0)
        storage.close()
        #expect(try storage.read(at: 0, length: 3) == [9, 8, 7])
        storage.close()
        storage.close()  // twice is harmless
    }
}

@Suite("Memory and faulty storage")
struct MemoryStorageTests {
    @Test("memory storage reads what was written, zeros elsewhere")
    func memory() throws {
        let storage = MemoryStorage(totalLength: 100)
        try storage.write([1, 2, 3], at: 10)
        try storage.write([4], at: 99)
        #expect(try storage.read(at: 9, length: 5) == [0, 1, 2, 3, 0])
        #expect(try storage.read(at: 99, length: 1) == [4])
        #expect(try storage.read(at: 0, length: 0) == [])
        #expect(storage.fileStates().isEmpty)
        try storage.sync()
    }

    @Test("failing writes throw and write nothing; failing reads throw")
    func failing() throws {
        let inner = MemoryStorage(totalLength: 10)
        var faults = FaultyStorage.Faults()
        faults.failWrites = true
        let storage = FaultyStorage(inner, faults: faults)
        let writeError = engineError { () throws(EngineError) in try storage.write([1, 2], at: 0) }
        guard case .io(let operation, _, let code)? = writeError else {
            Issue.record("expected an I/O error, got \(String(describing: writeError))")
            return
        }
        #expect(operation == "write")
        #expect(code == ENOSPC)
        #expect(try inner.read(at: 0, length: 2) == [0, 0])
        #expect(try storage.read(at: 0, length: 2) == [0, 0], "reads still work")
        faults = FaultyStorage.Faults()
        faults.failReads = true
        storage.setFaults(faults)
        try storage.write([5, 6], at: 0)
        #expect(try inner.read(at: 0, length: 2) == [5, 6])
        guard case .io("read", _, EIO)? = engineError({ () throws(EngineError) in try storage.read(at: 0, length: 2) }) else {
            Issue.record("expected EIO on read")
            return
        }
        storage.setFaults(FaultyStorage.Faults())
        #expect(try storage.read(at: 0, length: 2) == [5, 6])
    }

    @Test("corrupting reads flip one byte in the middle; the stored bytes stay intact")
    func corrupting() throws {
        let inner = MemoryStorage(totalLength: 10)
        try inner.write([1, 2, 3, 4, 5], at: 0)
        var faults = FaultyStorage.Faults()
        faults.corruptReads = true
        let storage = FaultyStorage(inner, faults: faults)
        #expect(try storage.read(at: 0, length: 5) == [1, 2, 3 ^ 0xFF, 4, 5])
        #expect(try storage.read(at: 0, length: 0) == [])
        #expect(try inner.read(at: 0, length: 5) == [1, 2, 3, 4, 5])
    }

    @Test("faulty storage over files passes fileStates through")
    func passThrough() throws {
        let scratch = try Scratch()
        let info = try InfoFixture.info(name: "multi", files: layout)
        let storage = FaultyStorage(FileStorage(root: scratch.root.path, info: info))
        defer { storage.close() }
        try storage.write([1], at: 0)
        #expect(storage.fileStates().count == 4)
        #expect(storage.fileStates()[0]?.size == 1)
    }
}
