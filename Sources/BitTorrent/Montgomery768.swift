/// Modular exponentiation modulo the 768-bit MSE prime (`MSEKeyExchange.prime`), in
/// Montgomery form over twelve 64-bit limbs (least significant first). Small and fixed:
/// one modulus, one width, no allocation inside the loops (the working numbers live in
/// one stack buffer). Measured in release builds it takes well under the 0.5 ms per
/// handshake side the MSE work allows (see docs/architecture.md), so no big-integer
/// package or C library is needed. Numbers are `[UInt64]` of exactly `limbs` limbs.
enum Montgomery768 {
    static let limbs = 12

    /// The modulus P, least significant limb first.
    static let modulus: [UInt64] = limbs(bigEndian: MSEKeyExchange.prime)

    /// -P⁻¹ mod 2⁶⁴ (Newton's iteration doubles the correct low bits each step).
    static let inverse: UInt64 = {
        let low = modulus[0]
        var x: UInt64 = 1
        for _ in 0..<7 { x = x &* (2 &- low &* x) }
        return 0 &- x
    }()

    /// R mod P with R = 2⁷⁶⁸: 1 in Montgomery form. P > 2⁷⁶⁷, so R mod P = R - P.
    static let one: [UInt64] = {
        var value = [UInt64](repeating: 0, count: limbs)
        var borrow = false
        for index in 0..<limbs {
            let (difference, overflow1) = UInt64(0).subtractingReportingOverflow(modulus[index])
            let (result, overflow2) = difference.subtractingReportingOverflow(borrow ? 1 : 0)
            value[index] = result
            borrow = overflow1 || overflow2
        }
        return value
    }()

    /// R² mod P, to bring numbers into Montgomery form: R doubled 768 times modulo P.
    static let rSquared: [UInt64] = {
        var value = one
        value.withUnsafeMutableBufferPointer { buffer in
            for _ in 0..<(64 * limbs) { double(buffer.baseAddress!) }
        }
        return value
    }()

    /// `base` to the power `exponent` modulo P; `base` < P, `exponent` any number of limbs.
    static func power(_ base: [UInt64], _ exponent: [UInt64]) -> [UInt64] {
        precondition(base.count == limbs)
        return withWorkspace { acc, factor, scratch in
            copy(base, to: factor)
            copy(rSquared, to: acc)
            multiply(factor, acc, into: factor, scratch: scratch)  // base · R mod P
            copy(one, to: acc)
            forEachBit(of: exponent) { bit in
                multiply(acc, acc, into: acc, scratch: scratch)
                if bit { multiply(acc, factor, into: acc, scratch: scratch) }
            }
        }
    }

    /// 2 to the power `exponent` modulo P: a doubling instead of a multiplication per set bit.
    static func powerOfTwo(_ exponent: [UInt64]) -> [UInt64] {
        withWorkspace { acc, _, scratch in
            copy(one, to: acc)
            forEachBit(of: exponent) { bit in
                multiply(acc, acc, into: acc, scratch: scratch)
                if bit { double(acc) }
            }
        }
    }

    /// Runs `body` with the accumulator, a second number and scratch space on the stack,
    /// then returns the accumulator taken out of Montgomery form.
    private static func withWorkspace(
        _ body: (UnsafeMutablePointer<UInt64>, UnsafeMutablePointer<UInt64>, UnsafeMutablePointer<UInt64>) -> Void
    ) -> [UInt64] {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 4 * limbs + 2) { space in
            let acc = space.baseAddress!, factor = acc + limbs, scratch = acc + 2 * limbs
            body(acc, factor, scratch)
            factor.update(repeating: 0, count: limbs)
            factor[0] = 1
            multiply(acc, factor, into: acc, scratch: scratch)
            return Array(UnsafeBufferPointer(start: acc, count: limbs))
        }
    }

    /// Calls `body` with each bit of `exponent`, most significant first, from its top set bit.
    private static func forEachBit(of exponent: [UInt64], _ body: (Bool) -> Void) {
        var started = false
        for limb in exponent.reversed() {
            for shift in stride(from: 63, through: 0, by: -1) {
                let bit = (limb >> UInt64(shift)) & 1 == 1
                if !started && !bit { continue }
                started = true
                body(bit)
            }
        }
    }

    private static func copy(_ value: [UInt64], to destination: UnsafeMutablePointer<UInt64>) {
        value.withUnsafeBufferPointer { destination.update(from: $0.baseAddress!, count: limbs) }
    }

    /// `out` = a · b · R⁻¹ mod P (CIOS: multiply and reduce a limb of `b` at a time);
    /// `out` may be `a` or `b`. `scratch` holds `limbs + 2` limbs.
    static func multiply(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, into out: UnsafeMutablePointer<UInt64>,
                         scratch t: UnsafeMutablePointer<UInt64>) {
        let n = limbs
        t.update(repeating: 0, count: n + 2)
        modulus.withUnsafeBufferPointer { pBuffer in
            let p = pBuffer.baseAddress!
            for i in 0..<n {
                let bi = b[i]
                var carry: UInt64 = 0
                for j in 0..<n {
                    (carry, t[j]) = multiplyAdd(a[j], bi, t[j], carry)
                }
                let (sum, overflow) = t[n].addingReportingOverflow(carry)
                t[n] = sum
                t[n + 1] = overflow ? 1 : 0
                let m = t[0] &* inverse
                (carry, _) = multiplyAdd(m, p[0], t[0], 0)
                for j in 1..<n {
                    (carry, t[j - 1]) = multiplyAdd(m, p[j], t[j], carry)
                }
                let (top, overflowTop) = t[n].addingReportingOverflow(carry)
                t[n - 1] = top
                t[n] = t[n + 1] &+ (overflowTop ? 1 : 0)
            }
            // t < 2P: one subtraction at most.
            if t[n] != 0 || !isLess(t, p) {
                subtract(p, from: t)
            }
        }
        out.update(from: t, count: n)
    }

    /// (high, low) of a · b + c + d, which cannot overflow 128 bits.
    @inline(__always)
    private static func multiplyAdd(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) -> (UInt64, UInt64) {
        var (high, low) = a.multipliedFullWidth(by: b)
        var overflow: Bool
        (low, overflow) = low.addingReportingOverflow(c)
        if overflow { high &+= 1 }
        (low, overflow) = low.addingReportingOverflow(d)
        if overflow { high &+= 1 }
        return (high, low)
    }

    /// Whether a < b (both `limbs` long).
    private static func isLess(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>) -> Bool {
        for index in stride(from: limbs - 1, through: 0, by: -1) where a[index] != b[index] {
            return a[index] < b[index]
        }
        return false
    }

    /// value -= p over `limbs` limbs (the borrow out is dropped: it cancels a carry limb).
    private static func subtract(_ p: UnsafePointer<UInt64>, from value: UnsafeMutablePointer<UInt64>) {
        var borrow = false
        for index in 0..<limbs {
            let (difference, overflow1) = value[index].subtractingReportingOverflow(p[index])
            let (result, overflow2) = difference.subtractingReportingOverflow(borrow ? 1 : 0)
            value[index] = result
            borrow = overflow1 || overflow2
        }
    }

    /// value = 2 · value mod P, for value < P.
    private static func double(_ value: UnsafeMutablePointer<UInt64>) {
        var carry: UInt64 = 0
        for index in 0..<limbs {
            let limb = value[index]
            value[index] = (limb << 1) | carry
            carry = limb >> 63
        }
        modulus.withUnsafeBufferPointer { p in
            if carry != 0 || !isLess(value, p.baseAddress!) { subtract(p.baseAddress!, from: value) }
        }
    }

    /// Twelve limbs from 96 big-endian bytes.
    static func limbs(bigEndian bytes: [UInt8]) -> [UInt64] {
        precondition(bytes.count == 8 * limbs)
        return (0..<limbs).map { index in
            let start = bytes.count - 8 * (index + 1)
            return bytes[start..<start + 8].reduce(0) { $0 << 8 | UInt64($1) }
        }
    }

    /// 96 big-endian bytes from twelve limbs (left-padded with zeros, as MSE hashes them).
    static func bigEndianBytes(_ value: [UInt64]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 * limbs)
        for limb in value.reversed() {
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: limb >> UInt64(shift))) }
        }
        return bytes
    }
}
