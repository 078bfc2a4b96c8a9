import BitTorrent
import Crypto
import TestSupport
import Testing

@Suite("SHA-1 against swift-crypto")
struct SHA1CrossCheckTests {
    static func reference(_ bytes: [UInt8]) -> [UInt8] { Array(Insecure.SHA1.hash(data: bytes)) }

    @Test("every length from 0 to 300")
    func smallLengths() {
        var generator = SplitMix64(seed: 0x5A1)
        for length in 0...300 {
            let message = generator.bytes(length)
            #expect(BitTorrent.SHA1.hash(message).bytes == Self.reference(message), "length \(length)")
        }
    }

    @Test("large inputs, one shot and incremental", arguments: [4095, 65536, 100_003, (1 << 20) + 7])
    func largeLengths(length: Int) {
        var generator = SplitMix64(seed: UInt64(length))
        let message = generator.bytes(length)
        let expected = Self.reference(message)
        #expect(BitTorrent.SHA1.hash(message).bytes == expected)
        var hasher = BitTorrent.SHA1()
        var start = 0
        while start < message.count {
            let end = min(message.count, start + Int.random(in: 1...5000, using: &generator))
            hasher.update(message[start..<end])
            start = end
        }
        #expect(hasher.finalize().bytes == expected)
    }

    @Test("inputs of a single repeated byte value", arguments: [0x00, 0x80, 0xFF] as [UInt8])
    func repeatedBytes(byte: UInt8) {
        for length in [55, 56, 64, 119, 120, 128, 1000] {
            let message = [UInt8](repeating: byte, count: length)
            #expect(BitTorrent.SHA1.hash(message).bytes == Self.reference(message), "length \(length)")
        }
    }
}
