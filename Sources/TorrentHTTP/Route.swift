import BitTorrent
import Foundation

/// What a request path asks for. Paths are decoded per segment, and a segment that could
/// step outside a torrent (`..`, `.`, empty, NUL, `/` or `\` once decoded) is refused here,
/// before anything is looked up. A value: text in, route or error out.
public enum Route: Equatable, Sendable {
    /// `/`: the index of torrents.
    case index
    /// `/t/<hash>/`: a torrent's file tree.
    case torrent(InfoHash)
    /// `/t/<hash>/<path…>`: a file, by its path inside the torrent (without its top folder).
    case file(InfoHash, [String])
    /// `/t/<hash>.m3u`: a playlist of the torrent's media files.
    case playlist(InfoHash)

    public enum Failure: Error, Equatable, Sendable {
        /// Not a path of ours (404).
        case notFound
        /// A path that tries to escape or cannot be decoded (400).
        case badPath
    }

    /// Longest request target accepted.
    public static let maxLength = 8192

    public static func parse(_ target: String) throws(Failure) -> Route {
        guard target.utf8.count <= maxLength, target.hasPrefix("/") else { throw .badPath }
        // The query is not ours to interpret.
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        if path == "/" { return .index }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard parts.first == "t", parts.count >= 2 else { throw .notFound }
        let second = parts[parts.startIndex + 1]
        if parts.count == 2 {
            guard second.hasSuffix(".m3u"), let hash = hash(second.dropLast(4)) else { throw .notFound }
            return .playlist(hash)
        }
        guard let hash = hash(second) else { throw .notFound }
        let rest = Array(parts.dropFirst(2))
        if rest == [""] { return .torrent(hash) }
        var segments: [String] = []
        for raw in rest {
            guard let decoded = String(raw).removingPercentEncoding, !decoded.isEmpty, decoded != ".",
                  decoded != "..", !decoded.contains("/"), !decoded.contains("\\"), !decoded.contains("\0") else {
                throw .badPath
            }
            segments.append(decoded)
        }
        return .file(hash, segments)
    }

    static func hash(_ text: Substring) -> InfoHash? {
        guard text.count == 40, text.allSatisfy(\.isHexDigit) else { return nil }
        return InfoHash(string: String(text))
    }

    /// A path inside a torrent as a URL path, each segment percent-encoded.
    public static func encode(_ segments: [String]) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/;?#%")
        return segments.map { $0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0 }.joined(separator: "/")
    }
}
