import BitTorrent
import Foundation
import TorrentEngine
#if canImport(Glibc)
import Glibc
#endif

/// What is mounted, kept in `DATA/torrents`: `HEX.torrent` once the metadata is known,
/// `HEX.magnet` (the magnet URI) before, and `HEX.settings` for a torrent whose extended
/// attributes were set. Every write is atomic.
struct Library: Sendable {
    let directory: String

    func saveTorrent(_ bytes: [UInt8], for hash: InfoHash) throws {
        try PosixFile.makeDirectories(directory)
        try ResumeData.writeAtomically(bytes, to: path(hash, "torrent"))
        unlink(path(hash, "magnet"))
    }

    func saveMagnet(_ magnet: MagnetLink) throws {
        try PosixFile.makeDirectories(directory)
        try ResumeData.writeAtomically(Array((magnet.uri + "\n").utf8), to: path(magnet.infoHash, "magnet"))
    }

    func remove(_ hash: InfoHash) {
        unlink(path(hash, "torrent"))
        unlink(path(hash, "magnet"))
        unlink(path(hash, "settings"))
    }

    /// The torrent's own settings (`HEX.settings`, JSON); nil when it has none or the file
    /// cannot be read.
    func settings(_ hash: InfoHash) -> TorrentSettings? {
        guard let bytes = try? PosixFile.read(path(hash, "settings"), limit: 4096) else { return nil }
        return try? JSONDecoder().decode(TorrentSettings.self, from: Data(bytes))
    }

    func saveSettings(_ settings: TorrentSettings, for hash: InfoHash) throws {
        try PosixFile.makeDirectories(directory)
        try ResumeData.writeAtomically(Array(try JSONEncoder().encode(settings)), to: path(hash, "settings"))
    }

    private func path(_ hash: InfoHash, _ suffix: String) -> String { directory + "/" + hash.hex + "." + suffix }

    /// Every saved torrent (a .torrent wins over a .magnet of the same hash), in info hash
    /// order, plus a message for each file that could not be read.
    func load() -> (sources: [TorrentSource], errors: [String]) {
        guard let names = Library.list(directory) else { return ([], []) }
        var torrents: [InfoHash: TorrentSource] = [:]
        var errors: [String] = []
        for name in names.sorted() where name.hasSuffix(".torrent") || name.hasSuffix(".magnet") {
            let full = directory + "/" + name
            let bytes: [UInt8]
            do {
                bytes = try PosixFile.read(full, limit: AddInput.maxBytes)
            } catch {
                errors.append("\(error)")
                continue
            }
            if name.hasSuffix(".torrent") {
                do {
                    let metainfo = try Metainfo(bytes: bytes)
                    torrents[metainfo.infoHash] = .metainfo(metainfo)
                } catch {
                    errors.append("\(full): \(error)")
                }
            } else {
                do {
                    let magnet = try MagnetLink(parsing: String(decoding: bytes, as: UTF8.self)
                        .trimmingCharacters(in: [" ", "\n", "\r", "\t"]))
                    if torrents[magnet.infoHash] == nil { torrents[magnet.infoHash] = .magnet(magnet) }
                } catch {
                    errors.append("\(full): \(error)")
                }
            }
        }
        return (torrents.keys.sorted().map { torrents[$0]! }, errors)
    }

    /// The names in a folder (nil if it cannot be read).
    static func list(_ directory: String) -> [String]? {
        guard let dir = opendir(directory) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// A .torrent for metadata fetched from peers: the verified info dictionary, verbatim,
    /// with the trackers we know.
    static func torrentBytes(_ metainfo: Metainfo) -> [UInt8] {
        var out = Array("d".utf8)
        let tiers = metainfo.trackerTiers
        if !tiers.isEmpty {
            out += Array("13:announce-list".utf8)
            out += Bencode.encode(.list(tiers.map { .list($0.map { BValue.string($0) }) }))
        }
        out += Array("4:info".utf8)
        out += metainfo.infoBytes
        if !metainfo.webSeeds.isEmpty {
            out += Array("8:url-list".utf8)
            out += Bencode.encode(.list(metainfo.webSeeds.map { BValue.string($0) }))
        }
        out += Array("e".utf8)
        return out
    }
}
