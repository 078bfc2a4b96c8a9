import BitTorrent
import Foundation
import Synchronization
import TestSupport
import Testing
@testable import TorrentEngine

/// Reads, writes and closes racing on two storages: a descriptor closed by one thread and
/// reused by another storage's `open` must never be read or written through.
@Suite("File storage under concurrent close")
struct StorageConcurrencyTests {
    /// Rounds per worker thread; each round is a read, a write or a close.
    static let rounds = 20000
    static let files = (0..<6).map { InfoFixture.File(["f\($0)"], 7000 + Int64($0) * 1000) }

    /// Each storage gets its own bytes, so a read through the other's descriptor shows.
    struct Subject {
        let storage: FileStorage
        let data: [UInt8]
    }

    @Test("every byte read or written goes to its own file while closes and reopens race")
    func hammer() throws {
        let scratch = try Scratch()
        let subjects = try [0x51, 0xA7].map { seed -> Subject in
            let info = try InfoFixture.info(name: "s\(seed)", files: Self.files)
            var generator = SplitMix64(seed: UInt64(seed))
            let data = generator.bytes(Int(info.totalLength))
            let storage = FileStorage(root: scratch.root.path, info: info)
            try storage.write(data, at: 0)
            return Subject(storage: storage, data: data)
        }
        let wrong = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 16) { worker in
            let subject = subjects[worker % 2]
            let total = subject.data.count
            var generator = SplitMix64(seed: UInt64(worker) &+ 99)
            for round in 0..<Self.rounds {
                let start = Int(generator.next() % UInt64(total))
                // Short reads and writes: most of the time goes to taking a descriptor and using it.
                let length = 1 + Int(generator.next() % UInt64(min(total - start, 64)))
                let expected = Array(subject.data[start..<(start + length)])
                do {
                    switch generator.next() % 4 {
                    case 0:
                        subject.storage.close()
                    case 1:
                        // Rewrites the same bytes: any landing in the wrong file corrupts it.
                        try subject.storage.write(expected, at: Int64(start))
                    default:
                        let got = try subject.storage.read(at: Int64(start), length: length)
                        if got != expected { wrong.withLock { $0.append("worker \(worker) round \(round) read \(start)+\(length)") } }
                    }
                } catch {
                    wrong.withLock { $0.append("worker \(worker) round \(round): \(error)") }
                }
            }
        }
        #expect(wrong.withLock { $0 }.isEmpty, "\(wrong.withLock { $0.prefix(5) })")
        // Nothing written through a stale descriptor: both files still hold their own bytes.
        for subject in subjects {
            #expect(try subject.storage.read(at: 0, length: subject.data.count) == subject.data)
            subject.storage.close()
        }
    }
}
