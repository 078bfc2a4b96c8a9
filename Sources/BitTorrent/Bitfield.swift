/// One bit per piece, most significant bit first (BEP 3). Spare bits past the last piece
/// are always zero.
public struct Bitfield: Hashable, Sendable {
    public private(set) var count: Int
    private var words: [UInt64]
    public private(set) var setCount: Int

    public init(count: Int, allSet: Bool = false) {
        self.count = count
        words = [UInt64](repeating: allSet ? .max : 0, count: (count + 63) / 64)
        setCount = allSet ? count : 0
        if allSet { clearSpareBits() }
    }

    /// Decodes the wire form. Nil when the length is wrong or a spare bit is set
    /// (our policy: such a bitfield is a protocol violation).
    public init?(wire bytes: [UInt8], count: Int) {
        guard bytes.count == (count + 7) / 8 else { return nil }
        self.init(count: count)
        for (index, byte) in bytes.enumerated() where byte != 0 {
            for bit in 0..<8 where byte & (0x80 >> UInt8(bit)) != 0 {
                let piece = index * 8 + bit
                guard piece < count else { return nil }
                self[piece] = true
            }
        }
    }

    public var wire: [UInt8] {
        var out = [UInt8](repeating: 0, count: (count + 7) / 8)
        for piece in 0..<count where self[piece] { out[piece / 8] |= 0x80 >> UInt8(piece % 8) }
        return out
    }

    public subscript(index: Int) -> Bool {
        get { words[index >> 6] & (1 << UInt64(index & 63)) != 0 }
        set {
            let mask: UInt64 = 1 << UInt64(index & 63)
            let was = words[index >> 6] & mask != 0
            guard was != newValue else { return }
            if newValue { words[index >> 6] |= mask; setCount += 1 } else { words[index >> 6] &= ~mask; setCount -= 1 }
        }
    }

    public var isComplete: Bool { setCount == count }
    public var isEmpty: Bool { setCount == 0 }

    /// Indices of set bits in ascending order.
    public var setIndices: [Int] {
        var out: [Int] = []
        out.reserveCapacity(setCount)
        for (w, word) in words.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                let bit = bits.trailingZeroBitCount
                out.append(w * 64 + bit)
                bits &= bits - 1
            }
        }
        return out
    }

    /// Whether `other` has any piece this bitfield lacks.
    public func lacksAny(of other: Bitfield) -> Bool {
        zip(words, other.words).contains { ~$0 & $1 != 0 }
    }

    private mutating func clearSpareBits() {
        let spare = words.count * 64 - count
        if spare > 0 { words[words.count - 1] &= UInt64.max >> UInt64(spare) }
    }
}
