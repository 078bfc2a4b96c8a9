import NIOCore
import Testing
@testable import TorrentHTTP

/// The connection's deadlines driven by hand: no socket, no clock.
@Suite("HTTP connection clock")
struct ConnectionClockTests {
    static let timeouts = ConnectionClock.Timeouts(header: .seconds(10), idle: .seconds(60))
    static func at(_ seconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(seconds) * 1_000_000_000 + 1_000_000_000) }

    /// Steps as `event@second`; the phase and the deadline (seconds, `-` for none) after each.
    @Test("phases and deadlines", arguments: [
        // A new connection: its head is due 10 s after it opened, however bytes trickle.
        (["bytes@3", "bytes@9"], ["head 10", "head 10"]),
        // A request answered: no deadline while answering, even for minutes.
        (["bytes@1", "head@1", "end@1", "bytes@100"], ["head 10", "body 61", "answering -", "answering -"]),
        // After the response, idle for 60 s; the first byte of the next request starts its 10 s.
        (["head@1", "end@1", "response@200", "bytes@230", "head@235"],
         ["body 61", "answering -", "idle 260", "head 240", "body 295"]),
        // Bytes of the next request during the answer: the header deadline from the response's end.
        (["head@1", "end@1", "bytes@50", "response@70"], ["body 61", "answering -", "answering -", "head 80"]),
        // A body must keep coming: each byte moves the deadline.
        (["head@1", "bytes@30", "bytes@80"], ["body 61", "body 90", "body 140"]),
        // A refusal answered early: dropped input until 10 s after, whatever comes.
        (["head@1", "answer@1", "response@2", "linger@2", "bytes@5", "head@5"],
         ["body 61", "answering -", "idle 62", "lingering 12", "lingering 12", "lingering 12"]),
    ])
    func phases(steps: [String], expected: [String]) {
        var clock = ConnectionClock(timeouts: Self.timeouts, now: Self.at(0))
        var rendered: [String] = []
        for step in steps {
            let parts = step.split(separator: "@")
            let now = Self.at(Int64(parts[1])!)
            switch parts[0] {
            case "bytes": clock.bytesArrived(now: now)
            case "head": clock.headReceived(now: now)
            case "end", "answer": clock.answering()
            case "response": clock.responseEnded(now: now)
            default: clock.lingering(now: now)
            }
            let deadline = clock.deadline.map { "\(($0.uptimeNanoseconds - 1_000_000_000) / 1_000_000_000)" } ?? "-"
            rendered.append("\(clock.phase) \(deadline)")
        }
        #expect(rendered == expected)
    }

    @Test("expired only at or after the deadline, never while answering")
    func expiry() {
        var clock = ConnectionClock(timeouts: Self.timeouts, now: Self.at(0))
        #expect(!clock.expired(now: Self.at(9)) && clock.expired(now: Self.at(10)))
        clock.headReceived(now: Self.at(1))
        clock.answering()
        #expect(!clock.expired(now: Self.at(100_000)))
    }
}
