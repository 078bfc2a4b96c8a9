import BitTorrent
import Synchronization

/// Storage in memory, for tests and for torrents nobody wants on disk.
public final class MemoryStorage: PieceStorage {
    private let bytes: Mutex<[UInt8]>

    public init(totalLength: Int64) { bytes = Mutex([UInt8](repeating: 0, count: Int(totalLength))) }

    public func write(_ data: [UInt8], at offset: Int64) throws(EngineError) {
        bytes.withLock { $0.replaceSubrange(Int(offset)..<(Int(offset) + data.count), with: data) }
    }

    public func read(at offset: Int64, length: Int) throws(EngineError) -> [UInt8] {
        bytes.withLock { Array($0[Int(offset)..<(Int(offset) + length)]) }
    }

    public func release(at offset: Int64, length: Int) throws(EngineError) {
        bytes.withLock { $0.replaceSubrange(Int(offset)..<(Int(offset) + length), with: repeatElement(0, count: length)) }
    }

    public func sync() throws(EngineError) {}
    public func fileStates() -> [FileState?] { [] }
    public func close() {}
}

/// Wraps a storage and injects faults: delays, failing writes or reads, corrupted reads.
public final class FaultyStorage: PieceStorage {
    public struct Faults: Sendable {
        public var delayMicroseconds: UInt32 = 0
        public var failWrites = false
        public var failReads = false
        /// Flip a byte in every read.
        public var corruptReads = false
        public init() {}
    }

    private let inner: PieceStorage
    private let faults: Mutex<Faults>

    public init(_ inner: PieceStorage, faults: Faults = Faults()) {
        self.inner = inner
        self.faults = Mutex(faults)
    }

    public func setFaults(_ new: Faults) { faults.withLock { $0 = new } }

    private func delay() -> Faults {
        let current = faults.withLock { $0 }
        if current.delayMicroseconds > 0 { usleepCompat(current.delayMicroseconds) }
        return current
    }

    public func write(_ data: [UInt8], at offset: Int64) throws(EngineError) {
        if delay().failWrites { throw EngineError.io(operation: "write", path: "<faulty storage>", errno: 28) }
        try inner.write(data, at: offset)
    }

    public func read(at offset: Int64, length: Int) throws(EngineError) -> [UInt8] {
        let current = delay()
        if current.failReads { throw EngineError.io(operation: "read", path: "<faulty storage>", errno: 5) }
        var out = try inner.read(at: offset, length: length)
        if current.corruptReads && !out.isEmpty { out[out.count / 2] ^= 0xFF }
        return out
    }

    public func release(at offset: Int64, length: Int) throws(EngineError) { try inner.release(at: offset, length: length) }
    public func sync() throws(EngineError) { try inner.sync() }
    public func fileStates() -> [FileState?] { inner.fileStates() }
    public func close() { inner.close() }
}
