/// A message of the peer wire protocol (BEP 3, BEP 6 fast extension, BEP 10 extended).
public enum PeerMessage: Hashable, Sendable {
    case keepAlive
    case choke
    case unchoke
    case interested
    case notInterested
    case have(piece: Int)
    case bitfield([UInt8])
    case request(piece: Int, begin: Int, length: Int)
    case piece(piece: Int, begin: Int, block: [UInt8])
    case cancel(piece: Int, begin: Int, length: Int)
    case port(UInt16)
    case suggest(piece: Int)
    case haveAll
    case haveNone
    case reject(piece: Int, begin: Int, length: Int)
    case allowedFast(piece: Int)
    /// BEP 10: extended message id (0 = handshake) and its payload.
    case extended(id: UInt8, payload: [UInt8])

    public enum ID: UInt8 {
        case choke = 0, unchoke, interested, notInterested, have, bitfield, request, piece, cancel, port
        case suggest = 0x0D, haveAll = 0x0E, haveNone = 0x0F, reject = 0x10, allowedFast = 0x11
        case extended = 20
    }
}

/// The 68-byte BEP 3 handshake.
public struct Handshake: Hashable, Sendable {
    public static let protocolString = Array("BitTorrent protocol".utf8)
    public static let length = 68

    public var infoHash: InfoHash
    public var peerID: PeerID
    public var reserved: [UInt8]

    /// BEP 10 extension protocol bit (reserved byte 5, 0x10).
    public var supportsExtensions: Bool { reserved[5] & 0x10 != 0 }
    /// BEP 6 fast extension bit (reserved byte 7, 0x04).
    public var supportsFast: Bool { reserved[7] & 0x04 != 0 }
    /// BEP 5 DHT bit (reserved byte 7, 0x01).
    public var supportsDHT: Bool { reserved[7] & 0x01 != 0 }

    public init(infoHash: InfoHash, peerID: PeerID, extensions: Bool = true, fast: Bool = true, dht: Bool = false) {
        self.infoHash = infoHash
        self.peerID = peerID
        var reserved = [UInt8](repeating: 0, count: 8)
        if extensions { reserved[5] |= 0x10 }
        if fast { reserved[7] |= 0x04 }
        if dht { reserved[7] |= 0x01 }
        self.reserved = reserved
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = [19] + Handshake.protocolString + reserved
        out += infoHash.bytes
        out += peerID.bytes
        return out
    }

    /// Decodes the first 68 bytes; nil while fewer are available.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(WireError) -> Handshake? {
        guard bytes.count >= 1 else { return nil }
        let start = bytes.startIndex
        guard bytes[start] == 19 else { throw WireError(.badHandshake, offset: 0) }
        guard bytes.count >= length else {
            // Reject a wrong protocol string as soon as it is visible.
            let seen = bytes[(start + 1)..<min(bytes.endIndex, start + 20)]
            guard seen.elementsEqual(protocolString.prefix(seen.count)) else { throw WireError(.badHandshake, offset: 1) }
            return nil
        }
        guard bytes[(start + 1)..<(start + 20)].elementsEqual(protocolString) else {
            throw WireError(.badHandshake, offset: 1)
        }
        var handshake = Handshake(infoHash: InfoHash(bytes[(start + 28)..<(start + 48)])!,
                                  peerID: PeerID(bytes[(start + 48)..<(start + 68)])!)
        handshake.reserved = Array(bytes[(start + 20)..<(start + 28)])
        return handshake
    }
}

/// Why a peer's bytes were refused; the connection is closed.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case badHandshake
        case messageTooLong(length: Int, limit: Int)
        case wrongLength(id: UInt8, length: Int)
        case unknownMessage(id: UInt8)
    }

    public var reason: Reason
    public var offset: Int

    public init(_ reason: Reason, offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String {
        switch reason {
        case .badHandshake: return "wire: malformed handshake at byte \(offset)"
        case .messageTooLong(let length, let limit): return "wire: message of \(length) bytes exceeds \(limit)"
        case .wrongLength(let id, let length): return "wire: message \(id) has wrong length \(length)"
        case .unknownMessage(let id): return "wire: unknown message id \(id)"
        }
    }
}

/// One frame of the peer wire.
public enum WireFrame: Hashable, Sendable {
    case message(PeerMessage)
    /// A PIECE message whose block is `length` bytes at `blockOffset` from the frame's start.
    case block(piece: Int, begin: Int, blockOffset: Int, length: Int)
}

/// Frames and parses peer messages from a byte buffer; never reads a socket.
public struct PeerMessageDecoder: Sendable {
    /// Longest message accepted: a 16 KiB block plus headers, or a bitfield / extended
    /// message for a torrent with up to 8 Mi pieces (1 MiB), whichever is larger.
    public static let defaultMaxLength = 1 << 20 + 13

    public var maxLength: Int

    public init(maxLength: Int = PeerMessageDecoder.defaultMaxLength) { self.maxLength = maxLength }

    /// Decodes one length-prefixed message at the start of `bytes`: the message and bytes
    /// consumed, or nil when more input is needed. The claimed length is checked before
    /// anything is allocated.
    public func decode(_ bytes: ArraySlice<UInt8>) throws(WireError) -> (message: PeerMessage, consumed: Int)? {
        guard let (frame, consumed) = try decodeFrame(bytes) else { return nil }
        switch frame {
        case .message(let message):
            return (message, consumed)
        case .block(let piece, let begin, let offset, let length):
            let start = bytes.startIndex + offset
            return (.piece(piece: piece, begin: begin, block: Array(bytes[start..<(start + length)])), consumed)
        }
    }

    /// The one framing of the peer wire: the frame at the start of `bytes` and the bytes it
    /// takes, or nil when more input is needed. A PIECE's block is not copied: the frame
    /// says where it lies, so a caller holding a buffer can take it in place.
    public func decodeFrame<Bytes: RandomAccessCollection>(_ bytes: Bytes) throws(WireError) -> (frame: WireFrame, consumed: Int)?
    where Bytes.Element == UInt8, Bytes.Index == Int {
        guard bytes.count >= 4 else { return nil }
        let s = bytes.startIndex
        let length = Int(bytes[s]) << 24 | Int(bytes[s + 1]) << 16 | Int(bytes[s + 2]) << 8 | Int(bytes[s + 3])
        guard length <= maxLength else { throw WireError(.messageTooLong(length: length, limit: maxLength), offset: 0) }
        guard bytes.count >= 4 + length else { return nil }
        if length == 0 { return (.message(.keepAlive), 4) }
        if bytes[s + 4] == PeerMessage.ID.piece.rawValue, length >= 9 {
            func int32(_ at: Int) -> Int {
                Int(bytes[s + at]) << 24 | Int(bytes[s + at + 1]) << 16 | Int(bytes[s + at + 2]) << 8 | Int(bytes[s + at + 3])
            }
            return (.block(piece: int32(5), begin: int32(9), blockOffset: 13, length: length - 9), 4 + length)
        }
        let body = Array(bytes[(s + 4)..<(s + 4 + length)])
        return (.message(try PeerMessageDecoder.parse(body[...])), 4 + length)
    }

    static func int32(_ bytes: ArraySlice<UInt8>, _ at: Int) -> Int {
        let i = bytes.startIndex + at
        return Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
    }

    /// Parses a message body (id + payload).
    public static func parse(_ body: ArraySlice<UInt8>) throws(WireError) -> PeerMessage {
        let id = body[body.startIndex]
        let length = body.count
        func expect(_ wanted: Int) throws(WireError) {
            guard length == wanted else { throw WireError(.wrongLength(id: id, length: length), offset: 4) }
        }
        guard let known = PeerMessage.ID(rawValue: id) else { throw WireError(.unknownMessage(id: id), offset: 4) }
        switch known {
        case .choke: try expect(1); return .choke
        case .unchoke: try expect(1); return .unchoke
        case .interested: try expect(1); return .interested
        case .notInterested: try expect(1); return .notInterested
        case .have: try expect(5); return .have(piece: int32(body, 1))
        case .bitfield: return .bitfield(Array(body.dropFirst()))
        case .request: try expect(13); return .request(piece: int32(body, 1), begin: int32(body, 5), length: int32(body, 9))
        case .piece:
            guard length >= 9 else { throw WireError(.wrongLength(id: id, length: length), offset: 4) }
            return .piece(piece: int32(body, 1), begin: int32(body, 5), block: Array(body.dropFirst(9)))
        case .cancel: try expect(13); return .cancel(piece: int32(body, 1), begin: int32(body, 5), length: int32(body, 9))
        case .port:
            try expect(3)
            return .port(UInt16(body[body.startIndex + 1]) << 8 | UInt16(body[body.startIndex + 2]))
        case .suggest: try expect(5); return .suggest(piece: int32(body, 1))
        case .haveAll: try expect(1); return .haveAll
        case .haveNone: try expect(1); return .haveNone
        case .reject: try expect(13); return .reject(piece: int32(body, 1), begin: int32(body, 5), length: int32(body, 9))
        case .allowedFast: try expect(5); return .allowedFast(piece: int32(body, 1))
        case .extended:
            guard length >= 2 else { throw WireError(.wrongLength(id: id, length: length), offset: 4) }
            return .extended(id: body[body.startIndex + 1], payload: Array(body.dropFirst(2)))
        }
    }
}

extension PeerMessage {
    /// The length-prefixed wire form.
    public func encode(into out: inout [UInt8]) {
        func u32(_ value: Int) {
            out.append(UInt8(truncatingIfNeeded: value >> 24)); out.append(UInt8(truncatingIfNeeded: value >> 16))
            out.append(UInt8(truncatingIfNeeded: value >> 8)); out.append(UInt8(truncatingIfNeeded: value))
        }
        func simple(_ id: ID) { u32(1); out.append(id.rawValue) }
        func triple(_ id: ID, _ a: Int, _ b: Int, _ c: Int) { u32(13); out.append(id.rawValue); u32(a); u32(b); u32(c) }
        switch self {
        case .keepAlive: u32(0)
        case .choke: simple(.choke)
        case .unchoke: simple(.unchoke)
        case .interested: simple(.interested)
        case .notInterested: simple(.notInterested)
        case .have(let piece): u32(5); out.append(ID.have.rawValue); u32(piece)
        case .bitfield(let bits): u32(1 + bits.count); out.append(ID.bitfield.rawValue); out += bits
        case .request(let p, let b, let l): triple(.request, p, b, l)
        case .piece(let p, let b, let block):
            u32(9 + block.count); out.append(ID.piece.rawValue); u32(p); u32(b); out += block
        case .cancel(let p, let b, let l): triple(.cancel, p, b, l)
        case .port(let port): u32(3); out.append(ID.port.rawValue); out.append(UInt8(port >> 8)); out.append(UInt8(port & 0xFF))
        case .suggest(let piece): u32(5); out.append(ID.suggest.rawValue); u32(piece)
        case .haveAll: simple(.haveAll)
        case .haveNone: simple(.haveNone)
        case .reject(let p, let b, let l): triple(.reject, p, b, l)
        case .allowedFast(let piece): u32(5); out.append(ID.allowedFast.rawValue); u32(piece)
        case .extended(let id, let payload): u32(2 + payload.count); out.append(ID.extended.rawValue); out.append(id); out += payload
        }
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }
}
