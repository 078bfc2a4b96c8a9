import BitTorrent
import Foundation
import TorrentEngine

/// Shows a download's progress: a redrawn bar on a terminal, a plain line every few
/// seconds otherwise.
actor ProgressReporter {
    let session: Session
    let infoHash: InfoHash
    let isTerminal = isatty(STDERR_FILENO) != 0
    private var drewBar = false
    /// The full-screen view instead of the line (`--watch` on a terminal).
    private let view: WatchLoop?

    init(session: Session, infoHash: InfoHash, watch: Bool = false) {
        self.session = session
        self.infoHash = infoHash
        view = watch && Terminal.isAvailable ? WatchLoop(title: "torrentfs download") { await session.status() } : nil
    }

    /// Waits for `work` or a signal, showing the progress meanwhile: the view (where `q`
    /// stops as Ctrl-C does) or, with `line`, the progress line.
    func race<T: Sendable>(line: Bool = true, _ work: @escaping @Sendable () async throws -> T) async
        -> SignalWaiter.Outcome<T> {
        if let view { return await view.run(until: work).signalOutcome }
        guard line else { return await SignalWaiter.race(work) }
        let reporter = Task { await run() }
        let outcome = await SignalWaiter.race(work)
        reporter.cancel()
        await finish()
        return outcome
    }

    func run() async {
        let interval: Duration = isTerminal ? .milliseconds(500) : .seconds(2)
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { break }
            await draw()
        }
    }

    func finish() async {
        await draw()
        if isTerminal && drewBar { write("\n") }
    }

    private func draw() async {
        guard let stats = await session.stats(infoHash) else { return }
        let line = ProgressReporter.line(stats, width: 30)
        if isTerminal {
            write("\r\u{1B}[K" + line)
            drewBar = true
        } else {
            write(line + "\n")
        }
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    static func line(_ stats: TorrentStats, width: Int) -> String {
        // `download` fetches what is wanted (selected files): progress is of that.
        let filled = Int((stats.wantedProgress * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: min(width, filled)) + String(repeating: "-", count: max(0, width - filled))
        let total = stats.totalSize == nil ? "?" : ByteCount.format(stats.wantedBytes)
        let eta = stats.eta.map { ProgressReporter.duration($0) } ?? "--:--"
        return String(format: "[%@] %5.1f%%  %@/%@  %@/s  peers %d  ETA %@  %@", bar, stats.wantedProgress * 100,
                      ByteCount.format(stats.verifiedWantedBytes), total, ByteCount.format(Int64(stats.downloadRate)),
                      stats.peers.count, eta, stats.state.rawValue)
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
