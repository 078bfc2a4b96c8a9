import BitTorrent
import TestSupport
import Testing

/// What every sanitized path element must be: a single, visible, local name.
func isSafeElement(_ element: String) -> Bool {
    !element.isEmpty && element != "." && element != ".."
        && element.utf8.count <= PathSanitizer.maxNameBytes
        && element.unicodeScalars.allSatisfy { scalar in
            scalar != "/" && scalar != "\\" && scalar.value >= 0x20 && scalar.value != 0x7F
                && !(0x80...0x9F).contains(scalar.value)
                && ![0x200B, 0x200E, 0x200F, 0x202A, 0x202E, 0x2066, 0x2069, 0xFEFF, 0x061C].contains(scalar.value)
        }
}

@Suite("Path sanitizer")
struct PathSanitizerTests {
    static let elements: [(String, String?)] = [
        ("", nil),
        (".", nil),
        ("..", nil),
        ("...", "..."),
        ("plain.txt", "plain.txt"),
        ("日本語.txt", "日本語.txt"),
        ("  spaced  ", "  spaced  "),
        ("a/b", "a_b"),
        ("/", "_"),
        ("a\\b", "a_b"),
        ("..\\..\\x", ".._.._x"),
        ("a\u{0}b", "a_b"),
        ("\t\n\r", "___"),
        ("del\u{7F}", "del_"),
        ("\u{85}next", "_next"),
        ("evil\u{202E}gpj.exe", "evilgpj.exe"),
        ("zero\u{200B}width", "zerowidth"),
        ("\u{FEFF}bom", "bom"),
        ("\u{2066}iso\u{2069}", "iso"),
        ("\u{200B}", nil),
        (".\u{200B}.", nil),
        ("\u{200E}..\u{200F}", nil),
        ("\u{202E}.", nil),
    ]

    @Test("one element", arguments: elements)
    func element(raw: String, expected: String?) {
        #expect(PathSanitizer.element(bytes(raw)) == expected)
    }

    static let invalidUTF8: [[UInt8]] = [
        [0x61, 0xFF, 0x62],
        [0xC3],
        [0xC0, 0xAF],  // overlong "/"
        [0xE0, 0x80, 0xAE],  // overlong "."
        [0xED, 0xA0, 0x80],  // UTF-16 surrogate
        [0xF8, 0x88, 0x80, 0x80, 0x80],
        [0x2E, 0xC0, 0xAE],  // "." then an overlong "."
    ]

    @Test("invalid UTF-8 becomes valid text with _ in place of the bad bytes", arguments: invalidUTF8)
    func invalidUTF8Element(raw: [UInt8]) throws {
        let name = try #require(PathSanitizer.element(raw))
        #expect(isSafeElement(name))
        #expect(name.contains("_"))
        #expect(!name.unicodeScalars.contains("\u{FFFD}"))
    }

    @Test("a stray byte is replaced in place")
    func invalidByteInPlace() {
        #expect(PathSanitizer.element([0x61, 0xFF, 0x62]) == "a_b")
        #expect(PathSanitizer.element([0xFF, 0xFE]) == "__")
    }

    static let longNames: [(String, String)] = [
        (String(repeating: "a", count: 255), String(repeating: "a", count: 255)),
        (String(repeating: "a", count: 256), String(repeating: "a", count: 255)),
        (String(repeating: "a", count: 300) + ".txt", String(repeating: "a", count: 251) + ".txt"),
        (String(repeating: "é", count: 200), String(repeating: "é", count: 127)),
        (String(repeating: "é", count: 200) + ".mkv", String(repeating: "é", count: 125) + ".mkv"),
        // An "extension" longer than 16 bytes is not kept.
        (String(repeating: "b", count: 300) + "." + String(repeating: "x", count: 20), String(repeating: "b", count: 255)),
        (String(repeating: "c", count: 10) + "." + String(repeating: "x", count: 300),
         "cccccccccc." + String(repeating: "x", count: 244)),
    ]

    @Test("names over 255 bytes are cut on a character boundary, keeping the extension", arguments: longNames)
    func longName(raw: String, expected: String) throws {
        let name = try #require(PathSanitizer.element(bytes(raw)))
        #expect(name == expected)
        #expect(name.utf8.count <= 255)
    }

    /// Shortening works on grapheme clusters; one cluster bigger than the whole budget
    /// must not leave an empty or dot-only name behind.
    static let giantClusters: [String] = [
        "e" + String(repeating: "\u{301}", count: 200),
        "." + String(repeating: "\u{301}", count: 200),
        ".." + String(repeating: "\u{301}", count: 200),
        "..." + String(repeating: "\u{301}", count: 200),
        "x.." + String(repeating: "\u{301}", count: 200),
    ]

    @Test("a giant grapheme cluster still yields a safe name", arguments: giantClusters)
    func giantCluster(raw: String) {
        let name = PathSanitizer.element(bytes(raw))
        if let name {
            #expect(isSafeElement(name), "element(\(raw.utf8.count) bytes) == \(name.debugDescription)")
        }
    }

    static let paths: [([String], [String])] = [
        (["", "etc", "passwd"], ["etc", "passwd"]),
        (["/etc/passwd"], ["_etc_passwd"]),
        (["..", "..", "x"], ["x"]),
        (["a", ".", "b"], ["a", "b"]),
        ([".."], ["_"]),
        (["", ""], ["_"]),
        ([], ["_"]),
        (["C:\\Windows", "system32"], ["C:_Windows", "system32"]),
    ]

    @Test("whole paths: dropped elements removed, nothing left becomes _", arguments: paths)
    func path(raw: [String], expected: [String]) {
        #expect(PathSanitizer.path(raw.map { bytes($0) }) == expected)
    }

    @Test("random hostile elements always sanitize to a safe name or nothing")
    func randomElementsAreSafe() {
        let atoms: [[UInt8]] = [
            bytes("."), bytes("."), bytes("/"), bytes("\\"), [0], [0x1F], [0x7F], [0xC2, 0x85], [0xFF], [0xC0],
            bytes("\u{202E}"), bytes("\u{200B}"), bytes("\u{FEFF}"), bytes("a"), bytes("é"), bytes("\u{301}"),
            bytes(".txt"), bytes("日"),
        ]
        var generator = SplitMix64(seed: 0x5A7E)
        for _ in 0..<3000 {
            let count = Int.random(in: 0...(Bool.random(using: &generator) ? 8 : 200), using: &generator)
            let raw = (0..<count).flatMap { _ in atoms.randomElement(using: &generator)! }
            if let name = PathSanitizer.element(raw) {
                #expect(isSafeElement(name), "\(raw)")
            }
            #expect(PathSanitizer.path([raw, raw]).allSatisfy(isSafeElement))
        }
    }

    // MARK: Collisions

    static let collisions: [([[String]], [[String]])] = [
        ([["a.txt"], ["a.txt"], ["a.txt"]], [["a.txt"], ["a.1.txt"], ["a.2.txt"]]),
        ([["a"], ["a", "b"]], [["a"], ["a.1", "b"]]),
        ([["a", "b"], ["a"]], [["a", "b"], ["a.1"]]),
        ([["a", "b"], ["a", "b", "c"]], [["a", "b"], ["a", "b.1", "c"]]),
        ([["a"], ["a", "b"], ["a", "c"]], [["a"], ["a.1", "b"], ["a.1", "c"]]),
        ([["a"], ["a.1"], ["a"]], [["a"], ["a.1"], ["a.2"]]),
        ([[".hidden"], [".hidden"]], [[".hidden"], [".hidden.1"]]),
        ([["a.tar.gz"], ["a.tar.gz"]], [["a.tar.gz"], ["a.tar.1.gz"]]),
        ([["x", "y"], ["x", "y"], ["z"]], [["x", "y"], ["x", "y.1"], ["z"]]),
    ]

    @Test("duplicates and file-vs-folder collisions are renamed name.N.ext", arguments: collisions)
    func deduplicate(paths: [[String]], expected: [[String]]) {
        #expect(PathSanitizer.deduplicate(paths) == expected)
    }

    @Test("random paths deduplicate to unique, prefix-free paths of the same shape")
    func randomDeduplicate() {
        var generator = SplitMix64(seed: 0xDED0)
        let names = ["a", "b", "a.1", "a.txt", "a.1.txt"]
        for round in 0..<300 {
            let paths = (0..<Int.random(in: 1...12, using: &generator)).map { _ in
                (0..<Int.random(in: 1...3, using: &generator)).map { _ in names.randomElement(using: &generator)! }
            }
            let result = PathSanitizer.deduplicate(paths)
            #expect(result.count == paths.count)
            #expect(zip(result, paths).allSatisfy { $0.count == $1.count }, "round \(round)")
            #expect(Set(result).count == result.count, "round \(round): \(paths) → \(result)")
            let files = Set(result)
            for path in result {
                for depth in 1..<path.count {
                    #expect(!files.contains(Array(path[..<depth])), "round \(round): \(paths) → \(result)")
                }
            }
        }
    }

    @Test("names compare as bytes: NFC and NFD spellings are different names on Linux")
    func normalizationForms() {
        let nfc = "caf\u{E9}"
        let nfd = "cafe\u{301}"
        let result = PathSanitizer.deduplicate([[nfc], [nfd], [nfc]])
        // Compare bytes: String equality would call the two spellings equal.
        #expect(result.map { $0.map { Array($0.utf8) } } == [[Array(nfc.utf8)], [Array(nfd.utf8)], [Array("caf\u{E9}.1".utf8)]])
    }

    @Test("alternative names")
    func alternative() {
        #expect(PathSanitizer.alternative("movie.mkv", 1) == "movie.1.mkv")
        #expect(PathSanitizer.alternative("README", 3) == "README.3")
        #expect(PathSanitizer.alternative(".bashrc", 2) == ".bashrc.2")
    }
}

@Suite("Metainfo sanitizing")
struct MetainfoSanitizingTests {
    static let hostilePaths: [([String], [String])] = [
        (["..", "..", "etc", "passwd"], ["etc", "passwd"]),
        (["/etc/passwd"], ["_etc_passwd"]),
        (["", "abs"], ["abs"]),
        (["a\\..\\..\\b"], ["a_.._.._b"]),
        (["nul\u{0}byte"], ["nul_byte"]),
        (["ctl\u{1B}[31m"], ["ctl_[31m"]),
        ([".", "x"], ["x"]),
        (["", ""], ["_"]),
        ([], ["_"]),
        (["rtl\u{202E}fdp.exe"], ["rtlfdp.exe"]),
        (["a\u{200B}"], ["a"]),
        ([String(repeating: "n", count: 400) + ".iso"], [String(repeating: "n", count: 251) + ".iso"]),
    ]

    @Test("hostile file paths load sanitized", arguments: hostilePaths)
    func hostilePath(raw: [String], expected: [String]) throws {
        let metainfo = try TorrentFixture.parse(files: [TorrentFixture.file(raw, length: 1)])
        #expect(metainfo.info.files.map(\.path) == [expected])
    }

    @Test("invalid UTF-8 in a path element")
    func invalidUTF8Path() throws {
        let metainfo = try TorrentFixture.parse(files: [TorrentFixture.file([[0x64, 0x69, 0x72], [0xFF, 0x2E, 0x6D]], length: 1)])
        #expect(metainfo.info.files[0].path == ["dir", "_.m"])
    }

    @Test("hostile torrent names", arguments: [
        ("..", "_"), (".", "_"), ("", "_"), ("/abs", "_abs"), ("a/../b", "a_.._b"), ("\u{202E}x", "x"),
    ])
    func hostileName(raw: String, expected: String) throws {
        #expect(try Metainfo(bytes: TorrentFixture.torrent(TorrentFixture.singleFile(name: raw))).info.name == expected)
        let multi = try Metainfo(bytes: TorrentFixture.torrent(TorrentFixture.multiFile(
            name: raw, files: [TorrentFixture.file(["f"], length: 1)])))
        #expect(multi.info.name == expected)
    }

    @Test("a torrent name of one giant grapheme cluster must not become '..'")
    func giantClusterName() throws {
        let raw = "..." + String(repeating: "\u{301}", count: 200)
        let single = try Metainfo(bytes: TorrentFixture.torrent(TorrentFixture.singleFile(name: raw)))
        #expect(isSafeElement(single.info.name), "name \(single.info.name.debugDescription)")
        #expect(single.info.files.allSatisfy { $0.path.allSatisfy(isSafeElement) })
        let multi = try TorrentFixture.parse(files: [TorrentFixture.file([raw, "payload"], length: 1)])
        #expect(multi.info.files[0].path.allSatisfy(isSafeElement), "path \(multi.info.files[0].path)")
    }

    @Test("duplicates after sanitizing, and file-vs-folder collisions, are renamed")
    func collisions() throws {
        let metainfo = try TorrentFixture.parse(files: [
            TorrentFixture.file(["a_b.txt"], length: 1),
            TorrentFixture.file(["a/b.txt"], length: 1),
            TorrentFixture.file(["..", "a_b.txt"], length: 1),
            TorrentFixture.file(["dir"], length: 1),
            TorrentFixture.file(["dir", "inner"], length: 1),
            TorrentFixture.file(["x", "y"], length: 1),
            TorrentFixture.file(["x"], length: 1),
        ])
        #expect(metainfo.info.files.map(\.path) == [
            ["a_b.txt"], ["a_b.1.txt"], ["a_b.2.txt"], ["dir"], ["dir.1", "inner"], ["x", "y"], ["x.1"],
        ])
        #expect(metainfo.info.files.map(\.offset) == [0, 1, 2, 3, 4, 5, 6])
    }

    @Test("pad files are hidden from visibleFiles but counted in offsets")
    func padFiles() throws {
        let metainfo = try TorrentFixture.parse(files: [
            TorrentFixture.file(["a"], length: 10000),
            TorrentFixture.file([".pad", "6384"], length: 6384, attr: "p"),
            TorrentFixture.file(["b"], length: 5000, attr: "x"),
            TorrentFixture.file([".pad", "11000"], length: 11000),
            TorrentFixture.file(["c"], length: 16384),
            TorrentFixture.file(["_____padding_file_0_x"], length: 100),
            TorrentFixture.file(["d"], length: 1),
        ])
        let info = metainfo.info
        #expect(info.files.map(\.isPadding) == [false, true, false, true, false, true, false])
        #expect(info.files.map(\.offset) == [0, 10000, 16384, 21384, 32384, 48768, 48868])
        #expect(info.visibleFiles.map(\.path) == [["a"], ["b"], ["c"], ["d"]])
        #expect(info.visibleFiles.map(\.offset) == [0, 16384, 32384, 48868])
        #expect(info.totalLength == 48869)
        #expect(info.files[1].attributes == "p")
        #expect(info.files[2].attributes == "x")
        #expect(!info.files[2].isPadding)
    }

    @Test("pad files do not take names from visible files")
    func padFilesDoNotCollide() throws {
        let metainfo = try TorrentFixture.parse(files: [
            TorrentFixture.file(["a"], length: 3, attr: "p"),
            TorrentFixture.file(["a"], length: 5),
        ])
        #expect(metainfo.info.visibleFiles.map(\.path) == [["a"]])
        #expect(metainfo.info.visibleFiles.map(\.offset) == [3])
    }
}
