/// Why a NAT-PMP datagram was refused.
public struct NATPMPError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case wrongLength(opcode: UInt8, length: Int, expected: Int)
        case unsupportedVersion(UInt8)
        case notAResponse(opcode: UInt8)
        case unknownOpcode(UInt8)
    }

    public var reason: Reason
    public init(_ reason: Reason) { self.reason = reason }

    public var description: String {
        switch reason {
        case .wrongLength(let opcode, let length, let expected):
            return "NAT-PMP: opcode \(opcode) answer of \(length) bytes, expected \(expected)"
        case .unsupportedVersion(let version): return "NAT-PMP: version \(version), expected 0"
        case .notAResponse(let opcode): return "NAT-PMP: opcode \(opcode) is a request, not an answer"
        case .unknownOpcode(let opcode): return "NAT-PMP: unknown opcode \(opcode)"
        }
    }
}

/// NAT-PMP (RFC 6886) requests and answers, version 0, as they travel to and from the
/// gateway's port 5351.
public enum NATPMPMessage {
    public static let serverPort = 5351
    public static let version: UInt8 = 0

    public enum Transport: UInt8, Hashable, Sendable, CaseIterable {
        case udp = 1
        case tcp = 2
    }

    /// Result codes of RFC 6886 §3.5 that we act on (any value is kept as it came).
    public enum ResultCode {
        public static let success: UInt16 = 0
        public static let notAuthorized: UInt16 = 2
    }

    /// An answer from the gateway.
    public enum Response: Hashable, Sendable {
        /// Opcode 128: the gateway's external IPv4 address (4 bytes).
        case externalAddress(result: UInt16, epoch: UInt32, address: [UInt8])
        /// Opcode 129 (UDP) or 130 (TCP): a mapping made, renewed or (lifetime 0) removed.
        case mapping(transport: Transport, result: UInt16, epoch: UInt32, internalPort: UInt16,
                     externalPort: UInt16, lifetime: UInt32)

        public var result: UInt16 {
            switch self {
            case .externalAddress(let result, _, _), .mapping(_, let result, _, _, _, _): return result
            }
        }

        /// The datagram (the gateway's side; for tests and the fuzz round trip).
        public var encoded: [UInt8] {
            switch self {
            case .externalAddress(let result, let epoch, let address):
                return [NATPMPMessage.version, 128] + be16(result) + be32(epoch) + address
            case .mapping(let transport, let result, let epoch, let internalPort, let externalPort, let lifetime):
                return [NATPMPMessage.version, 128 + transport.rawValue] + be16(result) + be32(epoch)
                    + be16(internalPort) + be16(externalPort) + be32(lifetime)
            }
        }
    }

    /// Request for the external address (opcode 0).
    public static var externalAddressRequest: [UInt8] { [version, 0] }

    /// Request to map `internalPort` (lifetime 0 and suggested port 0 delete the mapping).
    public static func mappingRequest(_ transport: Transport, internalPort: UInt16, suggestedExternalPort: UInt16,
                                      lifetime: UInt32) -> [UInt8] {
        [version, transport.rawValue, 0, 0] + be16(internalPort) + be16(suggestedExternalPort) + be32(lifetime)
    }

    /// Parses an answer: version 0, opcodes 128–130, exact lengths (RFC 6886 §3.2 and
    /// §3.3); anything else is refused.
    public static func parse(_ bytes: some Collection<UInt8>) throws(NATPMPError) -> Response {
        let bytes = Array(bytes)
        guard bytes.count >= 2 else { throw NATPMPError(.wrongLength(opcode: 0, length: bytes.count, expected: 12)) }
        guard bytes[0] == version else { throw NATPMPError(.unsupportedVersion(bytes[0])) }
        let opcode = bytes[1]
        guard opcode >= 128 else { throw NATPMPError(.notAResponse(opcode: opcode)) }
        switch opcode {
        case 128:
            guard bytes.count == 12 else { throw NATPMPError(.wrongLength(opcode: opcode, length: bytes.count, expected: 12)) }
            return .externalAddress(result: get16(bytes, 2), epoch: get32(bytes, 4), address: Array(bytes[8..<12]))
        case 129, 130:
            guard bytes.count == 16 else { throw NATPMPError(.wrongLength(opcode: opcode, length: bytes.count, expected: 16)) }
            return .mapping(transport: opcode == 129 ? .udp : .tcp, result: get16(bytes, 2), epoch: get32(bytes, 4),
                            internalPort: get16(bytes, 8), externalPort: get16(bytes, 10), lifetime: get32(bytes, 12))
        default:
            throw NATPMPError(.unknownOpcode(opcode))
        }
    }

    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
    static func get16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
    static func get32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }
}
