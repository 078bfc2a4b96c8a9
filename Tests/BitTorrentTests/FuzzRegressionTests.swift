import Foundation
import Testing

@testable import BitTorrent

/// Replays the fuzzers' seed corpora and every crasher they ever found (Fuzz/crashers/KIND/)
/// through the same checks the fuzz targets make, so a fixed crash stays fixed.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func inputs(_ kind: String) -> [URL] {
        ["corpus", "crashers"].flatMap { folder -> [URL] in
            let directory = fuzzDirectory.appendingPathComponent(folder).appendingPathComponent(kind)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { !$0.hasPrefix(".") }.sorted().map { directory.appendingPathComponent($0) }
        }
    }

    @Test("the corpora are there")
    func corporaExist() {
        for kind in ["bencode", "metainfo", "magnet"] { #expect(!Self.inputs(kind).isEmpty, "no inputs for \(kind)") }
    }

    @Test("bencode inputs round-trip", arguments: inputs("bencode"))
    func bencode(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        for limits in [BencodeLimits.strict, BencodeLimits.torrentFile] {
            guard let value = try? Bencode.decode(bytes, limits: limits) else { continue }
            let again = try Bencode.decode(Bencode.encode(value), limits: .strict)
            if limits.requireCanonicalKeys {
                #expect(Bencode.encode(value) == bytes)
                #expect(again == value)
            }
        }
    }

    @Test("metainfo inputs parse consistently", arguments: inputs("metainfo"))
    func metainfo(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        guard let metainfo = try? Metainfo(bytes: bytes) else { return }
        var offset: Int64 = 0
        for file in metainfo.info.files {
            #expect(file.offset == offset)
            offset += file.length
            for element in file.path {
                #expect(!element.isEmpty && element != "." && element != ".." && !element.contains("/"))
            }
        }
        #expect(offset == metainfo.info.totalLength)
        _ = try Metainfo(infoBytes: metainfo.infoBytes, expected: metainfo.infoHash)
    }

    @Test("magnet inputs round-trip", arguments: inputs("magnet"))
    func magnet(_ file: URL) throws {
        let text = String(decoding: try Data(contentsOf: file), as: UTF8.self)
        guard let magnet = try? MagnetLink(parsing: text) else { return }
        let again = try MagnetLink(parsing: magnet.uri)
        #expect(again.infoHash == magnet.infoHash && again.trackers == magnet.trackers && again.peers == magnet.peers)
    }
}
