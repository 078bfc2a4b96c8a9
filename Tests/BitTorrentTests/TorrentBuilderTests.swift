import BitTorrent
import TestSupport
import Testing

@Suite("TorrentBuilder")
struct TorrentBuilderTests {
    static let KiB: Int64 = 1024
    static let MiB: Int64 = 1024 * 1024
    static let GiB: Int64 = 1024 * 1024 * 1024

    static let automatic: [(Int64, Int)] = [
        (-5, 16384),
        (0, 16384),
        (1, 16384),
        (100 * KiB, 16384),
        (2000 * 16 * KiB, 16384),  // exactly 2000 pieces of 16 KiB
        (2000 * 16 * KiB + 1, 32768),
        (100 * MiB, 65536),
        (GiB, 1 << 20),  // 1024 pieces
        (4 * GiB + 1, 4 << 20),
        (2000 * 16 * MiB, 16 << 20),  // exactly 2000 pieces at the cap
        (2000 * 16 * MiB + 1, 16 << 20),  // capped: 2001 pieces
        (1 << 40, 16 << 20),
        (Int64.max / 2, 16 << 20),
    ]

    @Test("automatic piece length", arguments: automatic)
    func automaticPieceLength(total: Int64, expected: Int) {
        #expect(TorrentBuilder.automaticPieceLength(totalLength: total) == expected)
    }

    @Test("1 GiB gives 1 MiB pieces, 1024 of them")
    func oneGiB() throws {
        let length = TorrentBuilder.automaticPieceLength(totalLength: Self.GiB)
        #expect(length == 1 << 20)
        #expect(try #require(Lengths(totalLength: Self.GiB, pieceLength: length)).pieceCount == 1024)
    }

    @Test("random totals: a power of two in 16 KiB…16 MiB, 1000 < pieces ≤ 2000 unless clamped")
    func randomTotals() throws {
        var generator = SplitMix64(seed: 0xB111D)
        for _ in 0..<2000 {
            let exponent = Int.random(in: 0...40, using: &generator)
            let total = Int64.random(in: 1...(Int64(1) << exponent), using: &generator)
            let length = TorrentBuilder.automaticPieceLength(totalLength: total)
            #expect(length.nonzeroBitCount == 1, "total \(total)")
            #expect(length >= TorrentBuilder.minAutomaticPieceLength && length <= TorrentBuilder.maxAutomaticPieceLength)
            let pieces = try #require(Lengths(totalLength: total, pieceLength: length)).pieceCount
            if length < TorrentBuilder.maxAutomaticPieceLength {
                #expect(pieces <= 2000, "total \(total) length \(length)")
            }
            if length > TorrentBuilder.minAutomaticPieceLength {
                #expect(pieces > 1000, "total \(total) length \(length)")
            }
        }
    }

    @Test("the largest totals do not overflow")
    func largestTotals() async {
        await #expect(processExitsWith: .success) {
            _ = TorrentBuilder.automaticPieceLength(totalLength: .max)
            _ = TorrentBuilder.automaticPieceLength(totalLength: .max - 1)
        }
    }

    // MARK: Assembling

    static func hashes(_ count: Int) -> [Digest20] {
        (0..<count).map { index in Digest20((0..<20).map { UInt8(truncatingIfNeeded: index * 7 + $0) })! }
    }

    @Test("single-file form: length instead of files; parses back")
    func singleFile() throws {
        var options = TorrentBuilder.Options()
        options.trackers = [["http://t/announce"]]
        options.creationDate = 1_600_000_000
        options.comment = "hello"
        let info = TorrentBuilder.infoDictionary(name: "a.bin", files: [.init(path: [], length: 40000)],
                                                 pieceLength: 16384, pieceHashes: Self.hashes(3), options: options)
        #expect(info["length"] == 40000)
        #expect(info["files"] == nil)
        #expect(info["private"] == nil)
        let torrent = TorrentBuilder.torrentFile(info: info, options: options)
        #expect(Bencode.encode(try Bencode.decode(torrent)) == torrent)  // canonical
        let metainfo = try Metainfo(bytes: torrent)
        #expect(metainfo.info.isSingleFile)
        #expect(metainfo.info.name == "a.bin")
        #expect(metainfo.info.pieceHashes == Self.hashes(3))
        #expect(metainfo.infoHash == SHA1.hash(Bencode.encode(info)))
        #expect(metainfo.announce == "http://t/announce")
        #expect(metainfo.announceList.isEmpty)
        #expect(metainfo.comment == "hello")
        #expect(metainfo.createdBy == "torrentfs 0.1.0")
        #expect(metainfo.creationDate == 1_600_000_000)
        #expect(metainfo.webSeeds.isEmpty)
    }

    @Test("multi-file form with private, source, tiers and web seeds")
    func multiFile() throws {
        var options = TorrentBuilder.Options()
        options.trackers = [["http://a/"], [], ["udp://b:1", "udp://c:2"]]
        options.webSeeds = ["http://s1/", "http://s2/"]
        options.isPrivate = true
        options.source = "TRACKER"
        options.createdBy = nil
        let files = [TorrentBuilder.FileSpec(path: ["x", "1.txt"], length: 10),
                     TorrentBuilder.FileSpec(path: ["2.txt"], length: 20000)]
        let info = TorrentBuilder.infoDictionary(name: "dir", files: files, pieceLength: 16384,
                                                 pieceHashes: Self.hashes(2), options: options)
        #expect(info["private"] == 1)
        #expect(info["source"] == "TRACKER")
        let metainfo = try Metainfo(bytes: TorrentBuilder.torrentFile(info: info, options: options))
        #expect(!metainfo.info.isSingleFile)
        #expect(metainfo.info.isPrivate)
        #expect(metainfo.info.files.map(\.path) == [["x", "1.txt"], ["2.txt"]])
        #expect(metainfo.info.files.map(\.offset) == [0, 10])
        #expect(metainfo.announce == "http://a/")
        #expect(metainfo.announceList == [["http://a/"], ["udp://b:1", "udp://c:2"]])
        #expect(metainfo.webSeeds == ["http://s1/", "http://s2/"])
        #expect(metainfo.createdBy == nil)

        // `source` changes the info hash of otherwise equal torrents.
        options.source = nil
        let plain = TorrentBuilder.infoDictionary(name: "dir", files: files, pieceLength: 16384,
                                                  pieceHashes: Self.hashes(2), options: options)
        #expect(SHA1.hash(Bencode.encode(plain)) != metainfo.infoHash)
    }

    @Test("one web seed is written as a string, none leaves url-list out")
    func webSeedForms() throws {
        let info = TorrentBuilder.infoDictionary(name: "f", files: [.init(path: [], length: 1)], pieceLength: 16384,
                                                 pieceHashes: Self.hashes(1), options: .init())
        var options = TorrentBuilder.Options()
        options.webSeeds = ["http://only/"]
        #expect(try Bencode.decode(TorrentBuilder.torrentFile(info: info, options: options))["url-list"] == "http://only/")
        #expect(try Bencode.decode(TorrentBuilder.torrentFile(info: info, options: .init()))["url-list"] == nil)
    }
}
