import BitTorrent
import Foundation
import NIOHTTP1
import TorrentEngine

/// Decides the answer to one request: the routes of `torrentfs serve` (see docs/http.md).
/// Runs off the event loop (it may wait for a magnet's metadata); the answer is written by
/// `HTTPHandler`.
struct Responder: Sendable {
    let catalog: Catalog
    let policy: HostPolicy
    let readerOptions: ReaderOptions
    /// Adds a torrent from a body in any `.add` form; nil: `POST /` is refused (403).
    let add: (@Sendable ([UInt8]) async throws -> Void)?

    enum Answer {
        case simple(HTTPResponseStatus, HTTPHeaders, [UInt8])
        /// A file body: head, then the parts streamed through the reader.
        case file(HTTPResponseStatus, HTTPHeaders, TorrentReader, [FilePart])
    }

    enum FilePart {
        case bytes([UInt8])
        case range(Range<Int64>)
    }

    /// The checks every request passes before its route is read: one `Host` (RFC 9112 §3.2),
    /// a target in origin or absolute form, the DNS-rebinding rule on both the `Host` header
    /// and an absolute form's authority (which names the host when present, §3.2.2).
    enum Resolution {
        case refused(Answer)
        /// `base` is `http://` and the host the client named, for absolute URLs.
        case route(Route, base: String)
    }

    func resolve(_ head: HTTPRequestHead) -> Resolution {
        let hosts = head.headers["Host"]
        if hosts.count > 1 { return .refused(text(.badRequest, "several Host headers")) }
        if hosts.isEmpty && (head.version.major, head.version.minor) >= (1, 1) {
            return .refused(text(.badRequest, "no Host header"))
        }
        let target: RequestTarget
        do {
            target = try RequestTarget.parse(head.uri)
        } catch {
            return .refused(text(.badRequest, "bad request target"))
        }
        // A Host header naming a foreign host is refused even when an absolute form names an
        // allowed one: the rule stays "a foreign name in Host is 403" for every request.
        let host = target.authority ?? hosts.first
        guard policy.allows(host), hosts.first.map(policy.allows) ?? true else {
            return .refused(text(.forbidden, "forbidden host"))
        }
        do {
            return .route(try Route.parse(target.path), base: "http://" + (host ?? "localhost"))
        } catch .badPath {
            return .refused(text(.badRequest, "bad path"))
        } catch {
            return .refused(text(.notFound, "not found"))
        }
    }

    /// Whether the request's body is read before answering: only a `POST /` that may add a
    /// torrent. Every other request is answered without its body (a refused upload gets its
    /// 403 as soon as its head is in).
    func needsBody(_ head: HTTPRequestHead) -> Bool {
        guard add != nil, head.method == .POST, case .route(.index, _) = resolve(head) else { return false }
        return true
    }

    func answer(_ head: HTTPRequestHead, body: [UInt8]) async -> Answer {
        let route: Route
        let base: String
        switch resolve(head) {
        case .refused(let answer): return answer
        case .route(let resolved, let resolvedBase): (route, base) = (resolved, resolvedBase)
        }
        let json = head.headers["Accept"].contains { $0.lowercased().contains("application/json") }
        switch (head.method, route) {
        case (.POST, .index):
            return await post(body)
        case (.GET, _), (.HEAD, _):
            break
        default:
            var headers = HTTPHeaders([("Allow", route == .index ? "GET, HEAD, POST" : "GET, HEAD")])
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            return .simple(.methodNotAllowed, headers, Array("method not allowed\n".utf8))
        }
        switch route {
        case .index:
            let entries = await catalog.index(base: base)
            if json { return encoded(entries) }
            return html("torrents", entries.map { entry in
                "<li>\(Self.escape(entry.name)) <a href=\"/t/\(entry.infoHash)/\">files</a> "
                    + "<a href=\"/t/\(entry.infoHash).m3u\">playlist</a> \(Int(entry.progress * 100))%</li>"
            })
        case .torrent(let hash):
            guard let metainfo = await metainfo(hash) else { return await missing(hash) }
            let files = Catalog.files(of: metainfo.info)
            if json {
                return encoded(files.map {
                    Catalog.IndexEntry.FileEntry(path: $0.path.joined(separator: "/"), size: $0.file.length,
                                                 url: base + Catalog.url(hash, $0.path))
                })
            }
            return html(metainfo.info.name, files.map {
                "<li><a href=\"\(Catalog.url(hash, $0.path))\">\(Self.escape($0.path.joined(separator: "/")))</a> \($0.file.length)</li>"
            })
        case .playlist(let hash):
            guard let metainfo = await metainfo(hash) else { return await missing(hash) }
            var lines = ["#EXTM3U"]
            for file in Catalog.files(of: metainfo.info) where MediaType.isMedia(file.name) {
                lines.append("#EXTINF:-1,\(file.path.joined(separator: "/"))")
                lines.append(base + Catalog.url(hash, file.path))
            }
            let headers = HTTPHeaders([("Content-Type", "audio/mpegurl")])
            return .simple(.ok, headers, Array((lines.joined(separator: "\n") + "\n").utf8))
        case .file(let hash, let path):
            guard let metainfo = await metainfo(hash) else { return await missing(hash) }
            guard let file = Catalog.files(of: metainfo.info).first(where: { $0.path == path }) else {
                return text(.notFound, "no such file in \(hash.hex)")
            }
            return fileAnswer(head, hash: hash, info: metainfo.info, file: file)
        }
    }

    private func fileAnswer(_ head: HTTPRequestHead, hash: InfoHash, info: InfoDictionary, file: Catalog.File) -> Answer {
        let size = file.file.length
        let etag = "\"\(hash.hex)-\(file.index)\""
        let type = MediaType.of(file.name)
        var ranges = ByteRanges.parse(head.headers["Range"].first, size: size)
        // If-Range with anything but our (never changing) tag: the whole entity.
        if let ifRange = head.headers["If-Range"].first, ifRange != etag { ranges = .whole }
        var headers = HTTPHeaders([("Accept-Ranges", "bytes"), ("ETag", etag)])
        let status: HTTPResponseStatus
        var parts: [FilePart]
        switch ranges {
        case .unsatisfiable:
            headers.add(name: "Content-Range", value: "bytes */\(size)")
            return .simple(.rangeNotSatisfiable, headers, [])
        case .whole:
            status = .ok
            headers.add(name: "Content-Type", value: type)
            parts = [.range(0..<size)]
        case .partial(let list) where list.count == 1:
            status = .partialContent
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Range", value: "bytes \(list[0].lowerBound)-\(list[0].upperBound - 1)/\(size)")
            parts = [.range(list[0])]
        case .partial(let list):
            status = .partialContent
            let boundary = Self.multipartBoundary()
            headers.add(name: "Content-Type", value: "multipart/byteranges; boundary=\(boundary)")
            parts = []
            for range in list {
                let header = "--\(boundary)\r\nContent-Type: \(type)\r\n"
                    + "Content-Range: bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)\r\n\r\n"
                parts.append(.bytes(Array(header.utf8)))
                parts.append(.range(range))
                parts.append(.bytes(Array("\r\n".utf8)))
            }
            parts.append(.bytes(Array("--\(boundary)--\r\n".utf8)))
        }
        parts.removeAll { if case .range(let range) = $0 { return range.isEmpty } else { return false } }
        let length = parts.reduce(Int64(0)) { total, part in
            switch part {
            case .bytes(let bytes): return total + Int64(bytes.count)
            case .range(let range): return total + Int64(range.count)
            }
        }
        headers.add(name: "Content-Length", value: "\(length)")
        let reader = catalog.session.openReader(hash, info: info, fileIndex: file.index, options: readerOptions)
        // A paused torrent (full disk) fetches nothing: a body it cannot complete is a 503
        // now, not a connection that stalls until the read times out.
        if let reason = reader.pausedReason, !isVerified(parts, hash: hash, file: file) {
            reader.close()
            return .simple(.serviceUnavailable, HTTPHeaders([("Retry-After", "30"), ("Content-Type", "text/plain; charset=utf-8")]),
                           Array("torrent paused: \(reason)\n".utf8))
        }
        return .file(status, headers, reader, parts)
    }

    /// A random boundary of a fixed length (`Self.boundaryLength` hex digits), so that the
    /// length of a multipart body, sent in `Content-Length`, is the same for a HEAD and a GET.
    static func multipartBoundary() -> String {
        let digits = String(UInt64.random(in: .min ... .max), radix: 16)
        return String(repeating: "0", count: boundaryLength - digits.count) + digits
    }

    /// Hex digits of a multipart boundary (a UInt64's worth).
    static let boundaryLength = 16

    private func isVerified(_ parts: [FilePart], hash: InfoHash, file: Catalog.File) -> Bool {
        parts.allSatisfy { part in
            guard case .range(let range) = part else { return true }
            let absolute = (file.file.offset + range.lowerBound)..<(file.file.offset + range.upperBound)
            return catalog.session.verifiedBytes(hash, in: absolute) == Int64(range.count)
        }
    }

    private func metainfo(_ hash: InfoHash) async -> Metainfo? { await catalog.metainfo(hash) }

    /// An unknown torrent is 404; a known one whose metadata did not come in time is 504.
    private func missing(_ hash: InfoHash) async -> Answer {
        guard await catalog.has(hash) else { return text(.notFound, "no torrent \(hash.hex)") }
        return text(.gatewayTimeout, "the metadata of \(hash.hex) did not arrive in time")
    }

    private func post(_ body: [UInt8]) async -> Answer {
        guard let add else { return text(.forbidden, "adding torrents over HTTP is off") }
        do {
            try await add(body)
            return text(.created, "added")
        } catch {
            return text(.badRequest, "\(error)")
        }
    }

    func text(_ status: HTTPResponseStatus, _ message: String) -> Answer {
        .simple(status, HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")]), Array((message + "\n").utf8))
    }

    private func encoded<T: Encodable>(_ value: T) -> Answer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let bytes = (try? encoder.encode(value)).map { Array($0) } ?? Array("[]".utf8)
        return .simple(.ok, HTTPHeaders([("Content-Type", "application/json")]), bytes + [UInt8(ascii: "\n")])
    }

    private func html(_ title: String, _ items: [String]) -> Answer {
        let page = "<!doctype html><meta charset=utf-8><title>\(Self.escape(title))</title>"
            + "<h1>\(Self.escape(title))</h1><ul>\n" + items.joined(separator: "\n") + "\n</ul>\n"
        return .simple(.ok, HTTPHeaders([("Content-Type", "text/html; charset=utf-8")]), Array(page.utf8))
    }

    /// Names come from torrents: escaped before they reach a page.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
