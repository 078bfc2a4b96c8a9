import Foundation

/// Which `Host` headers are answered (DNS rebinding: a web page must not reach the server
/// through a name of its own that resolves to 127.0.0.1). IP literals are always accepted,
/// names only when they are `localhost` or given with `--http-host`.
public struct HostPolicy: Sendable, Equatable {
    public var names: Set<String>

    public init(extraNames: [String] = []) {
        names = Set(["localhost"] + extraNames.map { $0.lowercased() })
    }

    public func allows(_ host: String?) -> Bool {
        guard let host, !host.isEmpty, let name = Self.hostPart(host)?.lowercased() else { return false }
        if Self.isIPLiteral(name) { return true }
        return names.contains(name.hasSuffix(".") ? String(name.dropLast()) : name)
    }

    /// `name:port`, `[v6]:port`, `name` → the host alone (brackets dropped); nil when it
    /// is neither (an IPv6 literal must be bracketed: `1.2.3.4:5:6` is no host).
    static func hostPart(_ host: String) -> String? {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            let rest = host[host.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isNumber)) else { return nil }
            return String(host[host.index(after: host.startIndex)..<close])
        }
        let colons = host.filter { $0 == ":" }.count
        if colons > 1 { return nil }
        if colons == 1, let colon = host.firstIndex(of: ":") {
            guard host[host.index(after: colon)...].allSatisfy(\.isNumber) else { return nil }
            return String(host[..<colon])
        }
        return host
    }

    static func isIPLiteral(_ host: String) -> Bool {
        IPAddressText.isIPv4(host) || IPAddressText.isIPv6(host)
    }
}

/// Dotted-quad and colon-hex literals, checked without resolving anything.
enum IPAddressText {
    static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isNumber) && (Int(part) ?? 256) <= 255
        }
    }

    static func isIPv6(_ text: String) -> Bool {
        guard text.contains(":"), text.count <= 45 else { return false }
        return text.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } && text.components(separatedBy: "::").count <= 2
    }
}
