/// How far ahead of a reader to fetch. A run of sequential reads measures the reader's
/// speed, and the window covers `seconds` of it (at least `initial`, at most `maximum`);
/// a seek starts a new run with the initial window. A value: time comes in as `now`.
public struct ReadaheadWindow: Sendable, Equatable {
    public static let seconds = 4.0
    /// Elapsed time below this is counted as this, so the first reads of a run do not
    /// measure an absurd speed.
    static let minimumElapsed: Int64 = 50_000_000

    public let initial: Int
    public let maximum: Int
    public private(set) var window = 0
    private var nextOffset: Int64 = -1
    private var runStart: Int64 = 0
    private var runBytes: Int64 = 0

    public init(initial: Int, maximum: Int) {
        self.maximum = max(0, maximum)
        self.initial = min(initial, self.maximum)
    }

    /// A read of `offset..<end` at `now`: the window after it.
    @discardableResult
    public mutating func read(offset: Int64, end: Int64, now: Int64) -> Int {
        if offset == nextOffset {
            runBytes += end - offset
            let elapsed = Double(max(now - runStart, Self.minimumElapsed)) / 1e9
            let rate = Double(runBytes) / elapsed
            window = min(maximum, max(initial, Int(min(rate * Self.seconds, Double(Int.max / 2)))))
        } else {
            runStart = now
            runBytes = end - offset
            window = initial
        }
        nextOffset = end
        return window
    }
}
