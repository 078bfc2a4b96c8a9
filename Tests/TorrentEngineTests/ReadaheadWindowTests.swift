import Testing
@testable import TorrentEngine

@Suite struct ReadaheadWindowTests {
    static let ms: Int64 = 1_000_000

    @Test func followsSequentialSpeedAndResetsOnSeek() {
        var window = ReadaheadWindow(initial: 2 << 20, maximum: 32 << 20)
        #expect(window.read(offset: 0, end: 1 << 20, now: 0) == 2 << 20)
        // A slow reader: 128 KiB every 100 ms after a first 1 MiB: ~1.6 MiB/s → ~6 MiB (4 s of it).
        var offset: Int64 = 1 << 20
        var now: Int64 = 0
        for _ in 0..<30 {
            now += 100 * Self.ms
            window.read(offset: offset, end: offset + (128 << 10), now: now)
            offset += 128 << 10
        }
        #expect((4 << 20)...(7 << 20) ~= window.window, "window \(window.window)")
        // A fast reader reaches the maximum.
        for _ in 0..<30 {
            now += 1 * Self.ms
            window.read(offset: offset, end: offset + (1 << 20), now: now)
            offset += 1 << 20
        }
        #expect(window.window == 32 << 20)
        // A seek starts over.
        #expect(window.read(offset: 0, end: 4096, now: now + Self.ms) == 2 << 20)
    }

    @Test func zeroMaximumMeansNoReadahead() {
        var window = ReadaheadWindow(initial: 2 << 20, maximum: 0)
        #expect(window.read(offset: 0, end: 10, now: 0) == 0)
        #expect(window.read(offset: 10, end: 20, now: 1) == 0)
    }
}
