import Foundation
import StatusView
#if canImport(Glibc)
import Glibc
#endif

/// The terminal under the full-screen view: every termios, ioctl and signal call it needs.
/// The escape sequences themselves are `StatusView.ANSI` (tested without a terminal).
///
/// `enter` puts the terminal in raw mode (keys arrive one by one, unechoed; Ctrl-C arrives
/// as a key, not as SIGINT, so the view can leave the screen as it found it) and switches
/// to the alternate screen; `leave` undoes both. If the process exits without `leave`, an
/// `atexit` handler restores the saved mode. SIGINT and SIGTERM are caught by
/// `SignalPipe`, which ends the view through its normal path.
final class Terminal: @unchecked Sendable {
    enum Event: Sendable {
        case keys([Key])
        /// SIGWINCH: read `size` again.
        case resized
    }

    /// Whether the view can be shown: standard output is a terminal that knows escape sequences.
    static var isAvailable: Bool {
        isatty(STDOUT_FILENO) != 0 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    /// Keys and resizes, from a thread of its own that waits on the terminal.
    let events: AsyncStream<Event>
    private let sink: AsyncStream<Event>.Continuation
    private let input = STDIN_FILENO
    private let output = STDOUT_FILENO
    private var stopWriteFD: Int32 = -1
    private var previousResizeAction = sigaction()
    private var entered = false

    init() {
        (events, sink) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(64))
    }

    /// The size in cells (80×24 if the terminal does not say).
    var size: TerminalSize {
        var size = winsize()
        guard ioctl(output, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0, size.ws_col > 0 else {
            return TerminalSize(rows: 24, columns: 80)
        }
        return TerminalSize(rows: Int(size.ws_row), columns: Int(size.ws_col))
    }

    func enter() {
        guard !entered else { return }
        entered = true
        _ = Terminal.restoresAtExit
        let readsKeys = isatty(input) != 0
        if readsKeys, tcgetattr(input, &savedMode) == 0 {
            hasSavedMode = true
            var raw = savedMode
            raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
            raw.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
            withUnsafeMutableBytes(of: &raw.c_cc) { cc in
                cc[Int(VMIN)] = 1
                cc[Int(VTIME)] = 0
            }
            tcsetattr(input, TCSAFLUSH, &raw)
        }
        screenIsAlternate = true
        write(ANSI.enterScreen)
        startEvents(readsKeys: readsKeys)
    }

    func leave() {
        guard entered else { return }
        entered = false
        write(ANSI.leaveScreen)
        screenIsAlternate = false
        if hasSavedMode {
            tcsetattr(input, TCSADRAIN, &savedMode)
            hasSavedMode = false
        }
        sigaction(SIGWINCH, &previousResizeAction, nil)
        var byte: UInt8 = 1
        _ = Glibc.write(stopWriteFD, &byte, 1)
        close(stopWriteFD)
        close(resizeWriteFD)
        resizeWriteFD = -1
        sink.finish()
    }

    /// Writes all of `text` (a frame is written with one call, so it appears at once).
    func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(output, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            offset += written
        }
    }

    /// The thread that waits for keys, SIGWINCH (through a pipe its handler writes to) and
    /// the stop byte of `leave`.
    private func startEvents(readsKeys: Bool) {
        var resize: [Int32] = [-1, -1]
        var stop: [Int32] = [-1, -1]
        guard pipe(&resize) == 0, pipe(&stop) == 0 else { return }
        _ = fcntl(resize[1], F_SETFL, fcntl(resize[1], F_GETFL) | O_NONBLOCK)
        resizeWriteFD = resize[1]
        stopWriteFD = stop[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = Glibc.write(resizeWriteFD, &byte, 1)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGWINCH, &action, &previousResizeAction)
        let (input, sink) = (readsKeys ? self.input : -1, self.sink)
        let (resizeRead, stopRead) = (resize[0], stop[0])
        Thread.detachNewThread {
            var fds = [pollfd(fd: input, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: resizeRead, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stopRead, events: Int16(POLLIN), revents: 0)]
            var buffer = [UInt8](repeating: 0, count: 256)
            while true {
                if poll(&fds, nfds_t(fds.count), -1) < 0 {
                    if errno == EINTR { continue }
                    break
                }
                if fds[2].revents != 0 { break }
                if fds[1].revents != 0 {
                    _ = read(resizeRead, &buffer, buffer.count)
                    sink.yield(.resized)
                }
                if fds[0].revents != 0 {
                    let count = read(input, &buffer, buffer.count)
                    if count > 0 {
                        let keys = ANSI.keys(Array(buffer[..<count]))
                        if !keys.isEmpty { sink.yield(.keys(keys)) }
                    } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                        fds[0].fd = -1  // end of input: keys are over, resizes still come
                    }
                }
            }
            close(resizeRead)
            close(stopRead)
        }
    }

    private static let restoresAtExit: Void = { atexit { Terminal.restoreAtExit() } }()

    /// Run by `atexit`: the terminal as it was, if the process ends with the view up.
    private static func restoreAtExit() {
        if screenIsAlternate {
            let text = Array(ANSI.leaveScreen.utf8)
            _ = text.withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            screenIsAlternate = false
        }
        if hasSavedMode {
            tcsetattr(STDIN_FILENO, TCSADRAIN, &savedMode)
            hasSavedMode = false
        }
    }
}

// Process-wide, for the SIGWINCH handler and the atexit handler (C function pointers
// capture nothing). One view at a time.
private nonisolated(unsafe) var resizeWriteFD: Int32 = -1
private nonisolated(unsafe) var savedMode = termios()
private nonisolated(unsafe) var hasSavedMode = false
private nonisolated(unsafe) var screenIsAlternate = false
