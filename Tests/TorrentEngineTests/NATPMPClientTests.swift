import BitTorrent
import Testing
@testable import TorrentEngine

@Suite("NAT-PMP client")
struct NATPMPClientTests {
    static let ms: Int64 = 1_000_000
    static let port: UInt16 = 6881

    static func mapped(_ transport: NATPMPMessage.Transport, external: UInt16, lifetime: UInt32,
                       result: UInt16 = 0, internalPort: UInt16 = port) -> [UInt8] {
        NATPMPMessage.Response.mapping(transport: transport, result: result, epoch: 1, internalPort: internalPort,
                                       externalPort: external, lifetime: lifetime).encoded
    }

    static func sent(_ events: [NATPMPClient.Event]) -> [[UInt8]] {
        events.compactMap { if case .send(let bytes) = $0 { return bytes } else { return nil } }
    }

    @Test("asks for the address and both mappings, and reports the answers")
    func mapping() {
        var client = NATPMPClient(internalPort: Self.port, lifetime: 3600)
        #expect(Self.sent(client.start(now: 0)) == [
            NATPMPMessage.externalAddressRequest,
            NATPMPMessage.mappingRequest(.udp, internalPort: 6881, suggestedExternalPort: 6881, lifetime: 3600),
            NATPMPMessage.mappingRequest(.tcp, internalPort: 6881, suggestedExternalPort: 6881, lifetime: 3600),
        ])
        let address = NATPMPMessage.Response.externalAddress(result: 0, epoch: 1, address: [11, 77, 0, 1]).encoded
        #expect(client.received(address, now: 10 * Self.ms) == [.externalAddress("11.77.0.1")])
        #expect(client.received(Self.mapped(.tcp, external: 7000, lifetime: 3600), now: 10 * Self.ms)
            == [.mapped(.tcp, externalPort: 7000, lifetime: 3600, renewal: false)])
        // An answer for another port, or a second answer, is not ours.
        #expect(client.received(Self.mapped(.udp, external: 7000, lifetime: 3600, internalPort: 1), now: 11 * Self.ms).isEmpty)
        #expect(client.received(Self.mapped(.udp, external: 7001, lifetime: 3600), now: 12 * Self.ms)
            == [.mapped(.udp, externalPort: 7001, lifetime: 3600, renewal: false)])
        #expect(client.received(Self.mapped(.udp, external: 7001, lifetime: 3600), now: 13 * Self.ms).isEmpty)
        #expect(client.pending.isEmpty)
        #expect(client.externalAddress == "11.77.0.1")
    }

    @Test("retransmits at 250 ms, doubling, then gives up after 4 tries")
    func retransmission() {
        var client = NATPMPClient(internalPort: Self.port)
        _ = client.start(now: 0)
        var sends: [Int64] = []
        var failure: String?
        var now: Int64 = 0
        while now <= 5000 * Self.ms, failure == nil {
            for event in client.tick(now: now) {
                if case .send = event { sends.append(now / Self.ms) }
                if case .failed(let reason) = event { failure = reason }
            }
            now += Self.ms
        }
        // Three requests per try: at 250, 750 and 1750 ms; nothing answers by 3750 ms.
        #expect(sends == [250, 250, 250, 750, 750, 750, 1750, 1750, 1750])
        #expect(failure != nil && now / Self.ms == 3751)
        #expect(client.failed && client.isFinished && client.nextTimeout == nil)
    }

    @Test("a refusal fails NAT-PMP")
    func refused() {
        var client = NATPMPClient(internalPort: Self.port)
        _ = client.start(now: 0)
        let events = client.received(Self.mapped(.tcp, external: 0, lifetime: 0, result: NATPMPMessage.ResultCode.notAuthorized),
                                     now: 0)
        #expect(events.count == 1)
        if case .failed = events.first {} else { Issue.record("expected a failure, got \(events)") }
        #expect(client.failed)
    }

    @Test("mappings are renewed halfway through the lifetime the gateway granted")
    func renewal() {
        var client = NATPMPClient(internalPort: Self.port, lifetime: 3600)
        _ = client.start(now: 0)
        _ = client.received(Self.mapped(.udp, external: 6881, lifetime: 4), now: 0)
        _ = client.received(Self.mapped(.tcp, external: 6881, lifetime: 4), now: 0)
        #expect(client.nextTimeout == 250 * Self.ms)  // the address request, unanswered
        _ = client.received(NATPMPMessage.Response.externalAddress(result: 0, epoch: 1, address: [1, 2, 3, 4]).encoded, now: 0)
        #expect(client.nextTimeout == 2000 * Self.ms)
        #expect(client.tick(now: 1999 * Self.ms).isEmpty)
        #expect(Self.sent(client.tick(now: 2000 * Self.ms)) == [
            NATPMPMessage.mappingRequest(.udp, internalPort: 6881, suggestedExternalPort: 6881, lifetime: 3600),
            NATPMPMessage.mappingRequest(.tcp, internalPort: 6881, suggestedExternalPort: 6881, lifetime: 3600),
        ])
        // While the renewals are under way, the next thing to do is their retry.
        #expect(client.nextTimeout == 2250 * Self.ms)
        #expect(client.received(Self.mapped(.tcp, external: 6881, lifetime: 4), now: 2010 * Self.ms)
            == [.mapped(.tcp, externalPort: 6881, lifetime: 4, renewal: true)])
    }

    @Test("stop deletes what was mapped and finishes when the gateway confirms")
    func stop() {
        var client = NATPMPClient(internalPort: Self.port)
        _ = client.start(now: 0)
        _ = client.received(Self.mapped(.tcp, external: 7000, lifetime: 7200), now: 0)
        #expect(Self.sent(client.stop(now: 100 * Self.ms))
            == [NATPMPMessage.mappingRequest(.tcp, internalPort: 6881, suggestedExternalPort: 0, lifetime: 0)])
        #expect(!client.isFinished)
        #expect(client.received(Self.mapped(.tcp, external: 0, lifetime: 0), now: 110 * Self.ms) == [.unmapped(.tcp)])
        #expect(client.isFinished && client.mappings.isEmpty)
    }

    @Test("a deletion nobody confirms ends after its tries, without a failure")
    func stopUnanswered() {
        var client = NATPMPClient(internalPort: Self.port)
        _ = client.start(now: 0)
        _ = client.received(Self.mapped(.udp, external: 7000, lifetime: 7200), now: 0)
        _ = client.stop(now: 0)
        var events: [NATPMPClient.Event] = []
        for ms in stride(from: Int64(0), through: 4000, by: 50) { events += client.tick(now: ms * Self.ms) }
        #expect(events.allSatisfy { if case .send = $0 { true } else { false } })
        #expect(client.isFinished && !client.failed)
    }

    @Test("the default gateway comes from the kernel's route table")
    func defaultGateway() {
        let table = """
        Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
        eth1\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
        eth0\t00000000\t014DA8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
        eth0\t004DA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
        """
        #expect(DefaultGateway.parse(table) == "192.168.77.1")
        #expect(DefaultGateway.parse("Iface\tDestination\tGateway\n") == nil)
    }
}
