/// The bits of MSE's crypto_provide and crypto_select: what the stream after the
/// handshake is (the handshake itself is always RC4).
public struct MSECryptoMethods: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let plaintext = MSECryptoMethods(rawValue: 0x01)
    public static let rc4 = MSECryptoMethods(rawValue: 0x02)

    public var description: String {
        switch self {
        case .plaintext: return "plaintext"
        case .rc4: return "rc4"
        case [.plaintext, .rc4]: return "plaintext|rc4"
        default: return String(rawValue, radix: 16)
        }
    }
}

/// Why an MSE handshake failed; the connection is closed.
public enum MSEError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The other side's public key is outside 2…P-2.
    case invalidPublicKey
    /// The synchronization marker (HASH('req1', S) for the responder, the encrypted
    /// verification constant for the initiator) was not within the padding limit.
    case noSynchronization
    /// No torrent of ours matches the obfuscated info hash.
    case unknownTorrent
    /// The decrypted verification constant is not eight zero bytes: wrong keys.
    case badVerificationConstant
    /// The other side offers no method we allow.
    case noCommonMethod(offered: UInt32)
    /// crypto_select is not exactly one of the methods we offered.
    case invalidSelection(UInt32)
    /// A padding length above `MSEHandshake.maxPadding`.
    case paddingTooLong(Int)
    /// An initial payload above `MSEHandshake.maxInitialPayload`.
    case initialPayloadTooLong(Int)
    /// Input after the handshake failed.
    case alreadyFailed

    public var description: String {
        switch self {
        case .invalidPublicKey: return "MSE: invalid public key"
        case .noSynchronization: return "MSE: no synchronization marker within the padding limit"
        case .unknownTorrent: return "MSE: obfuscated info hash matches no torrent"
        case .badVerificationConstant: return "MSE: bad verification constant"
        case .noCommonMethod(let offered): return "MSE: no common crypto method (offered \(MSECryptoMethods(rawValue: offered)))"
        case .invalidSelection(let selected): return "MSE: invalid crypto_select \(selected)"
        case .paddingTooLong(let length): return "MSE: padding of \(length) bytes"
        case .initialPayloadTooLong(let length): return "MSE: initial payload of \(length) bytes"
        case .alreadyFailed: return "MSE: handshake already failed"
        }
    }
}
