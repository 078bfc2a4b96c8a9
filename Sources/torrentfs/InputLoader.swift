import BitTorrent
import Foundation

/// What a user can name on the command line as a torrent.
enum TorrentInput {
    case metainfo(Metainfo)
    case magnet(MagnetLink)

    /// A magnet URI, a bare info hash (40 hex or 32 base32), or the path of a .torrent file.
    static func load(_ argument: String) throws -> TorrentInput {
        if argument.lowercased().hasPrefix("magnet:") {
            do {
                return .magnet(try MagnetLink(parsing: argument))
            } catch {
                throw CLIError("\(error)")
            }
        }
        if !FileManager.default.fileExists(atPath: argument), let hash = InfoHash(string: argument) {
            return .magnet(MagnetLink(infoHash: hash))
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: argument))
        } catch {
            throw CLIError("cannot read \(argument): \(Self.reason(error))")
        }
        do {
            return .metainfo(try Metainfo(bytes: [UInt8](data)))
        } catch {
            throw CLIError("\(argument): \(error)")
        }
    }

    private static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileReadNoSuchFileError {
            return "no such file"
        }
        return nsError.localizedDescription
    }
}
