/// Why a local service discovery datagram was refused.
public struct LSDError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case tooLong(length: Int, limit: Int)
        case notASearch
        case malformedLine(line: Int)
        case tooManyLines(limit: Int)
        case missingPort
        case invalidPort(String)
        case duplicateHeader(String)
        case missingInfoHash
        case invalidInfoHash(String)
        case tooManyInfoHashes(limit: Int)
        case invalidCookie
        case invalidHost
    }

    public var reason: Reason
    public init(_ reason: Reason) { self.reason = reason }

    public var description: String {
        switch reason {
        case .tooLong(let length, let limit): return "LSD: datagram of \(length) bytes exceeds \(limit)"
        case .notASearch: return "LSD: not a 'BT-SEARCH * HTTP/1.1' request"
        case .malformedLine(let line): return "LSD: line \(line) is not a 'Name: value' header"
        case .tooManyLines(let limit): return "LSD: more than \(limit) header lines"
        case .missingPort: return "LSD: no Port header"
        case .invalidPort(let text): return "LSD: invalid port '\(text)'"
        case .duplicateHeader(let name): return "LSD: header '\(name)' given twice"
        case .missingInfoHash: return "LSD: no Infohash header"
        case .invalidInfoHash(let text): return "LSD: invalid info hash '\(text)' (need 40 hex digits)"
        case .tooManyInfoHashes(let limit): return "LSD: more than \(limit) info hashes"
        case .invalidCookie: return "LSD: cookie is empty, too long or not printable ASCII"
        case .invalidHost: return "LSD: Host is too long or not printable ASCII"
        }
    }
}

/// A BEP 14 local service discovery announce: an HTTP-like `BT-SEARCH` request sent to
/// a multicast group, saying that the sender takes peer connections on `port` for each
/// of `infoHashes`. The `cookie` lets a sender recognize (and ignore) its own announces
/// looped back by the group.
public struct LSDAnnouncement: Hashable, Sendable {
    /// BEP 14: "the packet length should not exceed 1400 bytes"; the decoder refuses
    /// longer datagrams, and `maxInfoHashes` keeps encoded announces under it.
    public static let maxDatagramLength = 1400
    /// Most `Infohash` headers in one announce: what fits in `maxDatagramLength` with the
    /// longest host and cookie allowed (each header line is 52 bytes).
    public static let maxInfoHashes = 20
    /// Most header lines read (announces carry 4 plus the extra hashes).
    public static let maxLines = 40
    /// Longest `cookie` and `Host` values kept.
    public static let maxCookieLength = 64
    public static let maxHostLength = 64

    /// The group the announce was sent to, as the `Host` header has it
    /// (`239.192.152.143:6771`); nil when the header is absent (it is not needed to act
    /// on an announce).
    public var host: String?
    public var port: UInt16
    /// One or more torrents, in order, without duplicates.
    public var infoHashes: [InfoHash]
    public var cookie: String?

    public init(host: String?, port: UInt16, infoHashes: [InfoHash], cookie: String?) {
        self.host = host
        self.port = port
        self.infoHashes = infoHashes
        self.cookie = cookie
    }

    /// The datagram: request line, `Host`, `Port`, one `Infohash` per torrent, `cookie`
    /// when set, then the two empty lines BEP 14 shows.
    public var encoded: [UInt8] {
        var text = "BT-SEARCH * HTTP/1.1\r\n"
        if let host { text += "Host: \(host)\r\n" }
        text += "Port: \(port)\r\n"
        for hash in infoHashes { text += "Infohash: \(hash.hex)\r\n" }
        if let cookie { text += "cookie: \(cookie)\r\n" }
        text += "\r\n\r\n"
        return Array(text.utf8)
    }

    /// Parses a datagram. Header names are case-insensitive, lines may end in CRLF or LF,
    /// headers not understood are ignored (BEP 14 asks for that), a repeated info hash is
    /// kept once.
    public init(datagram: some Collection<UInt8>) throws(LSDError) {
        guard datagram.count <= Self.maxDatagramLength else {
            throw LSDError(.tooLong(length: datagram.count, limit: Self.maxDatagramLength))
        }
        var lines = Self.lines(Array(datagram))
        guard let request = lines.first, Self.isSearchLine(request) else { throw LSDError(.notASearch) }
        lines.removeFirst()
        var host: String?
        var port: UInt16?
        var hashes: [InfoHash] = []
        var cookie: String?
        var count = 0
        for line in lines {
            if line.isEmpty { break }  // end of the headers
            count += 1
            guard count <= Self.maxLines else { throw LSDError(.tooManyLines(limit: Self.maxLines)) }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                throw LSDError(.malformedLine(line: count + 1))
            }
            let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
            let value = Self.trimmed(line[(colon + 1)...])
            switch name {
            case "port":
                guard port == nil else { throw LSDError(.duplicateHeader("Port")) }
                let text = String(decoding: value, as: UTF8.self)
                guard value.count <= 5, value.allSatisfy({ (0x30...0x39).contains($0) }),
                      let number = UInt16(text), number > 0 else { throw LSDError(.invalidPort(Self.shown(value))) }
                port = number
            case "infohash":
                guard value.count == 40, let hash = InfoHash(string: String(decoding: value, as: UTF8.self)) else {
                    throw LSDError(.invalidInfoHash(Self.shown(value)))
                }
                if hashes.contains(hash) { continue }
                guard hashes.count < Self.maxInfoHashes else { throw LSDError(.tooManyInfoHashes(limit: Self.maxInfoHashes)) }
                hashes.append(hash)
            case "cookie":
                guard cookie == nil else { throw LSDError(.duplicateHeader("cookie")) }
                guard Self.isToken(value, limit: Self.maxCookieLength) else { throw LSDError(.invalidCookie) }
                cookie = String(decoding: value, as: UTF8.self)
            case "host":
                guard host == nil else { throw LSDError(.duplicateHeader("Host")) }
                guard Self.isToken(value, limit: Self.maxHostLength) else { throw LSDError(.invalidHost) }
                host = String(decoding: value, as: UTF8.self)
            default:
                continue
            }
        }
        guard let port else { throw LSDError(.missingPort) }
        guard !hashes.isEmpty else { throw LSDError(.missingInfoHash) }
        self.init(host: host, port: port, infoHashes: hashes, cookie: cookie)
    }

    // MARK: Helpers

    private static func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            line.last == UInt8(ascii: "\r") ? line.dropLast() : line
        }
    }

    private static func isSearchLine(_ line: ArraySlice<UInt8>) -> Bool {
        let words = line.split(separator: UInt8(ascii: " "))
        return words.count == 3 && Array(words[0]) == Array("BT-SEARCH".utf8) && Array(words[1]) == [UInt8(ascii: "*")]
            && Array(words[2]).starts(with: Array("HTTP/1.".utf8))
    }

    private static func trimmed(_ value: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var value = value
        while let first = value.first, first == 0x20 || first == 0x09 { value.removeFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value.removeLast() }
        return value
    }

    /// Non-empty printable ASCII without spaces, at most `limit` bytes: what survives a
    /// round trip through a header line.
    private static func isToken(_ value: ArraySlice<UInt8>, limit: Int) -> Bool {
        !value.isEmpty && value.count <= limit && value.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// A refused value for an error message: at most 50 bytes, decoded leniently.
    private static func shown(_ value: ArraySlice<UInt8>) -> String {
        String(decoding: value.prefix(50), as: UTF8.self)
    }
}
