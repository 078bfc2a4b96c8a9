/// One side's Diffie-Hellman key for message stream encryption: the well-known 768-bit
/// prime P, generator 2, a random private exponent, the 96-byte public key Y = 2^X mod P,
/// and the shared secret S = Y_remote^X mod P, always 96 bytes, left-padded with zeros.
public struct MSEKeyExchange: Sendable {
    /// P, big-endian (the MSE specification's prime).
    public static let prime: [UInt8] = Hex.decode(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563")!
    /// Bytes of a public key or shared secret.
    public static let keyLength = 96
    /// Bits of the private exponent: the specification asks for at least 128 and finds
    /// nothing gained beyond 180; 160 keeps both exponentiations of a side cheap.
    public static let exponentBits = 160

    /// X, least significant limb first.
    let exponent: [UInt64]
    /// Y = 2^X mod P, 96 big-endian bytes.
    public let publicKey: [UInt8]

    /// A key with a random exponent drawn from `generator`.
    public init<G: RandomNumberGenerator>(using generator: inout G) {
        var exponent = (0..<(Self.exponentBits / 64 + 1)).map { _ in generator.next() as UInt64 }
        exponent[exponent.count - 1] &= (1 << UInt64(Self.exponentBits % 64)) - 1
        exponent[exponent.count - 1] |= 1 << UInt64(Self.exponentBits % 64 - 1)  // exactly exponentBits long
        self.init(exponent: exponent)
    }

    /// A key with the exponent `exponent` (least significant limb first): for tests.
    init(exponent: [UInt64]) {
        self.exponent = exponent
        publicKey = Montgomery768.bigEndianBytes(Montgomery768.powerOfTwo(exponent))
    }

    /// S from the other side's 96-byte public key; nil for a key outside 2…P-2 (0, 1 and
    /// P-1 would fix S to a value anyone knows).
    public func sharedSecret(with remoteKey: some Collection<UInt8>) -> [UInt8]? {
        guard remoteKey.count == Self.keyLength else { return nil }
        let remote = Array(remoteKey)
        var pMinusOne = Self.prime
        pMinusOne[pMinusOne.count - 1] -= 1  // P is odd
        guard Self.compare(remote, pMinusOne) < 0,
              Self.compare(remote, [UInt8](repeating: 0, count: 95) + [1]) > 0
        else { return nil }
        return Montgomery768.bigEndianBytes(Montgomery768.power(Montgomery768.limbs(bigEndian: remote), exponent))
    }

    /// Sign of a - b for equally long big-endian numbers.
    private static func compare(_ a: [UInt8], _ b: [UInt8]) -> Int {
        for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
        return 0
    }
}
