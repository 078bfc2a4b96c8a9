import ArgumentParser
import Foundation

@main
struct TorrentFSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torrentfs",
        abstract: "A streaming BitTorrent client whose interface is a filesystem.",
        version: "0.1.0",
        subcommands: [MountCommand.self, AddCommand.self, StatusCommand.self, InfoCommand.self, CreateCommand.self,
                      DownloadCommand.self, SeedCommand.self, ServeCommand.self]
    )

    /// `mount.torrentfs …` (a link to this binary) is `torrentfs mount …`, where `-f` is
    /// mount(8)'s fake mode (check everything, mount nothing), not the foreground.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let invokedAs = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? ""
        if invokedAs == "mount.torrentfs" {
            arguments = ["mount"] + arguments.map { $0 == "-f" ? "--fake" : $0 }
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
