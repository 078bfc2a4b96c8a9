import Foundation
import TorrentEngine

/// Status documents for the view's tests, written as the JSON `.status` holds (the engine
/// makes `TorrentStats`; here they are decoded, as `torrentfs status` does).
enum Fixtures {
    static func peer(_ address: String, client: String? = "libtorrent 2.0.8", down: Double = 0, up: Double = 0,
                     source: String? = "tracker", transport: String = "tcp", incoming: Bool = false,
                     progress: Double = 1, peerChoking: Bool = false, amChoking: Bool = true) -> [String: Any] {
        var peer: [String: Any] = [
            "address": address, "transport": transport, "incoming": incoming, "downloadRate": down, "uploadRate": up,
            "downloaded": 0, "uploaded": 0, "peerChoking": peerChoking, "amChoking": amChoking, "progress": progress,
        ]
        if let client { peer["client"] = client }
        if let source { peer["source"] = source }
        return peer
    }

    static func torrent(_ name: String, hash: Character = "a", state: String = "downloading", progress: Double = 0.25,
                        total: Int64? = 4 << 20, map: String = "####>>--........", down: Double = 300_000,
                        up: Double = 1_000, eta: Double? = 42, peers: [[String: Any]] = [], error: String? = nil,
                        folder: String? = nil, trackers: [[String: Any]] = []) -> [String: Any] {
        var torrent: [String: Any] = [
            "name": name, "infoHash": String(repeating: hash, count: 40), "magnet": "magnet:?xt=urn:btih:x",
            "state": state, "verifiedBytes": Int64(Double(total ?? 0) * progress), "progress": progress,
            "wantedBytes": total ?? 0, "verifiedWantedBytes": Int64(Double(total ?? 0) * progress),
            "wantedProgress": progress, "downloaded": 123_456, "uploaded": 789, "downloadRate": down, "uploadRate": up,
            "peers": peers, "knownPeers": peers.count + 2, "hashFailures": 0, "bannedPeers": 0, "bansByReason": [:],
            "knownPeersBySource": ["tracker": peers.count + 1, "pex": 1], "trackers": trackers, "pieceMap": map,
        ]
        if let total { torrent["totalSize"] = total }
        if let eta { torrent["eta"] = eta }
        if let error { torrent["error"] = error }
        if let folder { torrent["folder"] = folder }
        return torrent
    }

    static func document(_ torrents: [[String: Any]], port: Int = 6881, addErrors: [[String: Any]] = [],
                         cache: [String: Any]? = nil) -> StatusDocument {
        var object: [String: Any] = ["listenPort": port, "torrents": torrents, "addErrors": addErrors]
        if let cache { object["cache"] = cache }
        let data = try! JSONSerialization.data(withJSONObject: object)
        return try! JSONDecoder().decode(StatusDocument.self, from: data)
    }

    /// Three torrents: one with a long name, one with wide characters and a control
    /// character in its name, one with many peers and an error.
    static var busy: StatusDocument {
        let sources = ["tracker", "pex", "incoming"]
        var manyPeers: [[String: Any]] = []
        for i in 0..<40 {
            let client: String? = i % 3 == 0 ? nil : "Transmission 4.0.\(i) \u{1B}[31mred"
            manyPeers.append(peer("10.0.\(i / 10).\(i):\(6881 + i)", client: client, down: Double(i * 1000),
                                  up: Double(i % 5 * 100), source: sources[i % 3], incoming: i % 3 == 2,
                                  progress: Double(i) / 40, peerChoking: i % 2 == 0, amChoking: i % 4 == 0))
        }
        let long = "A torrent whose name goes on and on, far wider than any terminal that shows it, with more words after that"
        let first = torrent(long, hash: "a", peers: [peer("127.0.0.1:6881", down: 250_000),
                                                    peer("[::1]:51413", source: "pex", incoming: true)])
        let second = torrent("Ünïcødé ファイル 🎬 e\u{301}\u{1B}[2J", hash: "b", state: "seeding", progress: 1,
                             map: String(repeating: "#", count: 120), down: 0, up: 50_000, eta: 0)
        let third = torrent("magnet only", hash: "c", state: "fetching metadata", progress: 0, total: nil, map: "",
                            down: 0, up: 0, eta: nil)
        let tracker: [String: Any] = ["url": "http://127.0.0.1:6969/announce", "tier": 0, "peersReceived": 12,
                                      "seeders": 3, "leechers": 9, "lastError": "timed out"]
        let fourth = torrent("Many peers", hash: "d", progress: 0.5, map: String(repeating: "#>-.+", count: 24),
                             peers: manyPeers, error: "cannot store data: No space left on device", trackers: [tracker])
        let refused: [String: Any] = ["time": "2026-01-01T00:00:00Z", "input": "x", "error": "line 1: not a magnet link"]
        return document([first, second, third, fourth], addErrors: [refused])
    }
}
