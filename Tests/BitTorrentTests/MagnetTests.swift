import BitTorrent
import Testing

@Suite("Magnet links")
struct MagnetTests {
    static let hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
    static let base32 = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK"
    static var hash: InfoHash { InfoHash(string: hex)! }

    @Test("BEP 9 form: xt, dn, tr, x.pe")
    func bep9() throws {
        let link = try MagnetLink(parsing:
            "magnet:?xt=urn:btih:\(Self.hex)&dn=Example+File&tr=http%3A%2F%2Ftracker.example%2Fannounce&x.pe=10.0.0.1:6881")
        #expect(link.infoHash == Self.hash)
        #expect(link.displayName == "Example File")
        #expect(link.trackers == ["http://tracker.example/announce"])
        #expect(link.peers == [PeerAddress(host: "10.0.0.1", port: 6881)])
        #expect(link.webSeeds.isEmpty)
        #expect(link.selectedFiles == nil)
        #expect(link.exactLength == nil)
        #expect(link.isSelected(fileIndex: 12345))
    }

    @Test("the hash alone is enough; hex, uppercase hex and base32 (either case) agree", arguments: [
        "magnet:?xt=urn:btih:\(hex)",
        "magnet:?xt=urn:btih:\(hex.uppercased())",
        "magnet:?xt=urn:btih:\(base32)",
        "magnet:?xt=urn:btih:\(base32.lowercased())",
        "MAGNET:?XT=URN:BTIH:\(hex)",
        "  magnet:?xt=urn:btih:\(hex)\n",
        "magnet:?&&xt=urn:btih:\(hex)&&",
    ])
    func hashForms(uri: String) throws {
        let link = try MagnetLink(parsing: uri)
        #expect(link.infoHash == Self.hash)
        #expect(link.displayName == nil)
        #expect(link.trackers.isEmpty)
    }

    @Test("dn decodes + and %20 as spaces, and UTF-8 escapes", arguments: [
        ("dn=a+b%20c", "a b c"),
        ("dn=caf%C3%A9", "café"),
        ("dn=100%25+pure", "100% pure"),
        ("dn=first&dn=second", "first"),
        ("dn=&dn=second", "second"),
    ])
    func displayName(parameter: String, expected: String) throws {
        #expect(try MagnetLink(parsing: "magnet:?xt=urn:btih:\(Self.hex)&\(parameter)").displayName == expected)
    }

    @Test("several tr and ws, deduplicated in order; + stays + outside dn")
    func trackersAndWebSeeds() throws {
        let link = try MagnetLink(parsing: "magnet:?xt=urn:btih:\(Self.hex)"
            + "&tr=udp%3A%2F%2Fa%3A80&tr=http://b/announce?x=1+2&tr.1=udp%3A%2F%2Fa%3A80&tr=&tr.2=udp://c:1"
            + "&ws=http%3A%2F%2Fseed%2Ffile&ws=http://seed2/")
        #expect(link.trackers == ["udp://a:80", "http://b/announce?x=1+2", "udp://c:1"])
        #expect(link.webSeeds == ["http://seed/file", "http://seed2/"])
    }

    @Test("a tracker URL with its own query, fully escaped, survives")
    func trackerWithQuery() throws {
        let link = try MagnetLink(parsing: "magnet:?xt=urn:btih:\(Self.hex)&tr=http%3A%2F%2Fb%2Fann%3Fk%3D1%2B2%26p%3D3")
        #expect(link.trackers == ["http://b/ann?k=1+2&p=3"])
    }

    @Test("x.pe with IPv4, names and bracketed IPv6")
    func peers() throws {
        let link = try MagnetLink(parsing: "magnet:?xt=urn:btih:\(Self.hex)"
            + "&x.pe=1.2.3.4:6881&x.pe=%5B%3A%3A1%5D%3A51413&x.pe=[2001:db8::2]:1&x.pe=peer.example:65535&x.pe=1.2.3.4:6881")
        #expect(link.peers == [
            PeerAddress(host: "1.2.3.4", port: 6881),
            PeerAddress(host: "::1", port: 51413),
            PeerAddress(host: "2001:db8::2", port: 1),
            PeerAddress(host: "peer.example", port: 65535),
        ])
        #expect(link.peers[1].description == "[::1]:51413")
        #expect(link.peers[0].description == "1.2.3.4:6881")
    }

    @Test("so selects files by index and range (BEP 53)")
    func fileSelection() throws {
        let link = try MagnetLink(parsing: "magnet:?xt=urn:btih:\(Self.hex)&so=0,2,4-6&so=9")
        #expect(link.selectedFiles == [0...0, 2...2, 4...6, 9...9])
        let selected = (0..<11).filter { link.isSelected(fileIndex: $0) }
        #expect(selected == [0, 2, 4, 5, 6, 9])
    }

    @Test("xl is the exact length")
    func exactLength() throws {
        #expect(try MagnetLink(parsing: "magnet:?xt=urn:btih:\(Self.hex)&xl=10826029").exactLength == 10_826_029)
    }

    @Test("xt.1 numbering: the first btih wins; other URNs are skipped")
    func numberedXT() throws {
        let other = "0123456789abcdef0123456789abcdef01234567"
        let link = try MagnetLink(parsing:
            "magnet:?xt.1=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e&xt.2=urn:btih:\(Self.hex)&xt=urn:btih:\(other)")
        #expect(link.infoHash == Self.hash)
    }

    @Test("unknown parameters are ignored")
    func unknownIgnored() throws {
        let link = try MagnetLink(parsing:
            "magnet:?kt=a+b&xt=urn:btih:\(Self.hex)&as=http://x/&x.foo=bar&mt=&novalue&x.pe.1=bad&dn=n")
        #expect(link.infoHash == Self.hash)
        #expect(link.peers.isEmpty)
        #expect(link == MagnetLink(infoHash: Self.hash, displayName: "n"))
    }

    @Test("an unknown parameter is ignored even when its value is not valid percent-encoding")
    func unknownMalformedIgnored() {
        // RELIABILITY.md: unknown parameters are ignored. Real magnets carry vendor
        // parameters with raw '%' (e.g. "x.progress=50%"); they must not sink the link.
        #expect(magnetReason("magnet:?xt=urn:btih:\(Self.hex)&x.progress=50%") == nil)
        #expect(magnetReason("magnet:?x.foo=%zz&xt=urn:btih:\(Self.hex)") == nil)
    }

    static let errors: [(String, MagnetError.Reason)] = [
        ("http://example.com/?xt=urn:btih:\(hex)", .notAMagnet),
        ("magnet:xt=urn:btih:\(hex)", .notAMagnet),
        ("", .notAMagnet),
        ("magnet:?", .missingInfoHash),
        ("magnet:?dn=name&tr=udp://t:1", .missingInfoHash),
        ("magnet:?xt=urn:sha1:\(hex)", .missingInfoHash),
        ("magnet:?xt=urn:btih:g12fe1c06bba254a9dc9f519b335aa7c1367a88a", .invalidInfoHash("g12fe1c06bba254a9dc9f519b335aa7c1367a88a")),
        ("magnet:?xt=urn:btih:\(hex.dropLast())", .invalidInfoHash(String(hex.dropLast()))),
        ("magnet:?xt=urn:btih:\(hex)00", .invalidInfoHash(hex + "00")),
        ("magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1", .invalidInfoHash("YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1")),
        ("magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE", .invalidInfoHash("YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE")),
        ("magnet:?xt=urn:btih:", .invalidInfoHash("")),
        ("magnet:?xt=urn:btih:%20\(hex)", .invalidInfoHash(" " + hex)),
        ("magnet:?xt=urn:btih:\(hex)&dn=%zz", .invalidPercentEncoding(name: "dn")),
        ("magnet:?xt=urn:btih:\(hex)&tr=http://a/%4", .invalidPercentEncoding(name: "tr")),
        ("magnet:?xt=urn:btih:\(hex)&tr=%", .invalidPercentEncoding(name: "tr")),
        ("magnet:?xt=urn:btih:%c1\(hex.dropFirst(2))%", .invalidPercentEncoding(name: "xt")),
        ("magnet:?xt=urn:btih:\(hex)&x.pe=nohost", .invalidPeer("nohost")),
        ("magnet:?xt=urn:btih:\(hex)&x.pe=host:0", .invalidPeer("host:0")),
        ("magnet:?xt=urn:btih:\(hex)&x.pe=host:65536", .invalidPeer("host:65536")),
        ("magnet:?xt=urn:btih:\(hex)&x.pe=:80", .invalidPeer(":80")),
        ("magnet:?xt=urn:btih:\(hex)&x.pe=::1:80", .invalidPeer("::1:80")),
        ("magnet:?xt=urn:btih:\(hex)&x.pe=[::1]", .invalidPeer("[::1]")),
        ("magnet:?xt=urn:btih:\(hex)&x.pe=[::1:80", .invalidPeer("[::1:80")),
        ("magnet:?xt=urn:btih:\(hex)&x.pe=[]:80", .invalidPeer("[]:80")),
        ("magnet:?xt=urn:btih:\(hex)&so=", .invalidFileSelection("")),
        ("magnet:?xt=urn:btih:\(hex)&so=1,,2", .invalidFileSelection("1,,2")),
        ("magnet:?xt=urn:btih:\(hex)&so=6-4", .invalidFileSelection("6-4")),
        ("magnet:?xt=urn:btih:\(hex)&so=-1", .invalidFileSelection("-1")),
        ("magnet:?xt=urn:btih:\(hex)&so=1-2-3", .invalidFileSelection("1-2-3")),
        ("magnet:?xt=urn:btih:\(hex)&so=a", .invalidFileSelection("a")),
        ("magnet:?xt=urn:btih:\(hex)&xl=0", .invalidExactLength("0")),
        ("magnet:?xt=urn:btih:\(hex)&xl=-5", .invalidExactLength("-5")),
        ("magnet:?xt=urn:btih:\(hex)&xl=12ab", .invalidExactLength("12ab")),
        ("magnet:?xt=urn:btih:\(hex)&xl=99999999999999999999", .invalidExactLength("99999999999999999999")),
    ]

    @Test("malformed magnets are refused with a reason", arguments: errors)
    func rejected(uri: String, expected: MagnetError.Reason) {
        #expect(magnetReason(uri) == expected)
    }

    @Test("oversized URI and parameters")
    func oversized() {
        let base = "magnet:?xt=urn:btih:\(Self.hex)"
        let longURI = base + "&x.junk=" + String(repeating: "a", count: MagnetLink.maxLength)
        #expect(magnetReason(longURI) == .tooLong(length: longURI.utf8.count, limit: MagnetLink.maxLength))
        let atParameterLimit = base + "&dn=" + String(repeating: "n", count: MagnetLink.maxParameterLength)
        #expect(magnetReason(atParameterLimit) == nil)
        let longParameter = base + "&dn=" + String(repeating: "n", count: MagnetLink.maxParameterLength + 1)
        #expect(magnetReason(longParameter)
            == .parameterTooLong(name: "dn", length: MagnetLink.maxParameterLength + 1, limit: MagnetLink.maxParameterLength))
        let unknownLong = base + "&zz=" + String(repeating: "z", count: 9000)
        #expect(magnetReason(unknownLong) == .parameterTooLong(name: "zz", length: 9000, limit: MagnetLink.maxParameterLength))
        let manyParameters = base + String(repeating: "&a=b", count: MagnetLink.maxParameters)
        #expect(magnetReason(manyParameters) == .tooManyParameters(limit: MagnetLink.maxParameters))
        let justEnough = base + String(repeating: "&a=b", count: MagnetLink.maxParameters - 1)
        #expect(magnetReason(justEnough) == nil)
    }

    static let roundTrips: [MagnetLink] = [
        MagnetLink(infoHash: hash),
        MagnetLink(infoHash: hash, displayName: "Name with spaces, +plus+ & ampersand = équals/slash%"),
        MagnetLink(infoHash: hash, displayName: "x", trackers: ["udp://t.example:6969/announce", "http://a/b?c=d&e=f"],
                   webSeeds: ["https://seed.example/path/file name.iso"],
                   peers: [PeerAddress(host: "10.1.2.3", port: 1), PeerAddress(host: "fe80::1", port: 65535)],
                   selectedFiles: [0...0, 3...7], exactLength: Int64.max),
    ]

    @Test("MagnetLink(parsing: m.uri) == m", arguments: roundTrips)
    func roundTrip(link: MagnetLink) throws {
        #expect(try MagnetLink(parsing: link.uri) == link)
        #expect(link.uri.hasPrefix("magnet:?xt=urn:btih:\(Self.hex)"))
    }

    @Test("MagnetLink(metainfo:) carries hash, name, trackers in tier order without repeats, web seeds and length")
    func fromMetainfo() throws {
        var extra = BDictionary()
        extra["announce"] = "http://a/ann"
        extra["announce-list"] = [["http://a/ann", "udp://b:1"], ["udp://b:1", "udp://c:2"]]
        extra["url-list"] = "http://seed/"
        let metainfo = try Metainfo(bytes: TorrentFixture.torrent(
            TorrentFixture.singleFile(name: "Some File.iso", length: 40000), extra: extra))
        let link = MagnetLink(metainfo: metainfo)
        #expect(link.infoHash == metainfo.infoHash)
        #expect(link.displayName == "Some File.iso")
        #expect(link.trackers == ["http://a/ann", "udp://b:1", "udp://c:2"])
        #expect(link.webSeeds == ["http://seed/"])
        #expect(link.exactLength == 40000)
        #expect(try MagnetLink(parsing: link.uri) == link)
    }

    static let peerTexts: [(String, PeerAddress?)] = [
        ("1.2.3.4:80", PeerAddress(host: "1.2.3.4", port: 80)),
        ("[::1]:6881", PeerAddress(host: "::1", port: 6881)),
        ("host.example:1", PeerAddress(host: "host.example", port: 1)),
        ("1.2.3.4", nil),
        ("1.2.3.4:", nil),
        ("1.2.3.4:-1", nil),
        ("[::1]6881", nil),
    ]

    @Test("PeerAddress parsing", arguments: peerTexts)
    func peerAddress(text: String, expected: PeerAddress?) {
        #expect(PeerAddress(text) == expected)
    }
}
