import NIOCore
import NIOEmbedded
import Testing

@testable import TorrentEngine

@Suite("Raced dials: uTP with a head start, TCP behind it, the first to connect wins")
struct DialRaceTests {
    /// A handler that records whether it saw the channel become active.
    final class Probe: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = NIOAny
        var active = false
        func channelActive(context: ChannelHandlerContext) {
            active = true
            context.fireChannelActive()
        }
    }

    @Test func utpFirstClosesThePendingTCPChannelAndCancelsNothingElse() throws {
        let race = DialRace()
        var cancelled = 0
        race.cancelUTP = { cancelled += 1 }
        #expect(race.startTCP())
        let channel = EmbeddedChannel()
        race.tcpChannel = channel
        #expect(race.claim(.utp))
        channel.embeddedEventLoop.run()
        #expect(race.winner == .utp)
        #expect(throws: Never.self) { try channel.closeFuture.wait() }  // the pending TCP connect is closed
        #expect(cancelled == 0)
        #expect(!race.claim(.tcp), "a second transport to connect loses")
        #expect(!race.fail(.tcp), "the closed TCP connect is no failure of the dial")
        #expect(!race.startTCP(), "no TCP dial after the race is over")
    }

    @Test func tcpFirstCancelsTheUTPDial() {
        let race = DialRace()
        var cancelled = 0
        race.cancelUTP = { cancelled += 1 }
        #expect(race.startTCP())
        #expect(race.claim(.tcp))
        #expect(cancelled == 1)
        #expect(!race.claim(.utp))
        #expect(!race.fail(.utp))
        #expect(cancelled == 1)
    }

    @Test func theDialFailsOnlyWhenBothTransportsHave() {
        let race = DialRace()
        #expect(!race.fail(.utp), "uTP refused: TCP is still to come")
        #expect(race.startTCP())
        #expect(!race.startTCP(), "TCP starts once")
        #expect(race.fail(.tcp))
        let other = DialRace()
        #expect(other.startTCP())
        #expect(!other.fail(.tcp), "TCP refused: the uTP dial is still pending")
        #expect(other.fail(.utp))
    }

    @Test func theGateBuildsThePipelineOnlyForTheWinner() throws {
        let race = DialRace()
        let probe = Probe()
        var failures = 0
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(DialGate(race: race, setUp: { channel in
            try channel.pipeline.syncOperations.addHandler(probe)
        }, setUpFailed: { _ in failures += 1 }))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(race.winner == .tcp)
        #expect(probe.active, "the pipeline built behind the gate sees the channel become active")
        #expect(channel.isActive && failures == 0)
    }

    @Test func aLosingTCPConnectionIsClosedUnseen() throws {
        let race = DialRace()
        #expect(race.claim(.utp))
        var setUps = 0
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(DialGate(race: race, setUp: { _ in setUps += 1 },
                                                                setUpFailed: { _ in }))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(setUps == 0)
        #expect(!channel.isActive, "the loser is closed as soon as it connects")
    }

    @Test func aFailedSetUpIsReported() throws {
        struct Broken: Error {}
        let race = DialRace()
        var failures = 0
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(DialGate(race: race, setUp: { _ in throw Broken() },
                                                                setUpFailed: { _ in failures += 1 }))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(failures == 1 && !channel.isActive)
    }
}
