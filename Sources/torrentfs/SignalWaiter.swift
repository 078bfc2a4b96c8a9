import Dispatch
import Foundation

/// Races work against SIGINT/SIGTERM, so commands can shut down cleanly when interrupted.
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
                await waitForSignal()
                return Task.isCancelled ? nil : .interrupted
            }
            var result: Outcome<T> = .interrupted
            if let first = await group.next(), let outcome = first { result = outcome }
            group.cancelAll()
            return result
        }
    }

    /// Returns on SIGINT or SIGTERM (or when the task is cancelled).
    static func waitForSignal() async {
        let sources = SignalSources()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                sources.install { continuation.resume() }
            }
        } onCancel: {
            sources.cancel()
        }
    }
}

/// Dispatch signal sources that resume a waiter exactly once.
private final class SignalSources: @unchecked Sendable {
    private let lock = NSLock()
    private var sources: [DispatchSourceSignal] = []
    private var resume: (@Sendable () -> Void)?
    private var done = false

    func install(_ resume: @escaping @Sendable () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard !done else {
            resume()
            return
        }
        self.resume = resume
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.fire() }
            source.resume()
            sources.append(source)
        }
    }

    private func fire() {
        lock.lock()
        let callback = done ? nil : resume
        done = true
        resume = nil
        lock.unlock()
        callback?()
    }

    func cancel() {
        lock.lock()
        let callback = done ? nil : resume
        done = true
        resume = nil
        let installed = sources
        sources = []
        lock.unlock()
        installed.forEach { $0.cancel() }
        callback?()
    }
}
