import BitTorrent
import Foundation
import TestSupport
import Testing
import TorrentEngine
@testable import TorrentFSCore

/// Replays the seed corpora of the `.add` and mount option fuzzers and every crasher they
/// found (Fuzz/corpus/KIND, Fuzz/crashers/KIND) through the checks Fuzz/FuzzAddInput.swift and
/// Fuzz/FuzzMountOptions.swift make, so a fixed crash stays fixed.
@Suite("Fuzz regressions (filesystem core)")
struct FuzzRegressionTests {
    static func inputs(_ kind: String) -> [URL] { FuzzInputs.files(kind) }

    @Test("the corpora are there")
    func corporaExist() {
        for kind in ["addinput", "mountoptions"] { #expect(!Self.inputs(kind).isEmpty, "no inputs for \(kind)") }
    }

    @Test(".add inputs: the write check accepts what the close accepts", arguments: inputs("addinput"))
    func addInput(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        let partialOK = (try? AddInput.check(partial: bytes)) != nil
        guard let items = try? AddInput.parse(bytes) else { return }
        #expect(partialOK)
        let ends = bytes.indices.filter { bytes[$0] == UInt8(ascii: "\n") }
        for end in Set(ends.prefix(8) + ends.suffix(8)) {
            #expect((try? AddInput.check(partial: Array(bytes[...end]))) != nil, "prefix to byte \(end)")
        }
        #expect(!items.isEmpty)
        for item in items {
            switch item {
            case .magnet(let magnet):
                #expect(try MagnetLink(parsing: magnet.uri).infoHash == magnet.infoHash)
            case .metainfo(_, let raw):
                #expect(raw == bytes && items.count == 1)
            case .url(let url):
                let lower = url.lowercased()
                #expect(lower.hasPrefix("http://") || lower.hasPrefix("https://"))
                #expect(!url.unicodeScalars.contains(where: { $0 == " " || $0.value < 0x20 }), "\(url)")
            case .path(let path):
                #expect(path.hasPrefix("/"))
            }
        }
    }

    @Test("mount option inputs apply within bounds", arguments: inputs("mountoptions"))
    func mountOptions(_ file: URL) throws {
        let text = String(decoding: try Data(contentsOf: file), as: UTF8.self)
        let lists = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for list in lists {
            guard let bytes = ByteSize.parse(list) else { continue }
            #expect(bytes >= 0 && ByteSize.parse(String(bytes)) == bytes, "\(list)")
        }
        var options = MountOptions(dataDirectory: "/default")
        guard (try? options.apply(lists)) != nil else { return }
        #expect(options.dataDirectory.hasPrefix("/"))
        #expect(options.logFile.map { $0.hasPrefix("/") } ?? true)
        #expect(options.listenPort.map { (0...65535).contains($0) } ?? true)
        #expect(options.downloadLimit.map { $0 > 0 } ?? true)
        #expect(options.uploadLimit.map { $0 > 0 } ?? true)
        #expect((1...100_000).contains(options.maxConnections) && (1...100_000).contains(options.maxPeers))
        #expect((0...(1 << 30)).contains(options.readahead))
        #expect(options.readTimeout.map { $0 > 0 && $0.isFinite } ?? true)
        #expect(options.metadataTimeout >= 0 && options.metadataTimeout.isFinite)
        #expect(options.seedRatio.map { $0 >= 0 && $0.isFinite } ?? true)
        if options.httpAddress != nil {
            let (host, port) = try #require(options.http)
            #expect(!host.isEmpty && (0...65535).contains(port))
            let text = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            let again = try #require(MountOptions.hostAndPort(text))
            #expect(again.host == host && again.port == port)
        }
        let emptyHost = options.httpHosts.contains { $0.isEmpty }
        #expect(!emptyHost)
    }
}
