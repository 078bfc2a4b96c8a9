import Foundation

/// Reusable read buffers: reads of up to 1 MiB are common, and a fresh allocation of that
/// size costs page faults every time.
final class BufferPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [UnsafeMutableRawBufferPointer] = []
    /// Buffers kept for reuse; more are freed when given back.
    static let keep = 16

    func take(_ size: Int) -> UnsafeMutableRawBufferPointer {
        if let buffer = lock.withLock({ () -> UnsafeMutableRawBufferPointer? in
            guard let index = free.firstIndex(where: { $0.count >= size }) else { return nil }
            return free.remove(at: index)
        }) { return buffer }
        return .allocate(byteCount: max(size, 1 << 20), alignment: 4096)
    }

    func give(_ buffer: UnsafeMutableRawBufferPointer) {
        let kept = lock.withLock { () -> Bool in
            guard free.count < Self.keep else { return false }
            free.append(buffer)
            return true
        }
        if !kept { buffer.deallocate() }
    }

    deinit { for buffer in free { buffer.deallocate() } }
}
