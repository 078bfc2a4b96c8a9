import Foundation
import TestSupport
import Testing

@testable import BitTorrent

/// Replays the fuzzers' seed corpora and every crasher they ever found (Fuzz/crashers/KIND/)
/// through the same checks the fuzz targets make, so a fixed crash stays fixed.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static func inputs(_ kind: String) -> [URL] { FuzzInputs.files(kind) }

    @Test("the corpora are there")
    func corporaExist() {
        for kind in ["bencode", "metainfo", "magnet", "peerwire", "extension", "httptracker", "udptracker"] {
            #expect(!Self.inputs(kind).isEmpty, "no inputs for \(kind)")
        }
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

    @Test("peer wire inputs round-trip", arguments: inputs("peerwire"))
    func peerWire(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        var rest = bytes[...]
        if let handshake = try? Handshake.decode(rest) {
            let frame = Array(rest.prefix(Handshake.length))
            #expect(handshake.encoded == frame)
            #expect(try Handshake.decode(handshake.encoded[...]) == handshake)
            #expect(try Handshake.decode(([0] + frame)[1...]) == handshake)
            for cut in 0..<Handshake.length { #expect(try Handshake.decode(rest.prefix(cut)) == nil, "prefix \(cut)") }
            rest = rest.dropFirst(Handshake.length)
        }
        let decoder = PeerMessageDecoder()
        while let (message, consumed) = Self.decoded(decoder, rest) {
            try #require(consumed >= 4 && consumed <= rest.count)
            let frame = rest.prefix(consumed)
            #expect(message.encoded == Array(frame))
            let again = try #require(try decoder.decode(message.encoded[...]))
            #expect(again.message == message && again.consumed == consumed)
            for cut in Set([0, 3, 4, consumed / 2, consumed - 1]) where cut < consumed {
                #expect(try decoder.decode(frame.prefix(cut)) == nil, "prefix \(cut) of \(message)")
            }
            rest = rest.dropFirst(consumed)
        }
    }

    /// The next message and its length, or nil when the decoder refuses or needs more.
    static func decoded(_ decoder: PeerMessageDecoder, _ bytes: ArraySlice<UInt8>) -> (PeerMessage, Int)? {
        guard let result = try? decoder.decode(bytes) else { return nil }
        return (result.message, result.consumed)
    }

    @Test("extension message inputs round-trip", arguments: inputs("extension"))
    func extensionMessages(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        if let handshake = try? ExtensionHandshake(payload: bytes) {
            let again = try ExtensionHandshake(payload: handshake.payload)
            #expect(again == handshake && again.payload == handshake.payload)
            #expect(handshake.listenPort != 0)
            #expect(handshake.requestQueueDepth.map { (1...100_000).contains($0) } ?? true)
            #expect(handshake.yourIP.map { $0.count == 4 || $0.count == 16 } ?? true)
            #expect(handshake.metadataSize.map { $0 > 0 } ?? true)
        }
        if let message = try? MetadataMessage(payload: bytes) {
            let again = try MetadataMessage(payload: message.payload)
            #expect(again == message && again.payload == message.payload)
            switch message {
            case .request(let piece), .reject(let piece):
                #expect(piece >= 0 && piece < MetadataMessage.maxMetadataSize / MetadataMessage.pieceSize)
            case .data(let piece, let total, _):
                #expect(piece >= 0 && piece < MetadataMessage.maxMetadataSize / MetadataMessage.pieceSize)
                #expect(total > 0 && total <= MetadataMessage.maxMetadataSize)
            }
        }
        if let pex = try? PEXMessage(payload: bytes) {
            let again = try PEXMessage(payload: pex.payload)
            #expect(again == pex && again.payload == pex.payload)
            #expect(pex.added.count <= PEXMessage.maxAddedPeers && pex.dropped.count <= PEXMessage.maxDroppedPeers)
            for peer in pex.added + pex.dropped {
                #expect(peer.port != 0 && (peer.address.count == 4 || peer.address.count == 16))
            }
        }
    }

    @Test("HTTP tracker responses parse within bounds", arguments: inputs("httptracker"))
    func httpTracker(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        if let response = try? HTTPTrackerProtocol.parseAnnounce(bytes) {
            #expect(response.interval >= HTTPTrackerProtocol.minimumInterval)
            for peer in response.peers { #expect(peer.port != 0 && !peer.host.isEmpty) }
        }
        var hashes = [InfoHash(Array(repeating: 0xA5, count: 20))!]
        if let value = try? Bencode.decode(bytes, limits: .torrentFile), let files = value["files"]?.dictionaryValue {
            hashes += files.entries.compactMap { InfoHash($0.key) }
        }
        for hash in hashes {
            guard let entry = try? HTTPTrackerProtocol.parseScrape(bytes, infoHash: hash) else { continue }
            #expect(entry.seeders >= 0 && entry.completed >= 0 && entry.leechers >= 0)
        }
    }

    @Test("UDP tracker packets parse to what they say", arguments: inputs("udptracker"))
    func udpTracker(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        for ipv6 in [false, true] {
            guard let response = try? UDPTrackerPacket.parse(bytes, ipv6: ipv6) else { continue }
            #expect(response.transaction == UDPTrackerPacket.get32(bytes, 4))
            let action = UDPTrackerPacket.get32(bytes, 0)
            switch response {
            case .connected(_, let connection):
                #expect(action == 0 && connection == UDPTrackerPacket.get64(bytes, 8))
            case .announced(_, let announce):
                let entry = ipv6 ? 18 : 6
                #expect(action == 1 && (bytes.count - 20) % entry == 0)
                #expect(announce.peers.count <= (bytes.count - 20) / entry)
                #expect(announce.interval >= HTTPTrackerProtocol.minimumInterval)
                for peer in announce.peers { #expect(peer.port != 0) }
            case .scraped(_, let entries):
                #expect(action == 2 && entries.count == (bytes.count - 8) / 12)
            case .error:
                #expect(action == 3)
            }
        }
    }
}
