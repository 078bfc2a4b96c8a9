/// A BEP 29 uTP packet: the 20-byte header, the extension chain (selective ack, and our
/// own "large datagrams accepted" extension) and the payload.
///
/// Layout (big-endian): type(4 bits)|version(4 bits), first extension type, connection id
/// (16), timestamp µs (32), timestamp difference µs (32), window size (32), seq_nr (16),
/// ack_nr (16); then each extension as next-type, length, bytes; then the payload.
public struct UTPPacket: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        case data = 0, fin = 1, state = 2, reset = 3, syn = 4
    }

    public static let version: UInt8 = 1
    public static let headerLength = 20
    /// Extension type 1: selective ack (BEP 29).
    public static let selectiveAckExtension: UInt8 = 1
    /// Extension type 0x7A (ours; others skip unknown extensions): the largest UDP
    /// payload the sender reads whole, 32 bits. Sent on SYN and the SYN's STATE, so a
    /// peer sends packets larger than the internet-safe size only to a reader that says so.
    public static let datagramSizeExtension: UInt8 = 0x7A
    /// The largest UDP payload of any IP datagram (65535 − 20 − 8).
    public static let maxDatagram = 65507
    /// Selective-ack bitmasks: BEP 29 asks for whole 32-bit words, but libtorrent sends
    /// any number of bytes (enough for its out-of-order span, at most 32), so any length
    /// from 1 to this many bytes (1024 packets past the ack) is taken. We send whole words.
    public static let maxSelectiveAckBytes = 128
    /// Extensions per packet at most (a real packet has one or two).
    public static let maxExtensions = 8
    /// Extension type 2: libutp's extension bits (8 bytes, all zero here). libutp (in
    /// transmission) takes a packet whose first extension type is 3 or more for its old
    /// version 0 format, so our datagram-size extension never comes first: when no
    /// selective ack leads the chain, these bits do (everyone skips them).
    public static let extensionBitsExtension: UInt8 = 2

    public var kind: Kind
    public var connectionID: UInt16
    public var timestamp: UInt32
    public var timestampDifference: UInt32
    public var window: UInt32
    public var seq: UInt16
    public var ack: UInt16
    /// Bit i (byte i/8, bit i%8 from the least significant) set: packet ack+2+i arrived.
    public var selectiveAck: [UInt8]?
    /// Our datagram-size extension, when present.
    public var datagramSize: UInt32?
    public var payload: ArraySlice<UInt8>

    public init(kind: Kind, connectionID: UInt16, timestamp: UInt32 = 0, timestampDifference: UInt32 = 0,
                window: UInt32 = 0, seq: UInt16 = 0, ack: UInt16 = 0, selectiveAck: [UInt8]? = nil,
                datagramSize: UInt32? = nil, payload: ArraySlice<UInt8> = []) {
        self.kind = kind
        self.connectionID = connectionID
        self.timestamp = timestamp
        self.timestampDifference = timestampDifference
        self.window = window
        self.seq = seq
        self.ack = ack
        self.selectiveAck = selectiveAck
        self.datagramSize = datagramSize
        self.payload = payload
    }

    /// Bytes before the payload: the header and the extensions.
    public var overhead: Int {
        Self.headerLength + (selectiveAck.map { 2 + $0.count } ?? 0)
            + (datagramSize == nil ? 0 : selectiveAck == nil ? 16 : 6)
    }

    /// Appends the packet's bytes to `out`.
    public func encode(into out: inout [UInt8]) {
        var chain: [(UInt8, [UInt8])] = []
        if let mask = selectiveAck { chain.append((Self.selectiveAckExtension, mask)) }
        if let size = datagramSize {
            if chain.isEmpty { chain.append((Self.extensionBitsExtension, [UInt8](repeating: 0, count: 8))) }
            chain.append((Self.datagramSizeExtension, Self.bytes32(size)))
        }
        out.reserveCapacity(out.count + overhead + payload.count)
        out.append(kind.rawValue << 4 | Self.version)
        out.append(chain.first?.0 ?? 0)
        Self.append16(connectionID, to: &out)
        Self.append32(timestamp, to: &out)
        Self.append32(timestampDifference, to: &out)
        Self.append32(window, to: &out)
        Self.append16(seq, to: &out)
        Self.append16(ack, to: &out)
        for (index, (_, bytes)) in chain.enumerated() {
            out.append(index + 1 < chain.count ? chain[index + 1].0 : 0)
            out.append(UInt8(bytes.count))
            out.append(contentsOf: bytes)
        }
        out.append(contentsOf: payload)
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }

    /// Decodes one datagram. `bufferSize` is the size of the buffer it was read into: a
    /// datagram that filled it may have been cut short (`MSG_TRUNC`), so it is refused
    /// rather than acknowledged with a corrupt tail.
    /// The payload is a slice of `bytes` (no copy).
    public static func decode(_ bytes: [UInt8], bufferSize: Int = maxDatagram + 1) throws(UTPError) -> UTPPacket {
        let count = bytes.count
        if count >= bufferSize { throw .truncated(count) }
        if count > maxDatagram { throw .tooLong(count) }
        if count < headerLength { throw .tooShort(count) }
        func byte(_ offset: Int) -> UInt8 { bytes[offset] }
        func u16(_ offset: Int) -> UInt16 { UInt16(byte(offset)) << 8 | UInt16(byte(offset + 1)) }
        func u32(_ offset: Int) -> UInt32 { UInt32(u16(offset)) << 16 | UInt32(u16(offset + 2)) }
        let first = byte(0)
        guard first & 0x0F == version else { throw .badVersion(first & 0x0F) }
        guard let kind = Kind(rawValue: first >> 4) else { throw .badType(first >> 4) }
        var packet = UTPPacket(kind: kind, connectionID: u16(2), timestamp: u32(4), timestampDifference: u32(8),
                               window: u32(12), seq: u16(16), ack: u16(18))
        var next = byte(1)
        var offset = headerLength
        var extensions = 0
        while next != 0 {
            extensions += 1
            if extensions > maxExtensions { throw .tooManyExtensions }
            guard offset + 2 <= count else { throw .extensionTruncated(offset: offset) }
            let type = next
            next = byte(offset)
            let length = Int(byte(offset + 1))
            offset += 2
            guard offset + length <= count else { throw .extensionTruncated(offset: offset) }
            switch type {
            case selectiveAckExtension:
                guard packet.selectiveAck == nil else { throw .duplicateExtension(type) }
                guard length >= 1, length <= maxSelectiveAckBytes else {
                    throw .badSelectiveAck(length: length)
                }
                packet.selectiveAck = Array(bytes[offset..<offset + length])
            case datagramSizeExtension:
                guard packet.datagramSize == nil else { throw .duplicateExtension(type) }
                guard length == 4 else { throw .badExtensionLength(type: type, length: length) }
                packet.datagramSize = u32(offset)
            default:
                break  // unknown extensions are skipped, as BEP 29 asks
            }
            offset += length
        }
        packet.payload = bytes[offset..<count]
        if !packet.payload.isEmpty, kind != .data { throw .payloadNotAllowed(kind) }
        return packet
    }

    static func append16(_ value: UInt16, to out: inout [UInt8]) {
        out.append(UInt8(value >> 8))
        out.append(UInt8(value & 0xFF))
    }

    static func append32(_ value: UInt32, to out: inout [UInt8]) {
        append16(UInt16(value >> 16), to: &out)
        append16(UInt16(value & 0xFFFF), to: &out)
    }

    static func bytes32(_ value: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        append32(value, to: &out)
        return out
    }
}

/// What makes a datagram not a uTP packet we accept.
public enum UTPError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooShort(Int)
    case tooLong(Int)
    case truncated(Int)
    case badVersion(UInt8)
    case badType(UInt8)
    case tooManyExtensions
    case extensionTruncated(offset: Int)
    case duplicateExtension(UInt8)
    case badSelectiveAck(length: Int)
    case badExtensionLength(type: UInt8, length: Int)
    case payloadNotAllowed(UTPPacket.Kind)

    public var description: String {
        switch self {
        case .tooShort(let count): "uTP datagram of \(count) bytes, shorter than the 20-byte header"
        case .tooLong(let count): "uTP datagram of \(count) bytes, longer than any UDP payload"
        case .truncated(let count): "uTP datagram of \(count) bytes filled the receive buffer (may be truncated)"
        case .badVersion(let version): "uTP version \(version), expected 1"
        case .badType(let type): "uTP packet type \(type), expected 0–4"
        case .tooManyExtensions: "more than \(UTPPacket.maxExtensions) uTP extensions"
        case .extensionTruncated(let offset): "uTP extension cut short at byte \(offset)"
        case .duplicateExtension(let type): "uTP extension \(type) twice"
        case .badSelectiveAck(let length): "uTP selective ack of \(length) bytes (1–128)"
        case .badExtensionLength(let type, let length): "uTP extension \(type) of \(length) bytes"
        case .payloadNotAllowed(let kind): "uTP \(kind) packet with a payload"
        }
    }
}

/// 16-bit sequence numbers compared modulo 2¹⁶: `a` is after `b` when it is less than half
/// the space ahead.
public enum UTPSequence {
    @inline(__always)
    public static func isAfter(_ a: UInt16, _ b: UInt16) -> Bool {
        a != b && a &- b < 0x8000
    }

    /// How far `a` is ahead of `b` (negative when behind).
    @inline(__always)
    public static func distance(from b: UInt16, to a: UInt16) -> Int {
        Int(Int16(bitPattern: a &- b))
    }
}
