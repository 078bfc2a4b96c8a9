import ArgumentParser
import BitTorrent
import Foundation
import TorrentEngine

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make a .torrent file from a file or a directory and print its magnet link."
    )

    @Argument(help: "The file or directory to share.")
    var path: String

    @Option(name: .shortAndLong, help: "Where to write the .torrent (default: NAME.torrent here).")
    var output: String?

    @Option(name: .long, help: "Tracker announce URL; repeat for more tiers, separate URLs of one tier with commas.")
    var tracker: [String] = []

    @Option(name: .customLong("web-seed"), help: "Web seed URL (BEP 19); repeatable.")
    var webSeed: [String] = []

    @Option(name: .customLong("piece-length"), help: "Piece length in bytes (K/M suffixes allowed); a multiple of 16 KiB. Default: automatic.")
    var pieceLength: String?

    @Flag(help: "Mark the torrent private (BEP 27).")
    var `private` = false

    @Option(help: "A comment stored in the torrent.")
    var comment: String?

    @Option(help: "A source tag (changes the info hash, as in cross-seeding setups).")
    var source: String?

    @Flag(name: .customLong("no-date"), help: "Leave out the creation date, for reproducible output.")
    var noDate = false

    @Option(help: "Hashing threads (default: all cores).")
    var threads: Int?

    @Flag(help: "Print JSON (path, info hash, magnet) instead of the magnet alone.")
    var json = false

    func run() throws {
        var options = TorrentBuilder.Options()
        options.trackers = tracker.map { $0.split(separator: ",").map { String($0) }.filter { !$0.isEmpty } }
        options.webSeeds = webSeed
        options.isPrivate = `private`
        options.comment = comment
        options.source = source
        options.creationDate = noDate ? nil : Int64(Date().timeIntervalSince1970)
        var length: Int?
        if let pieceLength {
            guard let parsed = (ByteSize.parse(pieceLength).map { Int(clamping: $0) }) else {
                throw CLIError("invalid piece length '\(pieceLength)': use bytes, or a number with K or M")
            }
            length = parsed
        }
        if let threads, threads < 1 { throw CLIError("--threads must be at least 1") }
        let result: TorrentCreator.Result
        do {
            result = try TorrentCreator.create(path: path, pieceLength: length, options: options,
                                               threads: threads ?? System.coreCount)
        } catch {
            throw CLIError("\(error)")
        }
        let destination = output ?? result.metainfo.info.name + ".torrent"
        do {
            try Data(result.torrent).write(to: URL(fileURLWithPath: destination), options: .atomic)
        } catch {
            throw CLIError("cannot write \(destination): \(error.localizedDescription)")
        }
        let magnet = MagnetLink(metainfo: result.metainfo).uri
        if json {
            struct Output: Encodable {
                var torrent: String
                var infoHash: String
                var magnet: String
                var pieceLength: Int
                var pieceCount: Int
            }
            try printJSON(Output(torrent: destination, infoHash: result.metainfo.infoHash.hex, magnet: magnet,
                                 pieceLength: result.metainfo.info.pieceLength,
                                 pieceCount: result.metainfo.info.lengths.pieceCount))
        } else {
            print(magnet)
        }
    }
}
