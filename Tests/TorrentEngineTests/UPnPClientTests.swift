import BitTorrent
import Testing
@testable import TorrentEngine

@Suite("UPnP client")
struct UPnPClientTests {
    static let second: Int64 = 1_000_000_000
    static let location = "http://192.168.86.1:5000/rootDesc.xml"
    static let control = "http://192.168.86.1:5000/ctl/IPConn"
    static let description = Array(("<root><device><serviceList><service><serviceType>"
        + "urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl/IPConn</controlURL>"
        + "</service></serviceList></device></root>").utf8)
    static let ssdp = Array("HTTP/1.1 200 OK\r\nLOCATION: \(location)\r\n\r\n".utf8)

    /// The SOAP action name of a call, and its body.
    static func soap(_ actions: [UPnPClient.Action]) -> [(action: String, body: String)] {
        actions.compactMap {
            guard case .soap(let url, let soapAction, let body) = $0, url == control else { return nil }
            return (String(soapAction.split(separator: "#").last!.dropLast()), body)
        }
    }

    /// A client that found the gateway and asked for its address.
    static func described() -> UPnPClient {
        var client = UPnPClient(internalPort: 6881, lease: 60)
        _ = client.start(now: 0)
        _ = client.ssdpReceived(ssdp, from: "192.168.86.1")
        _ = client.described(location: location, status: 200, body: description, localAddress: "192.168.86.2")
        return client
    }

    @Test("search, description, address, then TCP and UDP mappings, one call at a time")
    func mapping() {
        var client = UPnPClient(internalPort: 6881, lease: 60)
        #expect(client.start(now: 0) == [.search(UPnPMessages.search())])
        // An answer whose description lives elsewhere than its sender is not followed.
        #expect(client.ssdpReceived(Self.ssdp, from: "192.168.86.99").isEmpty)
        #expect(client.ssdpReceived(Self.ssdp, from: "192.168.86.1") == [.fetch(Self.location)])
        let first = client.described(location: Self.location, status: 200, body: Self.description, localAddress: "192.168.86.2")
        #expect(Self.soap(first).map(\.action) == ["GetExternalIPAddress"])
        let address = Array("<NewExternalIPAddress>11.77.86.1</NewExternalIPAddress>".utf8)
        let second = client.answered(status: 200, body: address, now: 0)
        #expect(second.first == .externalAddress("11.77.86.1"))
        let add = Self.soap(second)
        #expect(add.map(\.action) == ["AddPortMapping"])
        #expect(add[0].body.contains("<NewExternalPort>6881</NewExternalPort><NewProtocol>TCP</NewProtocol>"
            + "<NewInternalPort>6881</NewInternalPort><NewInternalClient>192.168.86.2</NewInternalClient>"
            + "<NewEnabled>1</NewEnabled><NewPortMappingDescription>torrentfs</NewPortMappingDescription>"
            + "<NewLeaseDuration>60</NewLeaseDuration>"))
        let third = client.answered(status: 200, body: [], now: 0)
        #expect(third.first == .mapped(.tcp, externalPort: 6881, lease: 60, renewal: false))
        #expect(Self.soap(third).first?.body.contains("<NewProtocol>UDP</NewProtocol>") == true)
        #expect(client.answered(status: 200, body: [], now: Self.second) == [.mapped(.udp, externalPort: 6881, lease: 60, renewal: false)])
        #expect(client.step == .mapped && client.nextTimeout == 31 * Self.second)
    }

    @Test("renewal re-adds both mappings halfway through the lease")
    func renewal() {
        var client = Self.described()
        _ = client.answered(status: 200, body: [], now: 0)
        _ = client.answered(status: 200, body: [], now: 0)
        _ = client.answered(status: 200, body: [], now: 0)
        #expect(client.tick(now: 29 * Self.second).isEmpty)
        #expect(Self.soap(client.tick(now: 30 * Self.second)).map(\.action) == ["AddPortMapping"])
        #expect(client.answered(status: 200, body: [], now: 30 * Self.second).first
            == .mapped(.tcp, externalPort: 6881, lease: 60, renewal: true))
    }

    @Test("stop deletes TCP then UDP and finishes")
    func stop() {
        var client = Self.described()
        for _ in 0..<3 { _ = client.answered(status: 200, body: [], now: 0) }
        let delete = Self.soap(client.stop())
        #expect(delete.map(\.action) == ["DeletePortMapping"] && delete[0].body.contains("<NewProtocol>TCP</NewProtocol>"))
        let next = client.answered(status: 200, body: [], now: 0)
        #expect(next.first == .unmapped(.tcp) && Self.soap(next).first?.body.contains("<NewProtocol>UDP</NewProtocol>") == true)
        #expect(client.answered(status: 200, body: [], now: 0) == [.unmapped(.udp)])
        #expect(client.isFinished && client.mapped.isEmpty)
    }

    @Test("no gateway: three searches a second apart, then a failure")
    func noGateway() {
        var client = UPnPClient(internalPort: 6881, lease: 60)
        var actions = client.start(now: 0)
        for ms in stride(from: Int64(0), through: 3000, by: 100) { actions += client.tick(now: ms * 1_000_000) }
        #expect(actions.filter { if case .search = $0 { true } else { false } }.count == 3)
        #expect(actions.last.map { if case .failed = $0 { true } else { false } } == true)
        #expect(client.isFinished && client.stop().isEmpty)
    }

    @Test("a refused mapping (UPnP error) fails, saying why")
    func refused() {
        var client = Self.described()
        _ = client.answered(status: 200, body: [], now: 0)
        let fault = Array("<s:Fault><detail><UPnPError><errorCode>718</errorCode></UPnPError></detail></s:Fault>".utf8)
        #expect(client.answered(status: 500, body: fault, now: 0)
            == [.failed("the gateway refused the tcp mapping: HTTP 500 (UPnP error 718)")])
    }
}
