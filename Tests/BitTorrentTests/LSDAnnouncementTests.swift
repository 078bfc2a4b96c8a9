import Foundation
import TestSupport
import Testing

@testable import BitTorrent

@Suite("LSD announces (BEP 14)")
struct LSDAnnouncementTests {
    static let hashA = InfoHash(string: "0123456789abcdef0123456789abcdef01234567")!
    static let hashB = InfoHash(string: "89abcdef0123456789abcdef0123456789abcdef")!

    static func datagram(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test("encodes the BEP's layout byte for byte")
    func encodeGolden() {
        let announce = LSDAnnouncement(host: "239.192.152.143:6771", port: 6881, infoHashes: [Self.hashA, Self.hashB],
                                       cookie: "c0ffee01")
        let expected = "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n"
            + "Infohash: 0123456789abcdef0123456789abcdef01234567\r\n"
            + "Infohash: 89abcdef0123456789abcdef0123456789abcdef\r\ncookie: c0ffee01\r\n\r\n\r\n"
        #expect(announce.encoded == Self.datagram(expected))
    }

    @Test("decodes case-insensitive headers, LF line ends, spaces, unknown headers and repeated hashes")
    func decodeLenient() throws {
        let text = "BT-SEARCH * HTTP/1.1\nhost:[ff15::efc0:988f]:6771\nPORT:   51413\t\n"
            + "X-Other: whatever: with colons\ninfohash: 0123456789ABCDEF0123456789ABCDEF01234567\n"
            + "INFOHASH: 0123456789abcdef0123456789abcdef01234567\nInfohash: 89abcdef0123456789abcdef0123456789abcdef\n\n"
            + "Port: 1\n"  // after the blank line: not a header
        let announce = try LSDAnnouncement(datagram: Self.datagram(text))
        #expect(announce == LSDAnnouncement(host: "[ff15::efc0:988f]:6771", port: 51413,
                                            infoHashes: [Self.hashA, Self.hashB], cookie: nil))
    }

    @Test("refuses what is not a valid announce, saying why", arguments: [
        ("M-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n", LSDError.Reason.notASearch),
        ("BT-SEARCH * HTTP/1.1\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n", .missingPort),
        ("BT-SEARCH * HTTP/1.1\r\nPort: 6881\r\n\r\n", .missingInfoHash),
        ("BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n", .invalidPort("0")),
        ("BT-SEARCH * HTTP/1.1\r\nPort: 65536\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n", .invalidPort("65536")),
        ("BT-SEARCH * HTTP/1.1\r\nPort: +80\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n", .invalidPort("+80")),
        ("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nPort: 2\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n",
         .duplicateHeader("Port")),
        ("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: 0123456789abcdef\r\n\r\n", .invalidInfoHash("0123456789abcdef")),
        ("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: ABCDEFGHIJKLMNOPQRSTUVWXYZ234567\r\n\r\n",
         .invalidInfoHash("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")),  // base32 is not BEP 14
        ("BT-SEARCH * HTTP/1.1\r\nPort 1\r\n\r\n", .malformedLine(line: 2)),
        ("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\ncookie: a b\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n",
         .invalidCookie),
    ])
    func refused(_ text: String, _ reason: LSDError.Reason) {
        #expect(throws: LSDError(reason)) { try LSDAnnouncement(datagram: Self.datagram(text)) }
    }

    @Test("limits: datagram length, header lines, info hashes")
    func limits() {
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: LSDAnnouncement.maxDatagramLength + 1)
        #expect(throws: LSDError(.tooLong(length: long.count, limit: LSDAnnouncement.maxDatagramLength))) {
            try LSDAnnouncement(datagram: long)
        }
        let manyLines = "BT-SEARCH * HTTP/1.1\r\n" + String(repeating: "X: y\r\n", count: LSDAnnouncement.maxLines + 1)
        #expect(throws: LSDError(.tooManyLines(limit: LSDAnnouncement.maxLines))) {
            try LSDAnnouncement(datagram: Self.datagram(manyLines))
        }
        var generator = SplitMix64(seed: 14)
        let hashes = (0...LSDAnnouncement.maxInfoHashes).map { _ in InfoHash(generator.bytes(20))! }
        let tooMany = LSDAnnouncement(host: nil, port: 1, infoHashes: hashes, cookie: nil).encoded
        #expect(throws: LSDError(.tooManyInfoHashes(limit: LSDAnnouncement.maxInfoHashes))) {
            try LSDAnnouncement(datagram: tooMany)
        }
    }

    @Test("the most hashes with the longest host and cookie fit one datagram and round-trip")
    func fullDatagram() throws {
        var generator = SplitMix64(seed: 1400)
        let hashes = (0..<LSDAnnouncement.maxInfoHashes).map { _ in InfoHash(generator.bytes(20))! }
        let announce = LSDAnnouncement(host: String(repeating: "h", count: LSDAnnouncement.maxHostLength), port: 65535,
                                       infoHashes: hashes,
                                       cookie: String(repeating: "c", count: LSDAnnouncement.maxCookieLength))
        #expect(announce.encoded.count <= LSDAnnouncement.maxDatagramLength)
        #expect(try LSDAnnouncement(datagram: announce.encoded) == announce)
    }

    @Test("corpus and crasher inputs round-trip", arguments: FuzzInputs.files("lsd"))
    func fuzzInputs(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        guard let announce = try? LSDAnnouncement(datagram: bytes) else { return }
        #expect(announce.encoded.count <= LSDAnnouncement.maxDatagramLength)
        #expect(try LSDAnnouncement(datagram: announce.encoded) == announce)
        #expect(!announce.infoHashes.isEmpty && announce.port != 0)
    }

    @Test("the corpus is there")
    func corpus() { #expect(FuzzInputs.files("lsd").count >= 3) }
}
