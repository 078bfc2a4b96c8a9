/// An `http://host[:port]/path` URL, the only kind UPnP gateways are reached by.
public struct HTTPURL: Hashable, Sendable {
    public var host: String
    public var port: Int
    public var path: String

    public init?(_ text: String) {
        guard text.utf8.count <= UPnPMessages.maxURLLength, text.lowercased().hasPrefix("http://") else { return nil }
        let rest = text.dropFirst(7)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard !authority.isEmpty, !authority.contains("@"),
              path.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else { return nil }
        let hostPart: Substring
        var port = 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let number = Int(after.dropFirst()), (1...65535).contains(number) else { return nil }
                port = number
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            guard let number = Int(authority[authority.index(after: colon)...]), (1...65535).contains(number) else { return nil }
            port = number
        } else {
            hostPart = authority
        }
        guard !hostPart.isEmpty, hostPart.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "[" && $0 != "]" })
        else { return nil }
        host = String(hostPart)
        self.port = port
        self.path = path.isEmpty ? "/" : String(path)
    }

    public var text: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "http://\(shownHost):\(port)\(path)"
    }

    /// `reference` (absolute `http://…`, or a path) against this URL.
    public func resolving(_ reference: String) -> String? {
        if reference.lowercased().hasPrefix("http://") { return HTTPURL(reference)?.text }
        var resolved = self
        if reference.hasPrefix("/") {
            resolved.path = reference
        } else {
            let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            resolved.path = folder + "/" + reference
        }
        return HTTPURL(resolved.text)?.text
    }
}
