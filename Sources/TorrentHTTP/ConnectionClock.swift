import NIOCore

/// When a connection that waits on its client is closed: the header and idle timeouts of
/// docs/http.md, as a value. Time comes in as `now:`, the deadline goes out; `HTTPHandler`
/// arms one timer for it and asks `expired(now:)` when the timer fires.
///
/// - A request's head must be complete `header` after the connection opens, or after the
///   first byte of a request that follows another.
/// - Between requests, a kept-alive connection with no byte of a next request is closed
///   after `idle`; a request body must keep coming (`idle` after its last byte).
/// - While a request is answered, including a body waiting for a slow client to read it,
///   there is no deadline: a client that reads slowly is not idle.
/// - After a refusal answered before its body arrived, the body is read and dropped for at
///   most `header` (a lingering close, so the client reads the answer instead of a reset).
struct ConnectionClock: Equatable, Sendable {
    struct Timeouts: Equatable, Sendable {
        /// A request's head must be complete this long after the connection opens or after
        /// the first byte of a following request.
        var header: TimeAmount
        /// A kept-alive connection without a next request, or a body that stops coming.
        var idle: TimeAmount
    }

    enum Phase: Equatable, Sendable {
        /// Reading a request's head.
        case head
        /// A response ended; no byte of the next request yet.
        case idle
        /// The head is in; the rest of the request (its body) is coming.
        case body
        /// Answering: no deadline.
        case answering
        /// The answer is out and the output closed: dropping what the client still sends.
        case lingering
    }

    let timeouts: Timeouts
    private(set) var phase: Phase
    /// When the connection is closed unless the phase changes first; nil while answering.
    private(set) var deadline: NIODeadline?
    /// Bytes of the next request came while the current one was answered.
    private var nextRequestStarted = false

    init(timeouts: Timeouts, now: NIODeadline) {
        self.timeouts = timeouts
        phase = .head
        deadline = now + timeouts.header
    }

    /// Bytes came from the client (before they are parsed).
    mutating func bytesArrived(now: NIODeadline) {
        switch phase {
        case .idle: enter(.head, deadline: now + timeouts.header)
        case .body: deadline = now + timeouts.idle
        case .answering: nextRequestStarted = true
        case .head, .lingering: break
        }
    }

    /// A request's head was parsed.
    mutating func headReceived(now: NIODeadline) {
        guard phase != .lingering else { return }
        enter(.body, deadline: now + timeouts.idle)
    }

    /// The request is being answered (its end came, or it is answered from its head alone).
    mutating func answering() {
        guard phase != .lingering else { return }
        enter(.answering, deadline: nil)
    }

    /// A response ended and the connection stays open for the next request.
    mutating func responseEnded(now: NIODeadline) {
        guard phase == .answering else { return }
        if nextRequestStarted {
            enter(.head, deadline: now + timeouts.header)
        } else {
            enter(.idle, deadline: now + timeouts.idle)
        }
    }

    /// An answer went out before its request's body: the rest is dropped until the client
    /// closes, or until the deadline.
    mutating func lingering(now: NIODeadline) {
        enter(.lingering, deadline: now + timeouts.header)
    }

    func expired(now: NIODeadline) -> Bool {
        guard let deadline else { return false }
        return now >= deadline
    }

    private mutating func enter(_ phase: Phase, deadline: NIODeadline?) {
        self.phase = phase
        self.deadline = deadline
        nextRequestStarted = false
    }
}
