import Foundation

/// A request line's target (RFC 9112 §3.2) split into the authority it names, if any, and the
/// origin-form path and query that `Route` reads. Origin form (`/t/…`) has no authority;
/// absolute form (`http://127.0.0.1:8888/t/…`), which a server must accept (§3.2.2), has one,
/// and that authority stands in for the `Host` header (it is checked by the same `HostPolicy`).
/// A value: text in, target or error out.
public struct RequestTarget: Equatable, Sendable {
    /// The absolute form's `host[:port]`; nil for the origin form.
    public var authority: String?
    /// Always starts with `/` (an absolute form without a path means `/`).
    public var path: String

    public enum Failure: Error, Equatable, Sendable {
        /// Neither form (`*`, a relative path, another scheme, userinfo, no authority): 400.
        case malformed
    }

    public static func parse(_ target: String) throws(Failure) -> RequestTarget {
        if target.hasPrefix("/") { return RequestTarget(authority: nil, path: target) }
        let scheme = "http://"
        guard target.utf8.count > scheme.utf8.count, target.prefix(scheme.count).lowercased() == scheme else {
            throw .malformed
        }
        let rest = target.dropFirst(scheme.count)
        let end = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = String(rest[..<end])
        // Userinfo is deprecated and a classic way to disguise a host (RFC 9110 §4.2.4).
        guard !authority.isEmpty, !authority.contains("@") else { throw .malformed }
        let tail = rest[end...]
        return RequestTarget(authority: authority, path: tail.hasPrefix("/") ? String(tail) : "/" + tail)
    }
}
