import Testing

@testable import BitTorrent

@Suite("uTP send buffer")
struct UTPSendBufferTests {
    @Test("pieces come out in order, within a write or across writes, however the writes were cut")
    func order() {
        var buffer = UTPSendBuffer()
        var written: [UInt8] = []
        var taken: [UInt8] = []
        var value: UInt8 = 0
        // Writes of many sizes (empty ones too), taken in pieces of other sizes, with the
        // queue drained often enough that the consumed writes are dropped from the front.
        for round in 0..<400 {
            let size = [0, 1, 7, 1400, 16397, 3][round % 6]
            let bytes = (0..<size).map { _ in value &+= 1; return value }
            written += bytes
            buffer.append(bytes)
            #expect(buffer.count == written.count - taken.count)
            let piece = min(buffer.count, [1452, 5, 64000][round % 3])
            taken += buffer.take(piece)
        }
        taken += buffer.take(buffer.count)
        #expect(buffer.count == 0)
        #expect(taken == written)
        buffer.append([1, 2, 3])
        buffer.removeAll()
        #expect(buffer.count == 0)
    }

    @Test("a piece inside one write shares that write's storage (no copy)")
    func slices() {
        var buffer = UTPSendBuffer()
        buffer.append([UInt8](repeating: 9, count: 4000))
        let piece = buffer.take(1400)
        #expect(piece.startIndex == 0 && piece.count == 1400)
        let next = buffer.take(1400)
        #expect(next.startIndex == 1400, "a slice of the same array, not a fresh copy")
    }
}
