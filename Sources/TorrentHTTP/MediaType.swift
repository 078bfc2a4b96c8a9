/// `Content-Type` from a file name's extension (what players and browsers need to know).
public enum MediaType {
    static let byExtension: [String: String] = [
        "mp4": "video/mp4", "m4v": "video/mp4", "mkv": "video/x-matroska", "webm": "video/webm",
        "avi": "video/x-msvideo", "mov": "video/quicktime", "mpg": "video/mpeg", "mpeg": "video/mpeg",
        "ts": "video/mp2t", "ogv": "video/ogg", "wmv": "video/x-ms-wmv", "flv": "video/x-flv",
        "mp3": "audio/mpeg", "m4a": "audio/mp4", "aac": "audio/aac", "flac": "audio/flac",
        "ogg": "audio/ogg", "oga": "audio/ogg", "opus": "audio/ogg", "wav": "audio/wav", "wma": "audio/x-ms-wma",
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
        "svg": "image/svg+xml", "txt": "text/plain; charset=utf-8", "nfo": "text/plain; charset=utf-8",
        "md": "text/markdown; charset=utf-8", "srt": "application/x-subrip", "vtt": "text/vtt",
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "css": "text/css",
        "js": "text/javascript", "json": "application/json", "pdf": "application/pdf", "epub": "application/epub+zip",
        "zip": "application/zip", "gz": "application/gzip", "tar": "application/x-tar", "7z": "application/x-7z-compressed",
        "iso": "application/x-iso9660-image", "torrent": "application/x-bittorrent",
    ]

    public static func of(_ name: String) -> String {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "application/octet-stream" }
        return byExtension[name[name.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }

    /// Audio and video, for playlists.
    public static func isMedia(_ name: String) -> Bool {
        let type = of(name)
        return type.hasPrefix("video/") || type.hasPrefix("audio/")
    }
}
