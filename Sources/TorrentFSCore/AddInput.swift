import BitTorrent

/// One thing written to `.add`.
public enum AddItem: Sendable {
    case magnet(MagnetLink)
    /// The bytes of a .torrent file, parsed.
    case metainfo(Metainfo, bytes: [UInt8])
    /// An http(s) URL of a .torrent file (fetched when committed).
    case url(String)
    /// An absolute path of a .torrent file (read when committed).
    case path(String)
}

/// Why something written to `.add` was refused.
public struct AddError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Parsing of what is written to `.add`: the bytes of one .torrent, or text lines each
/// holding a magnet URI, a 40-hex or 32-base32 info hash, an http(s) URL or an absolute path.
public enum AddInput {
    /// Largest write accepted (a .torrent of a huge torrent is a few MiB).
    public static let maxBytes = 16 << 20

    /// Everything written, checked in full (when the file is closed).
    public static func parse(_ bytes: [UInt8]) throws(AddError) -> [AddItem] {
        guard bytes.count <= maxBytes else { throw AddError("more than \(maxBytes >> 20) MiB written") }
        if looksBencoded(bytes) {
            do {
                return [.metainfo(try Metainfo(bytes: bytes), bytes: bytes)]
            } catch {
                throw AddError("not a valid .torrent file: \(error)")
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw AddError("neither a .torrent file nor text (invalid UTF-8)")
        }
        var items: [AddItem] = []
        for (number, line) in lines(text).enumerated() where !line.isEmpty {
            items.append(try item(line, number: number + 1))
        }
        guard !items.isEmpty else { throw AddError("nothing to add (empty input)") }
        return items
    }

    /// A quick check of what was written so far, so that `echo garbage > .add` fails at
    /// the write (shells ignore errors at close). Only complete text lines are judged.
    public static func check(partial bytes: [UInt8]) throws(AddError) {
        guard bytes.count <= maxBytes else { throw AddError("more than \(maxBytes >> 20) MiB written") }
        guard !looksBencoded(bytes), let newline = bytes.lastIndex(of: UInt8(ascii: "\n")) else { return }
        guard let text = String(validating: bytes[...newline], as: UTF8.self) else {
            throw AddError("neither a .torrent file nor text (invalid UTF-8)")
        }
        for (number, line) in lines(text).enumerated() where !line.isEmpty {
            _ = try item(line, number: number + 1)
        }
    }

    /// A .torrent starts with a dictionary whose first key has a length prefix: `d8:…`.
    static func looksBencoded(_ bytes: [UInt8]) -> Bool {
        guard bytes.first == UInt8(ascii: "d") else { return false }
        var index = 1
        while index < min(bytes.count, 8), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        return index > 1 && index < bytes.count && bytes[index] == UInt8(ascii: ":")
    }

    private static func lines(_ text: String) -> [String] {
        // "\r\n" is one Character in Swift: split on both forms.
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map {
            String($0.drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
        }
    }

    private static func item(_ line: String, number: Int) throws(AddError) -> AddItem {
        let lower = line.lowercased()
        if lower.hasPrefix("magnet:") {
            do {
                return .magnet(try MagnetLink(parsing: line))
            } catch {
                throw AddError("line \(number): bad magnet link: \(error)")
            }
        }
        if let hash = InfoHash(string: line) { return .magnet(MagnetLink(infoHash: hash)) }
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            let rest = line.drop { $0 != ":" }.dropFirst(3)
            // Scalars, not Characters: a space followed by a combining mark is one Character
            // that is not " " (Fuzz/crashers/addinput/url-space-combining-mark).
            guard let host = rest.split(separator: "/", maxSplits: 1).first, !host.isEmpty,
                  !line.unicodeScalars.contains(where: { $0 == " " || $0.value < 0x20 }) else {
                throw AddError("line \(number): bad URL: \(snippet(line))")
            }
            return .url(line)
        }
        if line.hasPrefix("/") { return .path(line) }
        throw AddError("line \(number): not a magnet link, info hash, http(s) URL or absolute path: \(snippet(line))")
    }

    /// The start of a refused line, printable, for messages.
    static func snippet(_ text: String) -> String {
        let printable = String(text.unicodeScalars.prefix(60).map { $0.value >= 0x20 && $0.value != 0x7F ? Character($0) : "?" })
        return text.unicodeScalars.count > 60 ? printable + "…" : printable
    }
}
