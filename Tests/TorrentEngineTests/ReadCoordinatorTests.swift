import BitTorrent
import Dispatch
import Logging
import Synchronization
import TestSupport
import Testing
@testable import TorrentEngine

/// Streaming reads driven without a session: a memory storage, a clock the test sets, and
/// the deadline changes the engine would receive recorded in order.
@Suite("Read coordinator")
struct ReadCoordinatorTests {
    static let ms: Int64 = 1_000_000
    /// Two files over seven 16 KiB pieces: a 40 000 bytes, b 60 000 bytes.
    static let files: [InfoFixture.File] = [.init(["a"], 40_000), .init(["b"], 60_000)]
    static let hash = InfoHash(Array(repeating: 7, count: 20))!

    let data: [UInt8]
    let info: InfoDictionary
    let storage: MemoryStorage
    let recorder = Recorder()
    let coordinator: ReadCoordinator

    /// The clock the coordinator reads, the deadline changes it sent, the pieces it lost.
    final class Recorder: Sendable {
        let now = Mutex<Int64>(1_000 * 1_000_000)
        let sent = Mutex<[String]>([])
        let lost = Mutex<[Int]>([])
    }

    init() throws {
        var generator = SplitMix64(seed: 42)
        data = generator.bytes(100_000)
        // Real piece hashes: pieces are read back and checked the first time they are served.
        let bytes = data
        let hashes = stride(from: 0, to: 100_000, by: 16384).map { PieceHasher.digest(Array(bytes[$0..<min($0 + 16384, 100_000)])) }
        info = try InfoDictionary(InfoFixture.value(name: "t", files: Self.files, hashes: hashes))
        storage = MemoryStorage(totalLength: 100_000)
        try storage.write(data, at: 0)
        let recorder = recorder
        coordinator = ReadCoordinator(logger: Logger(label: "test"), clock: { recorder.now.withLock { $0 } },
                                      sendDeadlines: { _, changes in recorder.sent.withLock { $0 += DeadlineTableTests.render(changes) } },
                                      piecesLost: { _, pieces in recorder.lost.withLock { $0 += pieces } })
    }

    /// Records the one answer a read gets.
    final class Sink: ReadSink {
        let answer = Mutex<Result<[UInt8], ReadFailure>?>(nil)
        let done = DispatchSemaphore(value: 0)

        func data(_ bytes: UnsafeRawBufferPointer) { finish(.success(Array(bytes))) }
        func failed(_ failure: ReadFailure) { finish(.failure(failure)) }

        private func finish(_ result: Result<[UInt8], ReadFailure>) {
            answer.withLock {
                precondition($0 == nil, "a read was answered twice")
                $0 = result
            }
            done.signal()
        }

        /// The answer, waiting up to 5 s for it.
        func wait() -> Result<[UInt8], ReadFailure>? {
            _ = done.wait(timeout: .now() + 5)
            return answer.withLock { $0 }
        }
    }

    func have(_ pieces: [Int]) -> Bitfield {
        var bits = Bitfield(count: 7)
        for piece in pieces { bits[piece] = true }
        return bits
    }

    /// The changes sent since the last call.
    func taken() -> [String] {
        recorder.sent.withLock { sent in
            let copy = sent
            sent = []
            return copy
        }
    }

    @Test("verified bytes are served at once, on the caller's thread")
    func warmRead() {
        coordinator.checked(Self.hash, info: info, storage: storage, have: have(Array(0..<7)), hashed: Bitfield(count: 7))
        let reader = coordinator.open(Self.hash, info: info, fileIndex: 1, options: ReaderOptions())
        let sink = Sink()
        #expect(reader.read(offset: 1000, size: 5000, sink: sink) == .done)
        #expect(sink.answer.withLock { $0 } == .success(Array(data[41_000..<46_000])))
        // Past the end: an empty answer; at the end: what is left.
        let past = Sink()
        #expect(reader.read(offset: 60_000, size: 10, sink: past) == .done)
        #expect(past.answer.withLock { $0 } == .success([]))
        let tail = Sink()
        _ = reader.read(offset: 59_990, size: 100, sink: tail)
        #expect(tail.answer.withLock { $0 } == .success(Array(data[99_990...])))
        #expect(taken().isEmpty, "a complete torrent sets no deadline")
    }

    @Test("a read waits for its missing pieces, nearest first, then gets the bytes")
    func coldRead() throws {
        coordinator.checked(Self.hash, info: info, storage: storage, have: have([0, 3]), hashed: Bitfield(count: 7))
        var options = ReaderOptions()
        options.maximumWindow = 0  // no readahead in this test
        let reader = coordinator.open(Self.hash, info: info, fileIndex: 0, options: options)
        let sink = Sink()
        // Bytes 10 000..<40 000 cover pieces 0, 1 and 2; 0 is here.
        guard case .pending = reader.read(offset: 10_000, size: 30_000, sink: sink) else {
            Issue.record("expected a pending read")
            return
        }
        #expect(taken() == ["1:1000000000", "2:1001000000"])
        coordinator.pieceVerified(Self.hash, piece: 2)
        #expect(sink.answer.withLock { $0 } == nil)
        coordinator.pieceVerified(Self.hash, piece: 1)
        #expect(sink.wait() == .success(Array(data[10_000..<40_000])))
        #expect(taken().isEmpty, "arrived pieces need no clearing")
        #expect(coordinator.verifiedBytes(Self.hash, in: 0..<100_000) == 4 * 16384)
        #expect(coordinator.verifiedBytes(Self.hash, in: 100..<200) == 100)
    }

    @Test("readahead follows the reader and is released when the reader closes")
    func readahead() {
        coordinator.checked(Self.hash, info: info, storage: storage, have: have([0]), hashed: Bitfield(count: 7))
        var options = ReaderOptions()
        options.initialWindow = 40_000
        options.maximumWindow = 40_000
        let reader = coordinator.open(Self.hash, info: info, fileIndex: 1, options: options)
        let sink = Sink()
        // File b starts at 40 000 (piece 2); a read of its first byte waits for piece 2,
        // and the 40 000-byte window ahead covers pieces 2–4 (2 is already the read's).
        _ = reader.read(offset: 0, size: 1, sink: sink)
        #expect(taken() == ["2:3000000000", "3:3020000000", "4:3040000000", "2:1000000000"])
        reader.close()
        #expect(sink.wait() == .failure(.cancelled))
        #expect(taken().sorted() == ["2:-", "3:-", "4:-"])
    }

    @Test("cancel, timeout, removal and shutdown each end a waiting read once")
    func failures() {
        coordinator.checked(Self.hash, info: info, storage: storage, have: have([]), hashed: Bitfield(count: 7))
        var options = ReaderOptions()
        options.maximumWindow = 0
        let reader = coordinator.open(Self.hash, info: info, fileIndex: 0, options: options)
        let cancelled = Sink()
        guard case .pending(let id) = reader.read(offset: 0, size: 10, sink: cancelled) else { return }
        reader.cancel(id, failure: .cancelled)
        reader.cancel(id, failure: .cancelled)  // twice: no second answer
        #expect(cancelled.wait() == .failure(.cancelled))
        #expect(taken() == ["0:1000000000", "0:-"])

        options.timeout = 0.05
        let impatient = coordinator.open(Self.hash, info: info, fileIndex: 0, options: options)
        let timedOut = Sink()
        _ = impatient.read(offset: 0, size: 10, sink: timedOut)
        #expect(timedOut.wait() == .failure(.timedOut))

        let removed = Sink()
        _ = reader.read(offset: 0, size: 10, sink: removed)
        coordinator.removed(Self.hash)
        #expect(removed.wait() == .failure(.removed))
        let after = Sink()
        #expect(reader.read(offset: 0, size: 10, sink: after) == .done)
        #expect(after.answer.withLock { $0 } == .failure(.removed))

        let other = coordinator.open(Self.hash, info: info, fileIndex: 0, options: options)
        let stopped = Sink()
        _ = other.read(offset: 0, size: 10, sink: stopped)
        coordinator.shutDown()
        #expect(stopped.wait() == .failure(.shutDown))
    }

    @Test("stored bytes that no longer match their hash never reach a reader: the read fails, the piece is lost")
    func corruptStorage() {
        var faults = FaultyStorage.Faults()
        faults.corruptReads = true
        let faulty = FaultyStorage(storage, faults: faults)
        coordinator.checked(Self.hash, info: info, storage: faulty, have: have(Array(0..<7)), hashed: Bitfield(count: 7))
        let reader = coordinator.open(Self.hash, info: info, fileIndex: 0, options: ReaderOptions())
        let sink = Sink()
        #expect(reader.read(offset: 20_000, size: 100, sink: sink) == .done)  // piece 1
        guard case .failure(.storage) = sink.answer.withLock({ $0 }) else {
            Issue.record("corrupt bytes were served: \(String(describing: sink.answer.withLock { $0 }))")
            return
        }
        #expect(recorder.lost.withLock { $0 } == [1])
        #expect(coordinator.verifiedBytes(Self.hash, in: 0..<100_000) == 100_000 - 16384)
        // The piece is missing now: a read waits for it to be fetched again.
        faulty.setFaults(FaultyStorage.Faults())
        let again = Sink()
        guard case .pending = reader.read(offset: 20_000, size: 100, sink: again) else {
            Issue.record("a lost piece was served without being fetched again")
            return
        }
        coordinator.pieceVerified(Self.hash, piece: 1)
        #expect(again.wait() == .success(Array(data[20_000..<20_100])))
        // Good pieces are read back once, then served without another check.
        let warm = Sink()
        #expect(reader.read(offset: 0, size: 10, sink: warm) == .done)
        #expect(warm.answer.withLock { $0 } == .success(Array(data[0..<10])))
    }

    @Test("a storage that cannot read fails the read instead of serving zeros")
    func storageFailure() {
        var faults = FaultyStorage.Faults()
        faults.failReads = true
        coordinator.checked(Self.hash, info: info, storage: FaultyStorage(storage, faults: faults),
                            have: have(Array(0..<7)), hashed: Bitfield(count: 7))
        let reader = coordinator.open(Self.hash, info: info, fileIndex: 0, options: ReaderOptions())
        let sink = Sink()
        _ = reader.read(offset: 0, size: 10, sink: sink)
        guard case .failure(.storage) = sink.wait() else {
            Issue.record("expected a storage failure")
            return
        }
    }

    @Test("a paused torrent fails the reads that wait for pieces at once, serves verified bytes, and waits again once resumed")
    func pausedTorrent() {
        coordinator.checked(Self.hash, info: info, storage: storage, have: have([0]), hashed: Bitfield(count: 7))
        var options = ReaderOptions()
        options.maximumWindow = 0
        let reader = coordinator.open(Self.hash, info: info, fileIndex: 0, options: options)
        let waiting = Sink()
        guard case .pending = reader.read(offset: 20_000, size: 10, sink: waiting) else {
            Issue.record("expected a pending read")
            return
        }
        _ = taken()
        coordinator.paused(Self.hash, info: info, reason: "disk full")
        #expect(waiting.wait() == .failure(.paused("disk full")))
        #expect(taken() == ["1:-"], "a failed read gives its deadline back")
        #expect(reader.pausedReason == "disk full")
        let missing = Sink()
        #expect(reader.read(offset: 20_000, size: 10, sink: missing) == .done)
        #expect(missing.answer.withLock { $0 } == .failure(.paused("disk full")))
        let here = Sink()
        #expect(reader.read(offset: 0, size: 10, sink: here) == .done)
        #expect(here.answer.withLock { $0 } == .success(Array(data[0..<10])))

        coordinator.paused(Self.hash, info: info, reason: nil)
        #expect(reader.pausedReason == nil)
        let resumed = Sink()
        guard case .pending = reader.read(offset: 20_000, size: 10, sink: resumed) else {
            Issue.record("a resumed torrent did not wait for its pieces")
            return
        }
        coordinator.pieceVerified(Self.hash, piece: 1)
        #expect(resumed.wait() == .success(Array(data[20_000..<20_010])))
    }

    @Test("eviction takes the least recently used pieces, never one a reader stands on or a peer is sent")
    func eviction() {
        coordinator.checked(Self.hash, info: info, storage: storage, have: have(Array(0..<7)), hashed: Bitfield(count: 7))
        let reader = coordinator.open(Self.hash, info: info, fileIndex: 1, options: ReaderOptions())
        // File b starts at 40 000: offset 45 000 is piece 5, offset 59 000 piece 6.
        for offset in [Int64(45_000), 59_000] {
            let sink = Sink()
            #expect(reader.read(offset: offset, size: 10, sink: sink) == .done)
        }
        // Piece 6 is where the reader stands; piece 0 is being uploaded; piece 5 was read
        // most recently of the rest.
        let first = coordinator.evict(bytes: 4 * 16384, protected: [Self.hash: [0]])
        #expect(first == [Self.hash: [1, 2, 3, 4]])
        #expect(coordinator.verifiedBytes(Self.hash, in: 0..<100_000) == 100_000 - 4 * 16384)
        let second = coordinator.evict(bytes: 1, protected: [:])
        #expect(second == [Self.hash: [0]], "the oldest left goes next, then the recently read")
        #expect(coordinator.evict(bytes: 1, protected: [:]) == [Self.hash: [5]])
        #expect(coordinator.evict(bytes: 1, protected: [:]).isEmpty, "the reader's own piece stays")
        // An evicted piece is missing: a read waits for it to be fetched again.
        let again = Sink()
        guard case .pending = reader.read(offset: 0, size: 10, sink: again) else {
            Issue.record("an evicted piece was served")
            return
        }
        coordinator.pieceVerified(Self.hash, piece: 2)
        #expect(again.wait() == .success(Array(data[40_000..<40_010])))
    }
}
