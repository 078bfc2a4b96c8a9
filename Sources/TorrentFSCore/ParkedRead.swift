import BitTorrent
import Foundation
import TorrentEngine
#if canImport(Glibc)
import Glibc
#endif

/// A FUSE read served by an engine reader. Replying frees the FUSE request, so an answer
/// that comes from another thread before FUSE has registered the read's interrupt callback
/// (`activate`) is parked until then; an answer given during the read call itself, on the
/// caller's thread (verified data, an error), goes straight out.
final class ParkedRead: ReadSink, @unchecked Sendable {  // mutable fields guarded by `lock`
    let request: UInt64
    let hash: InfoHash
    private let reader: TorrentReader
    private let reply: ReadReply
    private let finished: @Sendable (UInt64) -> Void
    private let caller = pthread_self()
    private let lock = NSLock()
    private var registering = true
    private var parked: Answer?
    private var readID: UInt64?
    /// A cancel that came before the engine gave the read an id.
    private var earlyCancel: ReadFailure?

    enum Answer {
        case data([UInt8])
        case error(Int32)
    }

    init(request: UInt64, hash: InfoHash, reader: TorrentReader, reply: ReadReply,
         finished: @escaping @Sendable (UInt64) -> Void) {
        self.request = request
        self.hash = hash
        self.reader = reader
        self.reply = reply
        self.finished = finished
    }

    /// The errno a failed read gets: EINTR for an interrupted reader, EIO otherwise.
    static func code(_ failure: ReadFailure) -> Int32 {
        failure == .cancelled ? EINTR : EIO
    }

    /// The engine is waiting for pieces: the read's id, for cancelling it.
    func started(_ id: UInt64) {
        let cancel = lock.withLock { () -> ReadFailure? in
            readID = id
            return earlyCancel
        }
        if let cancel { reader.cancel(id, failure: cancel) }
    }

    func data(_ bytes: UnsafeRawBufferPointer) {
        if park(.data(Array(bytes))) { return }
        finished(request)
        reply.data(bytes)
    }

    func failed(_ failure: ReadFailure) {
        let code = Self.code(failure)
        if park(.error(code)) { return }
        finished(request)
        reply.error(code)
    }

    /// Whether the answer had to wait for `activate`. Only another thread's answer parks
    /// (the copy of its bytes is the price of that rare race).
    private func park(_ answer: @autoclosure () -> Answer) -> Bool {
        lock.withLock {
            guard registering, pthread_equal(caller, pthread_self()) == 0 else { return false }
            parked = answer()
            return true
        }
    }

    /// FUSE can take the answer now (its interrupt callback is registered).
    func activate() {
        let answer = lock.withLock { () -> Answer? in
            registering = false
            defer { parked = nil }
            return parked
        }
        guard let answer else { return }
        finished(request)
        switch answer {
        case .data(let bytes): bytes.withUnsafeBytes { reply.data($0) }
        case .error(let code): reply.error(code)
        }
    }

    /// Ends the read (interrupt, removal, unmount) if it is still waiting.
    func cancel(_ failure: ReadFailure) {
        let id = lock.withLock { () -> UInt64? in
            if readID == nil { earlyCancel = failure }
            return readID
        }
        if let id { reader.cancel(id, failure: failure) }
    }
}
