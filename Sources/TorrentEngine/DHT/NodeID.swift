import BitTorrent

/// 160-bit DHT ids (`Digest20`) as Kademlia uses them: XOR distance, shared prefix length,
/// random ids inside a bucket, and the BEP 42 rule tying a node id to its IP address.
extension Digest20 {
    /// The XOR distance between two ids (compared as unsigned 160-bit integers by `<`).
    func distance(to other: Digest20) -> Digest20 {
        Digest20(zip(bytes, other.bytes).map { $0 ^ $1 })!
    }

    /// How many leading bits the two ids share (160 when equal).
    func commonPrefixLength(with other: Digest20) -> Int {
        for (index, (a, b)) in zip(bytes, other.bytes).enumerated() where a != b {
            return index * 8 + (a ^ b).leadingZeroBitCount
        }
        return 160
    }

    static func random(using random: inout some RandomNumberGenerator) -> Digest20 {
        Digest20((0..<20).map { _ in UInt8.random(in: 0...255, using: &random) })!
    }

    /// A random id sharing exactly `prefix` leading bits with `self` (the range of bucket
    /// `prefix` of a table around `self`).
    func randomID(sharingPrefix prefix: Int, using random: inout some RandomNumberGenerator) -> Digest20 {
        var out = Digest20.random(using: &random).bytes
        let own = bytes
        guard prefix < 160 else { return self }
        for bit in 0...prefix {
            let byte = bit / 8, mask = UInt8(0x80) >> UInt8(bit % 8)
            let ownBit = own[byte] & mask
            let wanted = bit == prefix ? ownBit ^ mask : ownBit
            out[byte] = out[byte] & ~mask | wanted
        }
        return Digest20(out)!
    }
}

/// BEP 42: a node id whose first 21 bits are a CRC32-C of the node's masked IP address, so
/// nobody can pick an id next to a target at will.
enum NodeIDRule {
    private static let mask4: [UInt8] = [0x03, 0x0F, 0x3F, 0xFF]
    private static let mask6: [UInt8] = [0x01, 0x03, 0x07, 0x0F, 0x1F, 0x3F, 0x7F, 0xFF]

    /// The CRC of `ip` (4 or 16 bytes; only the first 8 of IPv6 count) with the 3-bit `r`.
    private static func prefix(_ ip: [UInt8], r: UInt8) -> UInt32 {
        let mask = ip.count == 4 ? mask4 : mask6
        var masked = zip(ip.prefix(mask.count), mask).map { $0 & $1 }
        masked[0] |= (r & 0x07) << 5
        return crc32c(masked)
    }

    /// An id for `ip`: the CRC prefix, then random bytes, the last byte holding `r`.
    static func id(for ip: [UInt8], using random: inout some RandomNumberGenerator) -> Digest20 {
        let last = UInt8.random(in: 0...255, using: &random)
        let crc = prefix(ip, r: last & 0x07)
        var out = Digest20.random(using: &random).bytes
        out[0] = UInt8(truncatingIfNeeded: crc >> 24)
        out[1] = UInt8(truncatingIfNeeded: crc >> 16)
        out[2] = UInt8(truncatingIfNeeded: crc >> 8) & 0xF8 | out[2] & 0x07
        out[19] = last
        return Digest20(out)!
    }

    /// Whether `id` follows the rule for `ip`.
    static func isValid(_ id: Digest20, for ip: [UInt8]) -> Bool {
        let bytes = id.bytes
        let crc = prefix(ip, r: bytes[19] & 0x07)
        return bytes[0] == UInt8(truncatingIfNeeded: crc >> 24) && bytes[1] == UInt8(truncatingIfNeeded: crc >> 16)
            && bytes[2] & 0xF8 == UInt8(truncatingIfNeeded: crc >> 8) & 0xF8
    }

    /// Addresses the rule does not apply to (BEP 42: local networks), where any id is fine.
    static func isExempt(_ ip: [UInt8]) -> Bool {
        if ip.count == 4 {
            return ip[0] == 10 || ip[0] == 127 || (ip[0] == 172 && ip[1] & 0xF0 == 16)
                || (ip[0] == 192 && ip[1] == 168) || (ip[0] == 169 && ip[1] == 254)
        }
        return ip.count != 16 || ip[0] & 0xFE == 0xFC || (ip[0] == 0xFE && ip[1] & 0xC0 == 0x80)
            || ip == [UInt8](repeating: 0, count: 15) + [1]
    }

    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? crc >> 1 ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }
}

/// A small seeded generator (SplitMix64), so a node's choices replay in tests.
struct DHTRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ z >> 30) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ z >> 27) &* 0x94D0_49BB_1331_11EB
        return z ^ z >> 31
    }
}
