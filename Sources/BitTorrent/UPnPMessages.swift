/// The pieces of UPnP IGD port mapping that are bytes from the network: the SSDP search
/// and its answers, the gateway's device description, and SOAP requests and answers.
/// Each parser has limits and never trusts a size it is given; what the XML scans return
/// is plain text without markup, or nil.
public enum UPnPMessages {
    public static let ssdpGroup = "239.255.255.250"
    public static let ssdpPort = 1900
    /// Most bytes read of an SSDP answer, a device description and a SOAP answer.
    public static let maxSSDPLength = 2048
    public static let maxDescriptionLength = 64 << 10
    public static let maxSOAPLength = 16 << 10
    /// Longest URL and element text kept.
    public static let maxURLLength = 512
    public static let maxTextLength = 256
    /// The services that map ports, best first (IGD v2 and v1, PPP links too).
    public static let wanServices = [
        "urn:schemas-upnp-org:service:WANIPConnection:2",
        "urn:schemas-upnp-org:service:WANIPConnection:1",
        "urn:schemas-upnp-org:service:WANPPPConnection:1",
    ]

    // MARK: SSDP

    /// The M-SEARCH datagram asking Internet gateway devices to answer within `wait` s.
    public static func search(wait: Int = 1) -> [UInt8] {
        Array(("M-SEARCH * HTTP/1.1\r\nHOST: \(ssdpGroup):\(ssdpPort)\r\n"
            + "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nMAN: \"ssdp:discover\"\r\n"
            + "MX: \(wait)\r\n\r\n").utf8)
    }

    /// The `LOCATION` of an SSDP answer (`HTTP/1.1 200 OK`) or NOTIFY, if it is an
    /// `http://` URL within the limits.
    public static func location(ofSSDP datagram: some Collection<UInt8>) -> String? {
        guard datagram.count <= maxSSDPLength else { return nil }
        let text = String(decoding: datagram, as: UTF8.self)
        // "\r\n" is one Character in Swift.
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        guard let first = lines.first, first.hasPrefix("HTTP/1.") && first.contains(" 200") || first.hasPrefix("NOTIFY ")
        else { return nil }
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            guard line[..<colon].lowercased() == "location" else { continue }
            let value = String(line[line.index(after: colon)...]).trimmingASCIIWhitespace()
            return HTTPURL(value) != nil ? value : nil
        }
        return nil
    }

    // MARK: Device description

    /// The control URL and service type of the first WAN connection service in a device
    /// description (best type first), the URL made absolute against `URLBase` or the
    /// description's own URL.
    public static func controlService(description: some Collection<UInt8>, location: String)
        -> (controlURL: String, serviceType: String)? {
        guard description.count <= maxDescriptionLength, let base = HTTPURL(location) else { return nil }
        let xml = String(decoding: description, as: UTF8.self)
        var services: [(type: String, control: String)] = []
        var rest = xml[...]
        while let open = rest.firstRange(of: "<service>") {
            let after = rest[open.upperBound...]
            guard let close = after.firstRange(of: "</service>") else { break }
            let block = after[..<close.lowerBound]
            if let type = element("serviceType", in: block), let control = element("controlURL", in: block) {
                services.append((type, control))
            }
            rest = after[close.upperBound...]
        }
        let urlBase = element("URLBase", in: xml[...]).flatMap(HTTPURL.init) ?? base
        for wanted in wanServices {
            guard let service = services.first(where: { $0.type == wanted }),
                  let url = urlBase.resolving(service.control) else { continue }
            return (url, service.type)
        }
        return nil
    }

    // MARK: SOAP

    /// The body of a SOAP call of `action` on `service` with these arguments, in order.
    public static func soapBody(service: String, action: String, arguments: [(String, String)]) -> String {
        let args = arguments.map { "<\($0.0)>\(escaped($0.1))</\($0.0)>" }.joined()
        return "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
            + "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>"
            + "<u:\(action) xmlns:u=\"\(service)\">\(args)</u:\(action)></s:Body></s:Envelope>\r\n"
    }

    /// The `SOAPAction` header of a call.
    public static func soapAction(service: String, action: String) -> String { "\"\(service)#\(action)\"" }

    /// The text of the first `<name>` element (with or without a namespace prefix) of a SOAP
    /// answer, e.g. `NewExternalIPAddress` or `errorCode`.
    public static func soapValue(_ name: String, in answer: some Collection<UInt8>) -> String? {
        guard answer.count <= maxSOAPLength else { return nil }
        return element(name, in: String(decoding: answer, as: UTF8.self)[...])
    }

    // MARK: Helpers

    /// Text of `<name>…</name>` or `<x:name>…</x:name>`: unescaped, trimmed, no markup,
    /// at most `maxTextLength` (or `maxURLLength` for URLs) bytes; nil otherwise.
    static func element(_ name: String, in text: Substring) -> String? {
        var rest = text
        while let open = rest.firstRange(of: "<") {
            let tagStart = open.upperBound
            guard let tagEnd = rest[tagStart...].firstIndex(of: ">") else { return nil }
            let tag = rest[tagStart..<tagEnd]
            let local = tag.split(separator: ":").last.map(String.init) ?? ""
            rest = rest[rest.index(after: tagEnd)...]
            guard local == name, !tag.hasPrefix("/") else { continue }
            guard let close = rest.firstRange(of: "</") else { return nil }
            let raw = String(rest[..<close.lowerBound])
            guard !raw.contains("<") else { return nil }
            let value = unescaped(raw).trimmingASCIIWhitespace()
            let limit = name.hasSuffix("URL") || name == "URLBase" ? maxURLLength : maxTextLength
            guard !value.isEmpty, value.utf8.count <= limit,
                  value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else { return nil }
            return value
        }
        return nil
    }

    static func escaped(_ text: String) -> String {
        text.replacingAll("&", "&amp;").replacingAll("<", "&lt;").replacingAll(">", "&gt;")
    }

    static func unescaped(_ text: String) -> String {
        text.replacingAll("&lt;", "<").replacingAll("&gt;", ">").replacingAll("&quot;", "\"")
            .replacingAll("&apos;", "'").replacingAll("&amp;", "&")
    }
}

extension String {
    fileprivate func replacingAll(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var out = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound]
            out += replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
