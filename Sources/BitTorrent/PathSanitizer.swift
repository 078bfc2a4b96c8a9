/// Turns untrusted path elements from metadata into names that are safe as directory
/// entries and as file names under a torrent's folder: nothing can climb out (`..`,
/// `/`, absolute paths), hide (NUL, control and bidi/zero-width characters) or collide.
public enum PathSanitizer {
    /// Longest file name most filesystems accept, in bytes.
    public static let maxNameBytes = 255
    /// Longest extension kept when a long name is shortened.
    static let maxKeptExtensionBytes = 16
    /// Replacement for an element that sanitizes to nothing.
    public static let emptyReplacement = "_"

    /// Code points that reorder or hide text and so can disguise a name.
    static func isInvisibleOrBidi(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x2064, 0x2066...0x2069, 0xFEFF, 0x061C, 0x180E: return true
        default: return false
        }
    }

    /// One path element as text: invalid UTF-8 bytes, separators and control characters become
    /// `_`, invisible and bidi controls are removed. Returns nil for elements to drop
    /// (empty, `.` and `..`).
    public static func element(_ raw: [UInt8]) -> String? {
        var scalars = String.UnicodeScalarView()
        var decoder = UTF8()
        var iterator = raw.makeIterator()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if scalar == "/" || scalar == "\\" || scalar.value < 0x20 || scalar.value == 0x7F
                    || (0x80...0x9F).contains(scalar.value)
                {
                    scalars.append("_")
                } else if !isInvisibleOrBidi(scalar) {
                    scalars.append(scalar)
                }
            case .emptyInput: break loop
            case .error: scalars.append("_")
            }
        }
        var name = String(scalars)
        if name.isEmpty || name == "." || name == ".." { return nil }
        if name.utf8.count > maxNameBytes { name = shorten(name) }
        return name
    }

    /// Cuts a name to `maxNameBytes` on a scalar boundary, keeping a short extension. Cutting
    /// by scalar, not by character, means one huge grapheme cluster cannot swallow the name;
    /// a result that is empty, `.` or `..` becomes `_`.
    static func shorten(_ name: String) -> String {
        var stem = name
        var suffix = ""
        if let dot = name.lastIndex(of: "."), dot != name.startIndex {
            let ext = String(name[dot...])
            if ext.utf8.count <= maxKeptExtensionBytes {
                stem = String(name[..<dot])
                suffix = ext
            }
        }
        let budget = maxNameBytes - suffix.utf8.count
        var kept = String.UnicodeScalarView()
        var used = 0
        for scalar in stem.unicodeScalars {
            let size = String(scalar).utf8.count
            if used + size > budget { break }
            kept.append(scalar)
            used += size
        }
        let result = String(kept) + suffix
        return result.isEmpty || result == "." || result == ".." ? emptyReplacement : result
    }

    /// A whole path: dropped elements removed; an empty result becomes `_`.
    public static func path(_ elements: [[UInt8]]) -> [String] {
        let kept = elements.compactMap(element)
        return kept.isEmpty ? [emptyReplacement] : kept
    }

    /// `name.N.ext` for the N-th alternative of a colliding name.
    public static func alternative(_ name: String, _ n: Int) -> String {
        if let dot = name.lastIndex(of: "."), dot != name.startIndex {
            return "\(name[..<dot]).\(n)\(name[dot...])"
        }
        return "\(name).\(n)"
    }

    /// Makes every path unique and keeps files and folders from sharing a name: a file
    /// that collides with an earlier file or folder, or a folder that collides with an
    /// earlier file, is renamed `name.1.ext`, `name.2.ext`, … Order decides who keeps a name.
    /// Names compare as bytes, as Linux does: `café` in NFC and in NFD are different names
    /// (Swift's `String` equality would call them equal).
    public static func deduplicate(_ paths: [[String]]) -> [[String]] {
        func key(_ path: ArraySlice<String>) -> [[UInt8]] { path.map { Array($0.utf8) } }
        var files = Set<[[UInt8]]>()
        var folders = Set<[[UInt8]]>()
        var result: [[String]] = []
        result.reserveCapacity(paths.count)
        for original in paths {
            var path = original
            for depth in 0..<(path.count - 1) {
                if files.contains(key(path[...depth])) {
                    let name = path[depth]
                    var n = 1
                    repeat {
                        path[depth] = alternative(name, n)
                        n += 1
                    } while files.contains(key(path[...depth]))
                }
                folders.insert(key(path[...depth]))
            }
            let name = path[path.count - 1]
            var n = 1
            while files.contains(key(path[...])) || folders.contains(key(path[...])) {
                path[path.count - 1] = alternative(name, n)
                n += 1
            }
            files.insert(key(path[...]))
            result.append(path)
        }
        return result
    }
}
