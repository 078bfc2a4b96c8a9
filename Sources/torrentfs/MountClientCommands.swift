import ArgumentParser
import Foundation
import TorrentEngine
#if canImport(Glibc)
import Glibc
#endif

/// `torrentfs add MOUNTPOINT INPUT…`: writes each input to `MOUNTPOINT/.add`.
struct AddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add torrents to a mount (magnet, info hash, .torrent file, or URL).",
        discussion: "A .torrent file's bytes are written; anything else is written as one line."
    )

    @Argument(help: "The mount point.")
    var mountpoint: String

    @Argument(help: "Magnet links, info hashes, .torrent files, or http(s) URLs of .torrent files.")
    var inputs: [String]

    func run() throws {
        let control = mountpoint + "/.add"
        var failed = 0
        for input in inputs {
            let bytes: [UInt8]
            if FileManager.default.fileExists(atPath: input) && !input.lowercased().hasPrefix("magnet:") {
                guard let data = FileManager.default.contents(atPath: input) else {
                    throw CLIError("cannot read \(input)")
                }
                bytes = [UInt8](data)
            } else {
                bytes = Array((input + "\n").utf8)
            }
            if let error = Self.write(bytes, to: control) {
                failed += 1
                let reason = Self.lastAddError(mountpoint: mountpoint) ?? error
                FileHandle.standardError.write(Data("torrentfs add: \(input.prefix(80)): \(reason)\n".utf8))
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }

    /// Writes and closes; the close is where the mount accepts or refuses.
    static func write(_ bytes: [UInt8], to path: String) -> String? {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { return "cannot open \(path): \(String(cString: strerror(errno)))" }
        do {
            try PosixFile.writeAll(bytes, to: fd, path: path)
        } catch {
            close(fd)
            if case .io(_, _, let code) = error { return String(cString: strerror(code)) }
            return "\(error)"
        }
        if close(fd) != 0 { return String(cString: strerror(errno)) }
        return nil
    }

    static func lastAddError(mountpoint: String) -> String? {
        guard let data = FileManager.default.contents(atPath: mountpoint + "/.status"),
              let document = try? JSONDecoder().decode(StatusDocument.self, from: data) else { return nil }
        return document.addErrors.last?.error
    }
}

/// `torrentfs status MOUNTPOINT`: the torrents of a mount, from its `.status` file.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the torrents of a mount.")

    @Argument(help: "The mount point.")
    var mountpoint: String

    @Flag(help: "Print the raw JSON of MOUNTPOINT/.status.")
    var json = false

    @Flag(help: "On a terminal, a live full-screen view (q quits, Enter shows a torrent's peers); elsewhere, print every second.")
    var watch = false

    func run() async throws {
        if watch && !json && Terminal.isAvailable {
            _ = try Self.read(mountpoint)
            let loop = WatchLoop(title: "torrentfs status \(mountpoint)",
                                 emptyHint: "no torrents (add one: torrentfs add \(mountpoint) MAGNET)") { [mountpoint] in
                guard let document = try? JSONDecoder().decode(StatusDocument.self, from: try Self.read(mountpoint)) else {
                    throw CLIError("unreadable \(mountpoint)/.status")
                }
                return document
            }
            if case .interrupted = await loop.run(until: { try await Task.sleep(for: .seconds(1_000_000_000)) }) {
                throw ExitCode(130)
            }
            return
        }
        repeat {
            let data = try Self.read(mountpoint)
            if json {
                FileHandle.standardOutput.write(data)
            } else {
                FileHandle.standardOutput.write(Data((try Self.render(data) + "\n").utf8))
            }
            if watch { try await Task.sleep(for: .seconds(1)) }
        } while watch
    }

    static func read(_ mountpoint: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: mountpoint + "/.status") else {
            throw CLIError("cannot read \(mountpoint)/.status (is torrentfs mounted there?)")
        }
        return data
    }

    static func render(_ data: Data) throws -> String {
        guard let document = try? JSONDecoder().decode(StatusDocument.self, from: data) else {
            throw CLIError("unreadable .status")
        }
        if document.torrents.isEmpty { return "no torrents (add one: torrentfs add MOUNTPOINT MAGNET)" }
        var lines: [String] = []
        for torrent in document.torrents {
            let progress = torrent.progress * 100
            let eta = torrent.eta.map { ProgressReporter.duration($0) } ?? "-"
            let size = torrent.totalSize.map { ByteCount.format($0) } ?? "?"
            let width = 20
            let filled = Int(progress / 100 * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            lines.append(String(format: "%@  [%@] %5.1f%%  %@  ↓%@/s ↑%@/s  %d peers  ETA %@  %@",
                                torrent.folder ?? torrent.name, bar, progress, size,
                                ByteCount.format(Int64(torrent.downloadRate)), ByteCount.format(Int64(torrent.uploadRate)),
                                torrent.peers.count, eta, torrent.state.rawValue))
            if let error = torrent.error { lines.append("    error: \(error)") }
        }
        if let last = document.addErrors.last { lines.append("last refused .add: \(last.error)") }
        return lines.joined(separator: "\n")
    }
}
