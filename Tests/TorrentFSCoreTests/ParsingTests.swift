import BitTorrent
import Testing
import TorrentEngine
@testable import TorrentFSCore

@Suite struct MountOptionsTests {
    @Test func everyOptionIsApplied() throws {
        var options = MountOptions(dataDirectory: "/default")
        try options.apply(["data=/srv/t,port=6999,download_limit=2M,upload_limit=512K", "max_connections=80",
                           "max_peers=9,readahead=8M,read_timeout=5,metadata_timeout=2.5,fetch_all,remove_data",
                           "allow_other,debug,log=/var/log/t.log,seed_ratio=1.5,blocklist=/etc/t/block.p2p"])
        #expect(options.dataDirectory == "/srv/t")
        #expect(options.listenPort == 6999)
        #expect(options.downloadLimit == 2 << 20)
        #expect(options.uploadLimit == 512 << 10)
        #expect(options.maxConnections == 80)
        #expect(options.maxPeers == 9)
        #expect(options.readahead == 8 << 20)
        #expect(options.readTimeout == 5)
        #expect(options.metadataTimeout == 2.5)
        #expect(options.fetchAll && options.removeData && options.allowOther && options.debug)
        #expect(options.resolvedLogFile == "/var/log/t.log")
        #expect(options.seedRatio == 1.5)
        #expect(options.blocklistFile == "/etc/t/block.p2p")
    }

    @Test func cacheSizeShrinksTheReadahead() throws {
        var options = MountOptions(dataDirectory: "/d")
        #expect(options.cacheSize == nil && options.effectiveReadahead == 32 << 20)
        try options.apply(["cache_size=64M"])
        #expect(options.cacheSize == 64 << 20)
        #expect(options.effectiveReadahead == 16 << 20, "a quarter of the cache")
        try options.apply(["cache_size=2G,readahead=8M"])
        #expect(options.effectiveReadahead == 8 << 20, "a smaller readahead stays")
    }

    @Test func defaultsAndAliases() throws {
        var options = MountOptions(dataDirectory: "/d")
        #expect(options.listenPort == nil && options.readTimeout == nil && !options.fetchAll && !options.removeData)
        #expect(options.resolvedLogFile == "/d/torrentfs.log")
        try options.apply(["cache=/c,read_timeout=0,rw,ro,nofail,_netdev,noauto,defaults,user=alice"])
        #expect(options.dataDirectory == "/c")
        #expect(options.readTimeout == nil)  // 0 = wait forever
    }

    @Test(arguments: ["bogus", "port=70000", "port=", "data=relative", "fetch_all=1", "readahead=lots",
                      "download_limit=-1", "max_peers=0", "read_timeout=-3", "log=rel.log", "rw=1",
                      "seed_ratio=-1", "seed_ratio=lots", "blocklist=", "blocklist=relative.p2p",
                      "cache_size=1M", "cache_size=big", "cache_size="])
    func badOptionsAreRefused(_ text: String) {
        var options = MountOptions(dataDirectory: "/d")
        #expect(throws: MountOptionError.self) { try options.apply([text]) }
    }

    @Test func sizes() {
        #expect(ByteSize.parse("0") == 0)
        #expect(ByteSize.parse("10k") == 10240)
        #expect(ByteSize.parse("3G") == 3 << 30)
        #expect(ByteSize.parse("M") == nil)
        #expect(ByteSize.parse("1.5M") == nil)
        #expect(ByteSize.parse("99999999999999999999G") == nil)
        // The forms the command line always took: a B or iB after the unit, any case.
        #expect(ByteSize.parse("256KiB") == 256 << 10)
        #expect(ByteSize.parse("2mb") == 2 << 20)
        #expect(ByteSize.parse("512b") == 512)
        #expect(ByteSize.parse("-1") == nil)
    }
}

@Suite struct AddInputTests {
    static let hex = "0123456789abcdef0123456789abcdef01234567"

    @Test func textForms() throws {
        let base32 = InfoHash(string: Self.hex)!.base32
        let text = """
        magnet:?xt=urn:btih:\(Self.hex)&dn=x&x.pe=127.0.0.1:7000
          \(Self.hex)\r
        \(base32)

        https://example.org/a.torrent
        /srv/files/b.torrent
        """
        let items = try AddInput.parse(Array(text.utf8))
        #expect(items.count == 5)
        guard case .magnet(let first) = items[0], case .magnet(let second) = items[1], case .magnet(let third) = items[2],
              case .url(let url) = items[3], case .path(let path) = items[4] else {
            Issue.record("wrong kinds: \(items)")
            return
        }
        #expect(first.peers == [PeerAddress(host: "127.0.0.1", port: 7000)])
        #expect(second.infoHash.hex == Self.hex && third.infoHash.hex == Self.hex)
        #expect(url == "https://example.org/a.torrent")
        #expect(path == "/srv/files/b.torrent")
    }

    @Test func torrentBytesAreRecognised() throws {
        let info = TorrentBuilder.infoDictionary(name: "n", files: [.init(path: [], length: 5)], pieceLength: 16384,
                                                 pieceHashes: [Digest20(Array(repeating: 1, count: 20))!], options: .init())
        let bytes = TorrentBuilder.torrentFile(info: info, options: .init())
        let items = try AddInput.parse(bytes)
        guard case .metainfo(let metainfo, let raw) = items.first else {
            Issue.record("not a metainfo")
            return
        }
        #expect(metainfo.info.name == "n" && raw == bytes)
        #expect(throws: AddError.self) { try AddInput.parse(Array(bytes.prefix(bytes.count / 2))) }
        // A hex info hash starting with "d" and digits is text, not bencode.
        #expect(!AddInput.looksBencoded(Array("d41d8cd98f00b204e9800998ecf8427e00000000".utf8)))
    }

    @Test(arguments: ["garbage", "magnet:?xt=urn:btih:zz", "ftp://host/x.torrent", "relative/path.torrent",
                      "https://", "", "\n\n", "0123"])
    func badTextIsRefused(_ text: String) {
        #expect(throws: AddError.self) { try AddInput.parse(Array(text.utf8)) }
    }

    @Test func invalidUTF8IsRefused() {
        #expect(throws: AddError.self) { try AddInput.parse([0xFF, 0xFE, 0x0A]) }
    }

    @Test func partialChecksJudgeOnlyCompleteLines() throws {
        try AddInput.check(partial: Array("garb".utf8))  // not a whole line yet
        try AddInput.check(partial: Array("magnet:?xt=urn:btih:\(Self.hex)\nmore".utf8))
        #expect(throws: AddError.self) { try AddInput.check(partial: Array("garbage\n".utf8)) }
        try AddInput.check(partial: Array("d8:announce".utf8))  // bencode: judged at close
    }
}

@Suite struct LibraryTests {
    @Test func fetchedMetadataBecomesATorrentFileWithTheSameInfoHash() throws {
        let info = TorrentBuilder.infoDictionary(name: "lib", files: [.init(path: ["a"], length: 3), .init(path: ["b"], length: 4)],
                                                 pieceLength: 16384, pieceHashes: [Digest20(Array(repeating: 7, count: 20))!],
                                                 options: .init())
        let infoBytes = Bencode.encode(info)
        let hash = SHA1.hash(infoBytes)
        let metainfo = try Metainfo(infoBytes: infoBytes, expected: hash, trackers: [["http://t/a"], ["udp://u:1"]],
                                    webSeeds: ["http://w/"])
        let again = try Metainfo(bytes: Library.torrentBytes(metainfo))
        #expect(again.infoHash == hash)
        #expect(again.trackerTiers == [["http://t/a"], ["udp://u:1"]])
        #expect(again.webSeeds == ["http://w/"])
    }
}

@Suite struct TorrentSettingsTests {
    func set(_ settings: inout TorrentSettings, _ name: String, _ text: String) -> Bool {
        settings.set(name, to: Array(text.utf8))
    }

    @Test func valuesAreParsedShownAndReset() {
        var settings = TorrentSettings()
        #expect(settings.value(of: TorrentSettings.downloadLimitName, mountFetchAll: false) == Array("0".utf8))
        #expect(settings.value(of: TorrentSettings.fetchAllName, mountFetchAll: true) == Array("1".utf8))
        #expect(set(&settings, TorrentSettings.downloadLimitName, "2M\n"))
        #expect(settings.downloadLimit == 2 << 20)
        #expect(settings.value(of: TorrentSettings.downloadLimitName, mountFetchAll: false) == Array("2097152".utf8))
        #expect(set(&settings, TorrentSettings.fetchAllName, "on"))
        #expect(settings.value(of: TorrentSettings.fetchAllName, mountFetchAll: false) == Array("1".utf8))
        #expect(set(&settings, TorrentSettings.downloadLimitName, "0"))
        #expect(settings.downloadLimit == nil)
        settings.reset(TorrentSettings.fetchAllName)
        #expect(settings.fetchAll == nil)
        #expect(settings.value(of: TorrentSettings.fetchAllName, mountFetchAll: false) == Array("0".utf8))
    }

    @Test(arguments: ["", "fast", "-1", "2.5M", "99999999999G"])
    func badLimitsAreRefused(_ text: String) {
        var settings = TorrentSettings(downloadLimit: 7)
        #expect(!set(&settings, TorrentSettings.downloadLimitName, text))
        #expect(settings.downloadLimit == 7, "a refused value changes nothing")
    }

    @Test(arguments: ["", "2", "maybe", "yes please"])
    func badFlagsAreRefused(_ text: String) {
        var settings = TorrentSettings()
        #expect(!set(&settings, TorrentSettings.fetchAllName, text))
        #expect(settings.fetchAll == nil)
    }
}
