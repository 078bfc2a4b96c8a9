import Foundation
import StatusView
import TorrentEngine

/// The live status view of `status --watch`, `download --watch` and `serve --watch`: reads
/// the status once a second, draws it full screen, and follows the keys (q quits, ↑↓ or j/k
/// select, Enter or d shows a torrent's peers, Esc or b goes back) and the terminal's size.
/// Keeps the rate history and the selection between runs (`download --seed` shows the view
/// while downloading, then while seeding).
actor WatchLoop {
    enum Outcome<T: Sendable>: Sendable {
        case finished(Result<T, Error>)
        /// `q`.
        case quit
        /// Ctrl-C, SIGINT or SIGTERM.
        case interrupted
    }

    private var view: StatusView
    private let fetch: @Sendable () async throws -> StatusDocument
    private let colors: Bool
    private var history = RateHistory()
    private var state = ViewState()

    init(title: String, emptyHint: String = "no torrents", fetch: @escaping @Sendable () async throws -> StatusDocument) {
        let environment = ProcessInfo.processInfo.environment
        view = StatusView(title: title, glyphs: Glyphs.forLocale(environment), emptyHint: emptyHint)
        colors = (environment["NO_COLOR"] ?? "").isEmpty
        self.fetch = fetch
    }

    /// `work` raced against signals, with the view up meanwhile when `watch` is set and
    /// standard output is a terminal; `q` counts as an interruption.
    static func race<T: Sendable>(watch: Bool, title: String, status: @escaping @Sendable () async -> StatusDocument,
                                  _ work: @escaping @Sendable () async throws -> T) async -> SignalWaiter.Outcome<T> {
        guard watch && Terminal.isAvailable else { return await SignalWaiter.race(work) }
        return await WatchLoop(title: title, fetch: status).run(until: work).signalOutcome
    }

    /// Shows the view until `work` finishes, `q`, Ctrl-C or a signal.
    func run<T: Sendable>(until work: @escaping @Sendable () async throws -> T) async -> Outcome<T> {
        _ = SignalPipe.shared
        let terminal = Terminal()
        let (events, sink) = AsyncStream<Event<T>>.makeStream()
        let fetch = fetch
        terminal.enter()
        let tasks = [
            Task { for await event in terminal.events { sink.yield(.terminal(event)) } },
            Task {
                while !Task.isCancelled {
                    do { sink.yield(.status(.success(try await fetch()))) } catch { sink.yield(.status(.failure(error))) }
                    try? await Task.sleep(for: .seconds(1))
                }
            },
            Task { if await SignalPipe.shared.wait() { sink.yield(.signal) } },
            Task {
                do { sink.yield(.finished(.success(try await work()))) } catch { sink.yield(.finished(.failure(error))) }
            },
        ]
        defer {
            tasks.forEach { $0.cancel() }
            sink.finish()
            terminal.leave()
        }
        var size = terminal.size
        var document: StatusDocument?
        var message: String?
        terminal.write(ANSI.frame(view.render(nil, history: history, state: state, size: size), size: size, colors: colors))
        for await event in events {
            switch event {
            case .status(.success(let status)):
                document = status
                message = nil
                history.record(status)
            case .status(.failure(let error)):
                message = "\(error)"
            case .terminal(.resized):
                size = terminal.size
            case .terminal(.keys(let keys)):
                for key in keys {
                    let page = view.peerRows(document, state: state, size: size)
                    switch state.handle(key, document: document, pageSize: page) {
                    case .quit: return .quit
                    case .interrupt: return .interrupted
                    case .none, .redraw, .repaint: break
                    }
                }
            case .signal:
                return .interrupted
            case .finished(let result):
                return .finished(result)
            }
            let lines = view.render(document, history: history, state: state, size: size, message: message)
            terminal.write(ANSI.frame(lines, size: size, colors: colors))
        }
        return .interrupted
    }
}

private enum Event<T: Sendable>: Sendable {
    case terminal(Terminal.Event)
    case status(Result<StatusDocument, Error>)
    case signal
    case finished(Result<T, Error>)
}

extension WatchLoop.Outcome {
    /// As the commands that also run without the view see it: `q` stops like Ctrl-C.
    var signalOutcome: SignalWaiter.Outcome<T> {
        switch self {
        case .finished(let result): return .finished(result)
        case .quit, .interrupted: return .interrupted
        }
    }
}
