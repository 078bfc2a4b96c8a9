import Foundation
import TorrentEngine
#if canImport(Glibc)
import Glibc
#endif

/// A mounted torrent's own settings, changed with extended attributes on its folder
/// (`setfattr -n user.torrentfs.download_limit -v 2M DIR`) and kept with the torrent in
/// `DATA/torrents/HEX.settings` across remounts. A nil field follows the mount's options.
struct TorrentSettings: Codable, Equatable, Sendable {
    static let downloadLimitName = "user.torrentfs.download_limit"
    static let fetchAllName = "user.torrentfs.fetch_all"
    /// The attributes a torrent folder takes writes to.
    static let names = [downloadLimitName, fetchAllName]

    /// This torrent's download limit in bytes per second (nil: none of its own).
    var downloadLimit: Int?
    /// Download every file, not only what is read (nil: the mount's `fetch_all`).
    var fetchAll: Bool?

    /// The attribute's value as `getxattr` shows it.
    func value(of name: String, mountFetchAll: Bool) -> [UInt8]? {
        switch name {
        case Self.downloadLimitName: return Array("\(downloadLimit ?? 0)".utf8)
        case Self.fetchAllName: return Array(((fetchAll ?? mountFetchAll) ? "1" : "0").utf8)
        default: return nil
        }
    }

    /// Takes a value written to the attribute; nil when it is not understood (EINVAL).
    /// `download_limit`: a rate (`2M`, `512k`, bytes per second; `0` = unlimited);
    /// `fetch_all`: `1`/`0` (also `on`/`off`, `yes`/`no`, `true`/`false`).
    mutating func set(_ name: String, to raw: [UInt8]) -> Bool {
        let text = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: [" ", "\n", "\t", "\0"]).lowercased()
        switch name {
        case Self.downloadLimitName:
            guard let bytes = ByteSize.parse(text), bytes <= Int64(Int32.max) else { return false }
            downloadLimit = bytes > 0 ? Int(bytes) : nil
        case Self.fetchAllName:
            switch text {
            case "1", "on", "yes", "true": fetchAll = true
            case "0", "off", "no", "false": fetchAll = false
            default: return false
            }
        default:
            return false
        }
        return true
    }

    /// `removexattr`: back to the mount's behaviour.
    mutating func reset(_ name: String) {
        if name == Self.downloadLimitName { downloadLimit = nil }
        if name == Self.fetchAllName { fetchAll = nil }
    }
}
