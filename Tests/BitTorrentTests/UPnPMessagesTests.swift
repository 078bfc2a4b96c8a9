import Foundation
import TestSupport
import Testing

@testable import BitTorrent

@Suite("UPnP IGD messages")
struct UPnPMessagesTests {
    static func corpus(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: FuzzInputs.directory.appendingPathComponent("corpus/upnp/\(name)")))
    }

    @Test("the search asks for Internet gateway devices on the SSDP group")
    func search() {
        #expect(String(decoding: UPnPMessages.search(), as: UTF8.self)
            == "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
            + "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n\r\n")
    }

    @Test("an SSDP answer gives its LOCATION; other datagrams and non-http locations give nothing")
    func ssdp() throws {
        #expect(UPnPMessages.location(ofSSDP: try Self.corpus("ssdp-answer")) == "http://192.168.1.1:45477/rootDesc.xml")
        let lower = Array("HTTP/1.1 200 OK\nlocation:  http://10.0.0.1/desc.xml \n\n".utf8)
        #expect(UPnPMessages.location(ofSSDP: lower) == "http://10.0.0.1/desc.xml")
        #expect(UPnPMessages.location(ofSSDP: Array("M-SEARCH * HTTP/1.1\r\nLOCATION: http://a/\r\n\r\n".utf8)) == nil)
        #expect(UPnPMessages.location(ofSSDP: Array("HTTP/1.1 200 OK\r\nLOCATION: https://a/x\r\n\r\n".utf8)) == nil)
        #expect(UPnPMessages.location(ofSSDP: Array("HTTP/1.1 200 OK\r\nLOCATION: http://u@a/x\r\n\r\n".utf8)) == nil)
        #expect(UPnPMessages.location(ofSSDP: [UInt8](repeating: 0x41, count: UPnPMessages.maxSSDPLength + 1)) == nil)
    }

    @Test("the description's WAN IP connection service and its control URL, made absolute")
    func description() throws {
        let xml = try Self.corpus("description.xml")
        let service = UPnPMessages.controlService(description: xml, location: "http://192.168.86.1:45477/rootDesc.xml")
        #expect(service?.controlURL == "http://192.168.86.1:45477/ctl/IPConn")
        #expect(service?.serviceType == "urn:schemas-upnp-org:service:WANIPConnection:1")
        // A relative control URL against URLBase; a PPP-only gateway.
        let ppp = Array(("<root><URLBase>http://10.1.1.1:80/igd/</URLBase><service><serviceType>"
            + "urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType><controlURL>ppp/ctl</controlURL>"
            + "</service></root>").utf8)
        let pppService = UPnPMessages.controlService(description: ppp, location: "http://10.1.1.1:5000/d.xml")
        #expect(pppService?.controlURL == "http://10.1.1.1:80/igd/ppp/ctl")
        // Markup inside a value, or no WAN service: nothing.
        let bad = Array(("<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>"
            + "<controlURL>/a<b>c</b></controlURL></service>").utf8)
        #expect(UPnPMessages.controlService(description: bad, location: "http://10.1.1.1/d.xml") == nil)
        #expect(UPnPMessages.controlService(description: Array("<root/>".utf8), location: "http://10.1.1.1/") == nil)
    }

    @Test("SOAP: the call's envelope, and values and fault codes of answers")
    func soap() throws {
        let body = UPnPMessages.soapBody(service: "urn:schemas-upnp-org:service:WANIPConnection:1", action: "DeletePortMapping",
                                         arguments: [("NewRemoteHost", ""), ("NewExternalPort", "6881"), ("NewProtocol", "TCP")])
        #expect(body.contains("<u:DeletePortMapping xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\">"
            + "<NewRemoteHost></NewRemoteHost><NewExternalPort>6881</NewExternalPort><NewProtocol>TCP</NewProtocol>"
            + "</u:DeletePortMapping>"))
        #expect(UPnPMessages.soapBody(service: "s", action: "A", arguments: [("X", "a<b&c")]).contains("<X>a&lt;b&amp;c</X>"))
        #expect(UPnPMessages.soapAction(service: "urn:x:1", action: "AddPortMapping") == "\"urn:x:1#AddPortMapping\"")
        #expect(UPnPMessages.soapValue("NewExternalIPAddress", in: try Self.corpus("soap-address.xml")) == "11.77.86.1")
        #expect(UPnPMessages.soapValue("errorCode", in: try Self.corpus("soap-fault.xml")) == "718")
        #expect(UPnPMessages.soapValue("errorCode", in: try Self.corpus("soap-address.xml")) == nil)
    }

    @Test("http URLs: host, port, path; resolution of references")
    func urls() {
        let url = HTTPURL("http://[fe80::1]:8080/a/b.xml")
        #expect(url?.host == "fe80::1" && url?.port == 8080 && url?.path == "/a/b.xml")
        #expect(HTTPURL("http://host")?.text == "http://host:80/")
        #expect(HTTPURL("http://host:0/") == nil && HTTPURL("http://host:x/") == nil && HTTPURL("ftp://h/") == nil)
        #expect(HTTPURL("http://h:1/a/b.xml")?.resolving("c") == "http://h:1/a/c")
        #expect(HTTPURL("http://h:1/a/b.xml")?.resolving("/c") == "http://h:1/c")
        #expect(HTTPURL("http://h:1/a/b.xml")?.resolving("http://i:2/d") == "http://i:2/d")
    }

    @Test("corpus and crasher inputs stay within bounds", arguments: FuzzInputs.files("upnp"))
    func fuzzInputs(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        if let location = UPnPMessages.location(ofSSDP: bytes) { #expect(HTTPURL(location) != nil) }
        if let service = UPnPMessages.controlService(description: bytes, location: "http://192.168.1.1:5000/root.xml") {
            #expect(HTTPURL(service.controlURL)?.text == service.controlURL)
        }
        for name in ["NewExternalIPAddress", "errorCode"] {
            if let value = UPnPMessages.soapValue(name, in: bytes) { #expect(!value.isEmpty && !value.contains("<")) }
        }
    }
}
