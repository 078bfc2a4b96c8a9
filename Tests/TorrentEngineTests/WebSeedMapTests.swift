import BitTorrent
import Testing
@testable import TorrentEngine

@Suite("Web seed map")
struct WebSeedMapTests {
    @Test("a single-file torrent: the URL is the file, or the folder holding it")
    func singleFile() throws {
        guard case .dictionary(var fields) = InfoFixture.value(name: "clip one.mp4", files: [.init(["clip one.mp4"], 100_000)])
        else { return }
        fields["files"] = nil
        fields["length"] = .integer(100_000)
        let info = try InfoDictionary(.dictionary(fields))
        #expect(info.isSingleFile)
        let direct = try #require(WebSeedMap(base: "http://h:8080/media/x.mp4", info: info))
        #expect(direct.segments(10..<20) == [.init(url: "http://h:8080/media/x.mp4", fileRange: 10..<20, fileLength: 100_000)])
        let folder = try #require(WebSeedMap(base: "https://h/media/", info: info))
        #expect(folder.segments(0..<100_000).map(\.url) == ["https://h/media/clip%20one.mp4"])
        #expect(WebSeedMap(base: "ftp://h/x", info: info) == nil)
        #expect(WebSeedMap(base: "not a url", info: info) == nil)
    }

    @Test("a multi-file torrent: URL/NAME/PATH, each segment encoded; ranges split at files; padding is local")
    func multiFile() throws {
        let files: [InfoFixture.File] = [.init(["a b", "ü.txt"], 10_000), .init([".pad", "6384"], 6384, attr: "p"),
                                         .init(["c"], 20_000), .init(["empty"], 0)]
        let info = try InfoFixture.info(name: "Kit", files: files)
        let map = try #require(WebSeedMap(base: "http://h/pub", info: info))
        #expect(map.segments(9_000..<20_000) == [
            .init(url: "http://h/pub/Kit/a%20b/%C3%BC.txt", fileRange: 9_000..<10_000, fileLength: 10_000),
            .init(url: nil, fileRange: 0..<6384, fileLength: 6384),
            .init(url: "http://h/pub/Kit/c", fileRange: 0..<3_616, fileLength: 20_000),
        ])
        #expect(map.segments(36_384..<36_384).isEmpty)
    }
}
