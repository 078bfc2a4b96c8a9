import Synchronization

/// Orders one torrent's resume data writes, which run on any disk thread: each writer
/// takes a generation on the engine's loop when it captures the bitfield, and a write
/// runs only if no newer generation was written already — one at a time.
final class ResumeOrder: Sendable {
    private let issued = Atomic<UInt64>(0)
    private let written = Mutex<UInt64>(0)

    /// The next generation (called where the bitfield is captured).
    func next() -> UInt64 { issued.add(1, ordering: .relaxed).newValue }

    /// Runs `write` unless a newer generation was written; returns whether it ran.
    @discardableResult
    func write(_ generation: UInt64, _ write: () throws -> Void) throws -> Bool {
        try written.withLock { last in
            guard generation > last else { return false }
            try write()
            last = generation
            return true
        }
    }
}
