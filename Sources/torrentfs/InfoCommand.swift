import ArgumentParser
import BitTorrent
import Foundation

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show what a .torrent file or magnet link describes."
    )

    @Argument(help: "A .torrent file, a magnet URI or an info hash.")
    var torrent: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        switch try TorrentInput.load(torrent) {
        case .metainfo(let metainfo):
            if json {
                try printJSON(TorrentSummary(metainfo))
            } else {
                printText(metainfo)
            }
        case .magnet(let magnet):
            if json {
                try printJSON(MagnetSummary(magnet))
            } else {
                printText(magnet)
            }
        }
    }

    private func printText(_ metainfo: Metainfo) {
        let info = metainfo.info
        print("name:         \(info.name)")
        print("info hash:    \(metainfo.infoHash.hex)")
        print("total size:   \(ByteCount.format(info.totalLength)) (\(info.totalLength) bytes)")
        print("pieces:       \(info.lengths.pieceCount) × \(ByteCount.format(Int64(info.pieceLength)))")
        print("private:      \(info.isPrivate ? "yes" : "no")")
        if let comment = metainfo.comment { print("comment:      \(comment)") }
        if let createdBy = metainfo.createdBy { print("created by:   \(createdBy)") }
        if let date = metainfo.creationDate {
            print("created:      \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(date))))")
        }
        for (tier, urls) in metainfo.trackerTiers.enumerated() {
            for url in urls { print("tracker:      [\(tier)] \(url)") }
        }
        for url in metainfo.webSeeds { print("web seed:     \(url)") }
        print("magnet:       \(MagnetLink(metainfo: metainfo).uri)")
        let files = info.visibleFiles
        print("files:        \(files.count)")
        for file in files {
            print("  \(String(ByteCount.format(file.length)).leftPadded(to: 10))  \(file.path.joined(separator: "/"))")
        }
    }

    private func printText(_ magnet: MagnetLink) {
        print("info hash:    \(magnet.infoHash.hex)")
        if let name = magnet.displayName { print("name:         \(name)") }
        if let length = magnet.exactLength { print("total size:   \(ByteCount.format(length)) (\(length) bytes)") }
        for url in magnet.trackers { print("tracker:      \(url)") }
        for url in magnet.webSeeds { print("web seed:     \(url)") }
        for peer in magnet.peers { print("peer:         \(peer)") }
        if let selected = magnet.selectedFiles {
            print("files:        \(selected.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ","))")
        }
        print("metadata:     not included (fetched from peers)")
    }
}

/// JSON shape of `info --json` for a .torrent.
struct TorrentSummary: Encodable {
    struct File: Encodable {
        var path: String
        var pathElements: [String]
        var size: Int64
        var offset: Int64
    }

    var kind = "torrent"
    var name: String
    var infoHash: String
    var totalSize: Int64
    var pieceLength: Int
    var pieceCount: Int
    var `private`: Bool
    var files: [File]
    var paddingFiles: Int
    var trackers: [String]
    var trackerTiers: [[String]]
    var webSeeds: [String]
    var comment: String?
    var createdBy: String?
    var creationDate: Int64?
    var magnet: String

    init(_ metainfo: Metainfo) {
        let info = metainfo.info
        name = info.name
        infoHash = metainfo.infoHash.hex
        totalSize = info.totalLength
        pieceLength = info.pieceLength
        pieceCount = info.lengths.pieceCount
        `private` = info.isPrivate
        files = info.visibleFiles.map {
            File(path: $0.path.joined(separator: "/"), pathElements: $0.path, size: $0.length, offset: $0.offset)
        }
        paddingFiles = info.files.count - files.count
        trackerTiers = metainfo.trackerTiers
        trackers = Array(metainfo.trackerTiers.joined())
        webSeeds = metainfo.webSeeds
        comment = metainfo.comment
        createdBy = metainfo.createdBy
        creationDate = metainfo.creationDate
        magnet = MagnetLink(metainfo: metainfo).uri
    }
}

/// JSON shape of `info --json` for a magnet.
struct MagnetSummary: Encodable {
    var kind = "magnet"
    var infoHash: String
    var name: String?
    var totalSize: Int64?
    var trackers: [String]
    var webSeeds: [String]
    var peers: [String]
    var selectedFiles: [[Int]]?
    var magnet: String

    init(_ magnet: MagnetLink) {
        infoHash = magnet.infoHash.hex
        name = magnet.displayName
        totalSize = magnet.exactLength
        trackers = magnet.trackers
        webSeeds = magnet.webSeeds
        peers = magnet.peers.map(\.description)
        selectedFiles = magnet.selectedFiles?.map { [$0.lowerBound, $0.upperBound] }
        self.magnet = magnet.uri
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

enum ByteCount {
    /// `1.5 MiB`-style sizes.
    static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }

}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
