/// The RC4 stream cipher as message stream encryption (MSE) uses it: keyed with a 20-byte
/// SHA-1 digest, the first 1024 bytes of keystream discarded (`RC4.mse(key:)`). Encrypting
/// and decrypting are the same operation, done in place over the caller's bytes, so the
/// data path allocates nothing per message.
public struct RC4: Sendable {
    /// The permutation of the 256 byte values, one per 32-bit word: byte-wide entries
    /// make each swap a partial-word store that the next load must wait for (measured:
    /// words are faster). The array's uniqueness check is per buffer, not per byte.
    private var state: [UInt32]
    private var i: UInt32 = 0
    private var j: UInt32 = 0

    /// Keystream bytes MSE throws away before the first byte it uses.
    public static let mseDiscard = 1024

    /// The key schedule for `key` (1–256 bytes).
    public init<C: Collection>(key: C) where C.Element == UInt8 {
        precondition(!key.isEmpty && key.count <= 256, "RC4 key length")
        let key = Array(key)
        var state = (0..<256).map { UInt32($0) }
        var j: UInt32 = 0
        for index in 0..<256 {
            j = (j &+ state[index] &+ UInt32(key[index % key.count])) & 0xFF
            state.swapAt(index, Int(j))
        }
        self.state = state
    }

    /// An MSE cipher: keyed with `key`, its first `mseDiscard` keystream bytes dropped.
    public static func mse<C: Collection>(key: C) -> RC4 where C.Element == UInt8 {
        var cipher = RC4(key: key)
        cipher.skip(mseDiscard)
        return cipher
    }

    /// Advances the keystream by `count` bytes without using them.
    public mutating func skip(_ count: Int) {
        var scratch = [UInt8](repeating: 0, count: count)
        apply(&scratch)
    }

    /// XORs the next `bytes.count` keystream bytes into `bytes`, in place.
    public mutating func apply(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let count = bytes.count
        var i = self.i, j = self.j
        state.withUnsafeMutableBufferPointer { box in
            let s = box.baseAddress!
            for offset in 0..<count {
                i = (i &+ 1) & 0xFF
                let si = s[Int(i)]
                j = (j &+ si) & 0xFF
                let sj = s[Int(j)]
                s[Int(i)] = sj
                s[Int(j)] = si
                base[offset] ^= UInt8(truncatingIfNeeded: s[Int((si &+ sj) & 0xFF)])
            }
        }
        self.i = i
        self.j = j
    }

    /// XORs the keystream into `bytes`, in place.
    public mutating func apply(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { apply($0) }
    }

    /// `bytes` encrypted (or decrypted), as a new array.
    public mutating func applied<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        var copy = Array(bytes)
        apply(&copy)
        return copy
    }
}
