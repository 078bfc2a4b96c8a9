import NIOCore

/// One outgoing dial over both transports: uTP goes first, TCP follows after
/// `tcpHeadStart` (or at once when uTP fails), and the first transport to connect wins;
/// the other is abandoned before it carries a byte (a pending TCP connect closed, a uTP
/// dial cancelled with a RESET, a late uTP connection closed). The dial fails only when
/// both have. Confined to the engine's loop (`@unchecked Sendable` only so the TCP
/// channel's initializer, run on that loop, can hold it).
final class DialRace: @unchecked Sendable {
    /// uTP's lead: a peer that speaks both and answers uTP within it is connected over
    /// uTP; a TCP-only peer costs this much more than a TCP-only dial would.
    static let tcpHeadStart = TimeAmount.milliseconds(25)

    enum Transport { case tcp, utp }

    private(set) var winner: Transport?
    private var failed: Set<Transport> = []
    private(set) var tcpStarted = false
    /// The TCP channel once it exists (closed if uTP wins first).
    var tcpChannel: Channel?
    /// The pending uTP dial (cancelled if TCP wins first).
    var cancelUTP: (() -> Void)?

    /// `transport` connected: true if it is the first (the dial is its), false if it lost.
    func claim(_ transport: Transport) -> Bool {
        guard winner == nil else { return false }
        winner = transport
        switch transport {
        case .tcp:
            cancelUTP?()
        case .utp:
            tcpChannel?.close(promise: nil)
        }
        cancelUTP = nil
        tcpChannel = nil
        return true
    }

    /// Marks TCP as started; false if it already was or the race is over.
    func startTCP() -> Bool {
        guard !tcpStarted, winner == nil else { return false }
        tcpStarted = true
        return true
    }

    /// `transport` did not connect: true if that ends the dial as a failure (both have
    /// failed). After a uTP failure with TCP not yet started, the caller starts TCP.
    func fail(_ transport: Transport) -> Bool {
        guard winner == nil else { return false }
        failed.insert(transport)
        if transport == .utp { cancelUTP = nil }
        return failed.count == 2
    }
}

/// First in a raced TCP channel's pipeline: when the socket connects, builds the peer
/// pipeline behind it if TCP won the race, else closes the channel unseen by the engine.
final class DialGate: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny

    private let race: DialRace
    private let setUp: (Channel) throws -> Void
    private let setUpFailed: (Error) -> Void

    init(race: DialRace, setUp: @escaping (Channel) throws -> Void, setUpFailed: @escaping (Error) -> Void) {
        self.race = race
        self.setUp = setUp
        self.setUpFailed = setUpFailed
    }

    func channelActive(context: ChannelHandlerContext) {
        guard race.claim(.tcp) else {
            context.close(promise: nil)
            return
        }
        do {
            try setUp(context.channel)
            context.fireChannelActive()
        } catch {
            context.close(promise: nil)
            setUpFailed(error)
        }
    }
}
