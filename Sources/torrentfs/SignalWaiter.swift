import Dispatch
import Foundation

/// Races work against SIGINT/SIGTERM, so commands can shut down cleanly when interrupted.
///
/// Signals are caught with a plain `sigaction` handler that writes a byte to a pipe (the
/// self-pipe trick). Dispatch signal sources are not used: on Linux they rely on the signal
/// being blocked in every thread, and NIO's and the concurrency pool's threads exist before
/// we could block it.
enum SignalWaiter {
    enum Outcome<T: Sendable>: Sendable {
        case finished(Result<T, Error>)
        case interrupted
    }

    static func race<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async -> Outcome<T> {
        await withTaskGroup(of: Outcome<T>?.self) { group in
            group.addTask {
                do { return .finished(.success(try await work())) } catch { return .finished(.failure(error)) }
            }
            group.addTask {
                let signalled = await SignalPipe.shared.wait()
                return signalled ? .interrupted : nil
            }
            var result: Outcome<T> = .interrupted
            if let first = await group.next(), let outcome = first { result = outcome }
            group.cancelAll()
            return result
        }
    }
}

private nonisolated(unsafe) var signalPipeWriteFD: Int32 = -1

/// The pipe the handler writes to, and the waiters it wakes.
final class SignalPipe: @unchecked Sendable {
    static let shared = SignalPipe()

    private let lock = NSLock()
    private var waiters: [UUID: CheckedContinuation<Bool, Never>] = [:]
    private var signalled = false

    private init() {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        signalPipeWriteFD = fds[1]
        for number in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in
                var byte: UInt8 = 1
                _ = write(signalPipeWriteFD, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
        let readFD = fds[0]
        Thread.detachNewThread { [self] in
            var byte: UInt8 = 0
            while read(readFD, &byte, 1) < 0 && errno == EINTR {}
            fire()
        }
    }

    private func fire() {
        lock.lock()
        signalled = true
        let woken = waiters
        waiters = [:]
        lock.unlock()
        woken.values.forEach { $0.resume(returning: true) }
    }

    /// Whether SIGINT or SIGTERM arrived (installs the handlers on first use).
    var received: Bool { lock.withLock { signalled } }

    /// True when a signal arrived; false when the waiting task was cancelled.
    func wait() async -> Bool {
        let id = UUID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                lock.lock()
                if signalled {
                    lock.unlock()
                    continuation.resume(returning: true)
                } else if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(returning: false)
                } else {
                    waiters[id] = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            lock.lock()
            let continuation = waiters.removeValue(forKey: id)
            lock.unlock()
            continuation?.resume(returning: false)
        }
    }
}
