import ArgumentParser

@main
struct TorrentFSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torrentfs",
        abstract: "A streaming BitTorrent client whose interface is a filesystem.",
        version: "0.1.0",
        subcommands: [InfoCommand.self, CreateCommand.self, DownloadCommand.self, SeedCommand.self]
    )
}
