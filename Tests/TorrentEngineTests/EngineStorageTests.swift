import BitTorrent
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing
@testable import TorrentEngine

/// Two sessions in process on 127.0.0.1, the downloader's storage injected through the
/// session configuration: a storage that fails writes pauses the torrent, which resumes
/// once writes work again; what it then serves through a streaming reader is the source.
@Suite("Engine over injected storage")
struct EngineStorageTests {
    static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }()

    static func configuration(_ directory: String) -> SessionConfiguration {
        var configuration = SessionConfiguration(dataDirectory: directory)
        configuration.listenHosts = ["127.0.0.1"]
        return configuration
    }

    /// Collects one streaming read's bytes.
    final class Collector: ReadSink {
        let result = Mutex<Result<[UInt8], ReadFailure>?>(nil)
        func data(_ bytes: UnsafeRawBufferPointer) { result.withLock { $0 = .success(Array(bytes)) } }
        func failed(_ failure: ReadFailure) { result.withLock { $0 = .failure(failure) } }
    }

    @Test("failing writes pause the torrent; it completes once they work, and reads give the source bytes")
    func failingWritesPause() async throws {
        let scratch = try Scratch()
        let source = scratch.root.path + "/src/blob"
        var generator = SplitMix64(seed: 77)
        let bytes = generator.bytes(300_000)
        try FileManager.default.createDirectory(atPath: scratch.root.path + "/src", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: source, contents: Data(bytes))
        let metainfo = try TorrentCreator.create(path: source, pieceLength: 32768).metainfo

        let seeder = Session(configuration: Self.configuration(scratch.root.path + "/seed"), logger: Self.logger)
        let seederPort = try await seeder.start()
        var seedOptions = TorrentOptions()
        seedOptions.dataDirectory = scratch.root.path + "/src"
        try await seeder.add(.metainfo(metainfo), options: seedOptions)
        try await seeder.waitForCompletion(metainfo.infoHash)

        var faults = FaultyStorage.Faults()
        faults.failWrites = true
        let storage = FaultyStorage(MemoryStorage(totalLength: metainfo.info.totalLength), faults: faults)
        var configuration = Self.configuration(scratch.root.path + "/leech")
        configuration.makeStorage = { _, _ in storage }
        let leecher = Session(configuration: configuration, logger: Self.logger)
        _ = try await leecher.start()
        var options = TorrentOptions()
        options.peers = [PeerAddress(host: "127.0.0.1", port: UInt16(seederPort))]
        try await leecher.add(.metainfo(metainfo), options: options)

        var paused: TorrentStats?
        for _ in 0..<200 {
            if let stats = await leecher.stats(metainfo.infoHash), stats.state == .paused {
                paused = stats
                break
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect(paused?.error?.contains("cannot store data") == true, "\(String(describing: paused))")
        #expect(paused?.verifiedBytes == 0)

        storage.setFaults(FaultyStorage.Faults())
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await leecher.waitForCompletion(metainfo.infoHash) }
            group.addTask {
                try await Task.sleep(for: .seconds(30))
                throw TorrentFailure(message: "not complete 30 s after writes work again")
            }
            try await group.next()
            group.cancelAll()
        }
        let stats = try #require(await leecher.stats(metainfo.infoHash))
        #expect(stats.state == .seeding && stats.error == nil && stats.verifiedBytes == 300_000)

        let reader = leecher.openReader(metainfo.infoHash, info: metainfo.info, fileIndex: 0)
        let collector = Collector()
        #expect(reader.read(offset: 1000, size: 200_000, sink: collector) == .done)
        #expect(collector.result.withLock { $0 } == .success(Array(bytes[1000..<201_000])))
        reader.close()

        await leecher.shutdown()
        await seeder.shutdown()
    }
}
