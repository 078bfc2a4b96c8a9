import BitTorrent
import Testing
@testable import TorrentHTTP

@Suite("HTTP request parsing")
struct ParsingTests {
    @Test("Range headers against a 1000-byte entity", arguments: [
        (nil, ".whole"),
        ("bytes=0-99", "0..<100"),
        ("bytes=900-", "900..<1000"),
        ("bytes=-100", "900..<1000"),
        ("bytes=-5000", "0..<1000"),
        ("bytes=0-0", "0..<1"),
        ("bytes=990-2000", "990..<1000"),
        ("bytes=0-9, 20-29", "0..<10,20..<30"),
        ("bytes=1000-", ".unsatisfiable"),
        ("bytes=1000-1001,2000-", ".unsatisfiable"),
        ("bytes=-0", ".unsatisfiable"),
        ("bytes=5-4", ".whole"),
        ("bytes=a-b", ".whole"),
        ("bytes=-", ".whole"),
        ("bytes=1-2-3", ".whole"),
        ("bytes= +1-2", ".whole"),
        ("bytes=99999999999999999999-", ".whole"),
        ("items=0-9", ".whole"),
        ("bytes=", ".whole"),
        // Overlapping or touching ranges are merged, in the place of the first asked.
        ("bytes=0-9,10-19", "0..<20"),
        ("bytes=500-599,0-9,5-14", "500..<600,0..<15"),
        ("bytes=-100,900-", "900..<1000"),
        ("bytes=20-29,0-9,8-25", "0..<30"),
        ("bytes=0-9,20-29,40-49", "0..<10,20..<30,40..<50"),
        ("bytes=40-49,20-29,0-9", "40..<50,20..<30,0..<10"),
        ("bytes=0-0,2-2,1-1", "0..<3"),
    ] as [(String?, String)])
    func ranges(header: String?, expected: String) {
        let rendered: String
        switch ByteRanges.parse(header, size: 1000) {
        case .whole: rendered = ".whole"
        case .unsatisfiable: rendered = ".unsatisfiable"
        case .partial(let list): rendered = list.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ",")
        }
        #expect(rendered == expected, "\(String(describing: header))")
    }

    @Test("more ranges than the limit are answered with the whole entity")
    func tooManyRanges() {
        let header = "bytes=" + (0..<(ByteRanges.maxRanges + 1)).map { "\($0 * 10)-\($0 * 10 + 1)" }.joined(separator: ",")
        #expect(ByteRanges.parse(header, size: 10_000) == .whole)
    }

    @Test("16 whole-entity ranges are one range: never more bytes than the entity (no amplification)")
    func repeatedWholeRanges() {
        let header = "bytes=" + Array(repeating: "0-", count: ByteRanges.maxRanges).joined(separator: ",")
        #expect(ByteRanges.parse(header, size: 1000) == .partial([0..<1000]))
        let suffixes = "bytes=" + (1...ByteRanges.maxRanges).map { "-\($0 * 100)" }.joined(separator: ",")
        #expect(ByteRanges.parse(suffixes, size: 1000) == .partial([0..<1000]))
    }

    @Test("multipart boundaries have one length, so HEAD and GET agree on Content-Length")
    func boundaryLength() {
        let lengths = Set((0..<2000).map { _ in Responder.multipartBoundary().count })
        #expect(lengths == [Responder.boundaryLength])
    }

    @Test("request targets: origin form, and absolute form (RFC 9112 §3.2.2) split into authority and path",
          arguments: [
              ("/t/x?y", "nil /t/x?y"),
              ("http://127.0.0.1:8888/t/x", "127.0.0.1:8888 /t/x"),
              ("HTTP://LocalHost/", "LocalHost /"),
              ("http://[::1]:8888", "[::1]:8888 /"),
              ("http://localhost?x=1", "localhost /?x=1"),
              ("http://localhost/a/b?c", "localhost /a/b?c"),
              ("http://user@127.0.0.1/", "400"),
              ("http:///t/x", "400"),
              ("http://", "400"),
              ("https://127.0.0.1/", "400"),
              ("ftp://127.0.0.1/", "400"),
              ("*", "400"),
              ("t/x", "400"),
              ("", "400"),
          ])
    func targets(target: String, expected: String) {
        let rendered: String
        do {
            let parsed = try RequestTarget.parse(target)
            rendered = (parsed.authority ?? "nil") + " " + parsed.path
        } catch {
            rendered = "400"
        }
        #expect(rendered == expected, "\(target)")
    }

    static let hex = String(repeating: "ab", count: 20)

    @Test("routes, and every traversal refused before any lookup", arguments: [
        ("/", "index"),
        ("/?x=1", "index"),
        ("/t/\(hex)/", "torrent"),
        ("/t/\(hex).m3u", "playlist"),
        ("/t/\(hex)/clip.mp4", "file clip.mp4"),
        ("/t/\(hex)/a%20b/c%25d.mkv", "file a b|c%d.mkv"),
        ("/t/\(hex)/x.bin?download=1", "file x.bin"),
        ("/t/\(hex)/..", "400"),
        ("/t/\(hex)/a/../b", "400"),
        ("/t/\(hex)/%2e%2e/x", "400"),
        ("/t/\(hex)/a%2fb", "400"),
        ("/t/\(hex)/a%5cb", "400"),
        ("/t/\(hex)/a%00b", "400"),
        ("/t/\(hex)/a//b", "400"),
        ("/t/\(hex)/%zz", "400"),
        ("/t/\(hex)/.", "400"),
        ("relative", "400"),
        ("/t/abc/", "404"),
        ("/t/\(hex)", "404"),
        ("/etc/passwd", "404"),
        ("/t/\(hex).txt", "404"),
    ])
    func routes(target: String, expected: String) {
        let rendered: String
        do {
            switch try Route.parse(target) {
            case .index: rendered = "index"
            case .torrent: rendered = "torrent"
            case .playlist: rendered = "playlist"
            case .file(_, let path): rendered = "file " + path.joined(separator: "|")
            }
        } catch .badPath {
            rendered = "400"
        } catch {
            rendered = "404"
        }
        #expect(rendered == expected, "\(target)")
    }

    @Test("paths encode per segment and decode back")
    func encodeRoundTrip() throws {
        let path = ["Dir name", "100% #1 ?.mp4", "ünï"]
        let hash = try #require(InfoHash(string: Self.hex))
        let url = "/t/\(Self.hex)/" + Route.encode(path)
        #expect(!url.contains(" ") && !url.contains("#") && !url.contains("?"))
        #expect(try Route.parse(url) == .file(hash, path))
    }

    @Test("Host: IP literals and localhost (or names given) only", arguments: [
        ("127.0.0.1:8888", true), ("localhost:8888", true), ("LOCALHOST", true), ("localhost.", true),
        ("[::1]:8888", true), ("10.1.2.3", true), ("evil.example:8888", false), ("127.0.0.1.nip.io", false),
        ("media.lan", true), ("", false), ("256.1.1.1", false), ("1.2.3.4:5:6", false), ("::1", false),
        ("[::1]x", false), ("localhost:http", false),
    ])
    func hosts(host: String, allowed: Bool) {
        #expect(HostPolicy(extraNames: ["Media.lan"]).allows(host) == allowed, "\(host)")
        #expect(!HostPolicy().allows(nil))
    }

    @Test("media types from extensions; names escaped for pages")
    func typesAndEscaping() {
        #expect(MediaType.of("a.MP4") == "video/mp4" && MediaType.of("b.mkv") == "video/x-matroska")
        #expect(MediaType.of("noext") == "application/octet-stream" && MediaType.of(".hidden") == "application/octet-stream")
        #expect(MediaType.isMedia("x.flac") && !MediaType.isMedia("x.srt"))
        #expect(Responder.escape("<a href='x'>&\"") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;")
    }
}
