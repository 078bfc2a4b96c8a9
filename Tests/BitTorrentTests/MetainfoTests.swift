import BitTorrent
import Testing

@Suite("Metainfo parsing")
struct MetainfoTests {
    @Test("single-file torrent")
    func singleFile() throws {
        let info = TorrentFixture.singleFile(name: "movie.mkv", length: 40000)
        let bytes = TorrentFixture.torrent(info)
        let metainfo = try Metainfo(bytes: bytes)
        #expect(metainfo.info.name == "movie.mkv")
        #expect(metainfo.info.isSingleFile)
        #expect(metainfo.info.pieceLength == 16384)
        #expect(metainfo.info.totalLength == 40000)
        #expect(metainfo.info.lengths.pieceCount == 3)
        #expect(metainfo.info.lengths.lastPieceSize == 40000 - 2 * 16384)
        #expect(metainfo.info.pieceHashes.flatMap(\.bytes) == TorrentFixture.pieces(3))
        #expect(metainfo.info.files == [TorrentFile(path: ["movie.mkv"], length: 40000, offset: 0)])
        #expect(metainfo.info.visibleFiles == metainfo.info.files)
        #expect(!metainfo.info.isPrivate)
        #expect(metainfo.infoBytes == Bencode.encode(.dictionary(info)))
        #expect(metainfo.infoHash == SHA1.hash(Bencode.encode(.dictionary(info))))
        let second = try #require(metainfo.info.lengths.piece(1))
        #expect(metainfo.info.hash(of: second).bytes == Array(TorrentFixture.pieces(3)[20..<40]))
        #expect(metainfo.announce == nil)
        #expect(metainfo.trackerTiers.isEmpty)
    }

    @Test("multi-file torrent: paths, lengths and offsets in order")
    func multiFile() throws {
        let metainfo = try TorrentFixture.parse(files: [
            TorrentFixture.file(["a.txt"], length: 100),
            TorrentFixture.file(["sub", "b.bin"], length: 20000),
            TorrentFixture.file(["sub", "deeper", "c"], length: 0),
            TorrentFixture.file(["d"], length: 16284),
        ])
        let info = metainfo.info
        #expect(!info.isSingleFile)
        #expect(info.name == "folder")
        #expect(info.files == [
            TorrentFile(path: ["a.txt"], length: 100, offset: 0),
            TorrentFile(path: ["sub", "b.bin"], length: 20000, offset: 100),
            TorrentFile(path: ["sub", "deeper", "c"], length: 0, offset: 20100),
            TorrentFile(path: ["d"], length: 16284, offset: 20100),
        ])
        #expect(info.totalLength == 36384)
        #expect(info.lengths.pieceCount == 3)
        #expect(info.files[1].byteRange == 100..<20100)
    }

    @Test("the info hash is the SHA-1 of the raw info bytes, even when keys are unsorted")
    func infoHashOfRawBytes() throws {
        let pieces = TorrentFixture.pieces(1)
        // `name` before `length`, `piece length` before `pieces`... but `pieces` before
        // `piece length` is the sorted order, so swap them; `announce` after `info`.
        let rawInfo = bytes("d4:name5:x.bin6:lengthi5e6:pieces20:") + pieces + bytes("12:piece lengthi16384ee")
        let torrent = bytes("d4:info") + rawInfo + bytes("8:announce10:http://t/ae")
        let metainfo = try Metainfo(bytes: torrent)
        #expect(metainfo.infoBytes == rawInfo)
        #expect(metainfo.infoHash == SHA1.hash(rawInfo))
        // Re-encoding sorts the keys and so would give a different (wrong) hash.
        let reencoded = Bencode.encode(try Bencode.decode(rawInfo, limits: .torrentFile))
        #expect(reencoded != rawInfo)
        #expect(metainfo.infoHash != SHA1.hash(reencoded))
        #expect(metainfo.announce == "http://t/a")
        #expect(metainfo.info.totalLength == 5)
    }

    @Test("a duplicate info key: the first one is parsed and hashed")
    func duplicateInfoFirstWins() throws {
        let first = Bencode.encode(.dictionary(TorrentFixture.singleFile(name: "first", length: 10)))
        let second = Bencode.encode(.dictionary(TorrentFixture.singleFile(name: "second", length: 10)))
        let torrent = bytes("d4:info") + first + bytes("4:info") + second + bytes("e")
        let metainfo = try Metainfo(bytes: torrent)
        #expect(metainfo.info.name == "first")
        #expect(metainfo.infoBytes == first)
        #expect(metainfo.infoHash == SHA1.hash(first))
    }

    @Test("announce-list tiers; empty tiers and URLs dropped; announce is the fallback")
    func announceList() throws {
        var extra = BDictionary()
        extra["announce"] = "http://a/announce"
        extra["announce-list"] = [["http://a/announce", "udp://b:80"], [], [""], ["http://c/announce"], [1]]
        let metainfo = try Metainfo(bytes: TorrentFixture.torrent(TorrentFixture.singleFile(), extra: extra))
        #expect(metainfo.announce == "http://a/announce")
        #expect(metainfo.announceList == [["http://a/announce", "udp://b:80"], ["http://c/announce"]])
        #expect(metainfo.trackerTiers == metainfo.announceList)

        var only = BDictionary()
        only["announce"] = "http://only/announce"
        let single = try Metainfo(bytes: TorrentFixture.torrent(TorrentFixture.singleFile(), extra: only))
        #expect(single.announceList.isEmpty)
        #expect(single.trackerTiers == [["http://only/announce"]])

        var empty = BDictionary()
        empty["announce"] = ""
        #expect(try Metainfo(bytes: TorrentFixture.torrent(TorrentFixture.singleFile(), extra: empty)).announce == nil)
    }

    @Test("url-list as a string, a list, or an empty string", arguments: [
        (BValue.string("http://seed/file"), ["http://seed/file"]),
        (BValue.list(["http://one/", "", "http://two/"]), ["http://one/", "http://two/"]),
        (BValue.string(""), []),
        (BValue.integer(3), []),
    ])
    func urlList(value: BValue, expected: [String]) throws {
        var extra = BDictionary()
        extra["url-list"] = value
        let metainfo = try Metainfo(bytes: TorrentFixture.torrent(TorrentFixture.singleFile(), extra: extra))
        #expect(metainfo.webSeeds == expected)
    }

    static let privateCases: [(BValue?, Bool)] = [(nil, false), (1, true), (0, false), (2, false), ("1", false)]

    @Test("private flag", arguments: privateCases)
    func privateFlag(value: BValue?, expected: Bool) throws {
        var info = TorrentFixture.singleFile()
        info["private"] = value
        #expect(try Metainfo(bytes: TorrentFixture.torrent(info)).info.isPrivate == expected)
    }

    @Test("creation date, comment, created by, encoding")
    func optionalFields() throws {
        var extra = BDictionary()
        extra["comment"] = "plain comment"
        extra["created by"] = "mktorrent 1.1"
        extra["creation date"] = 1_700_000_000
        extra["encoding"] = "UTF-8"
        let metainfo = try Metainfo(bytes: TorrentFixture.torrent(TorrentFixture.singleFile(), extra: extra))
        #expect(metainfo.comment == "plain comment")
        #expect(metainfo.createdBy == "mktorrent 1.1")
        #expect(metainfo.creationDate == 1_700_000_000)
        #expect(metainfo.encoding == "UTF-8")

        extra["comment.utf-8"] = "commentaire é"
        let utf8 = try Metainfo(bytes: TorrentFixture.torrent(TorrentFixture.singleFile(), extra: extra))
        #expect(utf8.comment == "commentaire é")

        let none = try Metainfo(bytes: TorrentFixture.torrent(TorrentFixture.singleFile()))
        #expect(none.comment == nil && none.createdBy == nil && none.creationDate == nil && none.encoding == nil)
    }

    @Test(".utf-8 name and path variants are preferred; invalid name.utf-8 falls back")
    func utf8Variants() throws {
        var info = TorrentFixture.singleFile(name: "legacy-name")
        info["name.utf-8"] = "nom-é"
        #expect(try Metainfo(bytes: TorrentFixture.torrent(info)).info.name == "nom-é")
        info["name.utf-8"] = .bytes([0x6E, 0xFF, 0xFE])
        #expect(try Metainfo(bytes: TorrentFixture.torrent(info)).info.name == "legacy-name")

        var entry = BDictionary()
        entry["length"] = 10
        entry["path"] = ["legacy", "file"]
        entry["path.utf-8"] = ["unicode", "fichier-é"]
        var multi = TorrentFixture.multiFile(files: [.dictionary(entry)])
        multi["name.utf-8"] = "dossier"
        let metainfo = try Metainfo(bytes: TorrentFixture.torrent(multi))
        #expect(metainfo.info.name == "dossier")
        #expect(metainfo.info.files.map(\.path) == [["unicode", "fichier-é"]])
    }

    @Test("name only in name.utf-8 is enough")
    func nameOnlyUTF8() throws {
        var info = TorrentFixture.singleFile()
        info["name"] = nil
        info["name.utf-8"] = "only"
        #expect(try Metainfo(bytes: TorrentFixture.torrent(info)).info.name == "only")
    }

    @Test("metadata from ut_metadata must hash to the expected info hash")
    func infoBytesInit() throws {
        let infoBytes = Bencode.encode(.dictionary(TorrentFixture.singleFile(name: "m", length: 20000)))
        let hash = SHA1.hash(infoBytes)
        let metainfo = try Metainfo(infoBytes: infoBytes, expected: hash, trackers: [["udp://t:1"]],
                                    webSeeds: ["http://w/"])
        #expect(metainfo.infoHash == hash)
        #expect(metainfo.info.name == "m")
        #expect(metainfo.trackerTiers == [["udp://t:1"]])
        #expect(metainfo.webSeeds == ["http://w/"])
        #expect(metainfo == (try Metainfo(infoBytes: infoBytes, expected: hash, trackers: [["udp://t:1"]],
                                          webSeeds: ["http://w/"])))

        let other = SHA1.hash(bytes("something else"))
        #expect(throws: MetainfoError(.infoHashMismatch(expected: other, actual: hash))) {
            try Metainfo(infoBytes: infoBytes, expected: other)
        }
        let garbage = bytes("d4:name")
        #expect(throws: MetainfoError(.bencode(BencodeError(.unexpectedEnd, at: 7)))) {
            try Metainfo(infoBytes: garbage, expected: SHA1.hash(garbage))
        }
        let notInfo = bytes("li1ee")
        #expect(throws: MetainfoError(.infoNotADictionary)) {
            try Metainfo(infoBytes: notInfo, expected: SHA1.hash(notInfo))
        }
    }
}

/// One way to break a torrent, and the reason it must be refused with.
enum BrokenTorrent: String, CaseIterable, CustomTestStringConvertible {
    case notADictionary, listAtTopLevel, badBencode, missingInfo, infoNotADictionary, missingName
    case missingPieceLength, zeroPieceLength, negativePieceLength, pieceLengthNotInteger, hugePieceLength
    case missingPieces, piecesNotMultipleOf20, tooFewPieces, tooManyPiecesForLength, piecesForEmptyTail
    case negativeSingleLength, negativeMultiLength, zeroTotalSingle, zeroTotalMulti, emptyFiles
    case bothLengthAndFiles, neitherLengthNorFiles, filesNotAList, fileWithoutPath, fileWithoutLength
    case pathNotStrings, pathTooDeep, totalLengthOverflow

    var testDescription: String { rawValue }

    var input: [UInt8] {
        var single = TorrentFixture.singleFile(length: 40000)  // 3 pieces
        switch self {
        case .notADictionary: return bytes("i42e")
        case .listAtTopLevel: return bytes("ld4:infodeee")
        case .badBencode: return bytes("d4:infod4:name")
        case .missingInfo:
            var root = BDictionary()
            root["announce"] = "http://t/"
            return Bencode.encode(.dictionary(root))
        case .infoNotADictionary: return TorrentFixture.torrent(info: ["name", "x"])
        case .missingName: single["name"] = nil
        case .missingPieceLength: single["piece length"] = nil
        case .zeroPieceLength: single["piece length"] = 0
        case .negativePieceLength: single["piece length"] = -16384
        case .pieceLengthNotInteger: single["piece length"] = "16384"
        case .hugePieceLength: single["piece length"] = .integer((256 << 20) + 1)
        case .missingPieces: single["pieces"] = nil
        case .piecesNotMultipleOf20: single["pieces"] = .bytes(Array(TorrentFixture.pieces(2).dropLast(10)))
        case .tooFewPieces: single["pieces"] = .bytes(TorrentFixture.pieces(2))
        case .tooManyPiecesForLength: single["pieces"] = .bytes(TorrentFixture.pieces(4))
        case .piecesForEmptyTail: single["length"] = 32768  // exactly 2 pieces, but 3 hashes
        case .negativeSingleLength: single["length"] = -1
        case .negativeMultiLength:
            return TorrentFixture.torrent(TorrentFixture.multiFile(files: [
                TorrentFixture.file(["a"], length: 10), TorrentFixture.file(["b"], length: -5),
            ]))
        case .zeroTotalSingle:
            single["length"] = 0
            single["pieces"] = .bytes([])
        case .zeroTotalMulti:
            return TorrentFixture.torrent(TorrentFixture.multiFile(files: [
                TorrentFixture.file(["a"], length: 0), TorrentFixture.file(["b"], length: 0),
            ]))
        case .emptyFiles:
            return TorrentFixture.torrent(TorrentFixture.multiFile(files: []))
        case .bothLengthAndFiles: single["files"] = [TorrentFixture.file(["a"], length: 40000)]
        case .neitherLengthNorFiles: single["length"] = nil
        case .filesNotAList:
            var info = TorrentFixture.multiFile(files: [TorrentFixture.file(["a"], length: 1)])
            info["files"] = "a"
            return TorrentFixture.torrent(info)
        case .fileWithoutPath:
            return TorrentFixture.torrent(TorrentFixture.multiFile(files: [
                TorrentFixture.file(["a"], length: 1), ["length": 5],
            ]))
        case .fileWithoutLength:
            return TorrentFixture.torrent(TorrentFixture.multiFile(files: [["path": ["a"]]]))
        case .pathNotStrings:
            return TorrentFixture.torrent(TorrentFixture.multiFile(files: [
                TorrentFixture.file(["a"], length: 1), TorrentFixture.file(["b"], length: 1),
                ["length": 1, "path": ["dir", 7]],
            ]))
        case .pathTooDeep:
            return TorrentFixture.torrent(TorrentFixture.multiFile(files: [
                TorrentFixture.file(["ok"], length: 1),
                TorrentFixture.file(Array(repeating: "d", count: 101), length: 1),
            ]))
        case .totalLengthOverflow:
            var info = TorrentFixture.multiFile(files: [TorrentFixture.file(["a"], length: 1)])
            info["files"] = [TorrentFixture.file(["a"], length: .max), TorrentFixture.file(["b"], length: 1)]
            return TorrentFixture.torrent(info)
        }
        return TorrentFixture.torrent(single)
    }

    var expected: MetainfoError.Reason {
        switch self {
        case .notADictionary, .listAtTopLevel: return .notADictionary
        case .badBencode: return .bencode(BencodeError(.unexpectedEnd, at: 14))
        case .missingInfo: return .missingInfo
        case .infoNotADictionary: return .infoNotADictionary
        case .missingName: return .missingName
        case .missingPieceLength, .pieceLengthNotInteger: return .missingPieceLength
        case .zeroPieceLength: return .invalidPieceLength(0)
        case .negativePieceLength: return .invalidPieceLength(-16384)
        case .hugePieceLength: return .invalidPieceLength((256 << 20) + 1)
        case .missingPieces: return .missingPieces
        case .piecesNotMultipleOf20: return .piecesNotMultipleOf20(30)
        case .tooFewPieces: return .pieceCountMismatch(expected: 3, actual: 2)
        case .tooManyPiecesForLength: return .pieceCountMismatch(expected: 3, actual: 4)
        case .piecesForEmptyTail: return .pieceCountMismatch(expected: 2, actual: 3)
        case .negativeSingleLength: return .invalidFileLength(index: 0, length: -1)
        case .negativeMultiLength: return .invalidFileLength(index: 1, length: -5)
        case .zeroTotalSingle, .zeroTotalMulti: return .zeroTotalLength
        case .emptyFiles: return .emptyFiles
        case .bothLengthAndFiles: return .bothLengthAndFiles
        case .neitherLengthNorFiles: return .missingLength
        case .filesNotAList: return .invalidFileEntry(index: 0)
        case .fileWithoutPath: return .invalidFileEntry(index: 1)
        case .fileWithoutLength: return .invalidFileEntry(index: 0)
        case .pathNotStrings: return .invalidFileEntry(index: 2)
        case .pathTooDeep: return .pathTooDeep(index: 1, depth: 101, limit: 100)
        case .totalLengthOverflow: return .totalLengthOverflow
        }
    }
}

@Suite("Metainfo rejections")
struct MetainfoRejectionTests {
    @Test("each broken torrent is refused with its reason", arguments: BrokenTorrent.allCases)
    func rejected(broken: BrokenTorrent) {
        #expect(metainfoReason(broken.input) == broken.expected)
    }

    @Test("a path of exactly 100 elements is accepted")
    func pathDepthAtLimit() throws {
        let metainfo = try TorrentFixture.parse(files: [TorrentFixture.file(Array(repeating: "d", count: 100), length: 1)])
        #expect(metainfo.info.files[0].path.count == 100)
    }

    @Test("more pieces than the limit are refused before the length is checked")
    func tooManyPieces() {
        let limit = InfoDictionary.maxPieceCount
        var info = TorrentFixture.singleFile(length: 1)
        info["pieces"] = .bytes([UInt8](repeating: 0xAB, count: (limit + 1) * 20))
        #expect(metainfoReason(TorrentFixture.torrent(info)) == .tooManyPieces(count: limit + 1, limit: limit))
    }

    @Test("a .torrent larger than 64 MiB is refused as bencode input")
    func fileTooLarge() {
        let input = [UInt8](repeating: UInt8(ascii: "d"), count: Metainfo.maxFileSize + 1)
        #expect(metainfoReason(input)
            == .bencode(BencodeError(.inputTooLarge(size: Metainfo.maxFileSize + 1, limit: Metainfo.maxFileSize), at: 0)))
    }

    @Test("error descriptions are specific")
    func descriptions() {
        #expect(MetainfoError(.piecesNotMultipleOf20(30)).description.contains("30"))
        #expect(MetainfoError(.pieceCountMismatch(expected: 3, actual: 2)).description.contains("3"))
    }
}
