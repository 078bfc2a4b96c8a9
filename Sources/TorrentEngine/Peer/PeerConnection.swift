import BitTorrent
import NIOCore

/// One peer connection as the engine sees it. Lives on the engine's event loop.
/// Confined to the engine's event loop (`@unchecked Sendable` for hops back to it).
final class PeerConnection: @unchecked Sendable {
    /// A peer that sent no block for this long (nanoseconds) while we waited is snubbed.
    static let snubTimeout: Int64 = 60_000_000_000
    let id: Int
    let transport: PeerTransport
    let incoming: Bool
    /// Address we dialed, or the remote address of an accepted connection.
    var address: PeerAddress
    /// Where the peer accepts connections (from the extension handshake `p` for incoming).
    var listenAddress: PeerAddress?
    weak var torrent: Torrent?
    var session: PeerSession?
    var remotePeerID: PeerID?
    var client: String?
    var closeReason: DisconnectReason?
    var isClosed = false
    var pendingWrites = false
    var downloadMeter = RateMeter()
    var uploadMeter = RateMeter()
    /// Metadata piece requests we sent and have not had answered.
    var metadataRequests = 0
    /// Upload requests waiting for the rate limit.
    var throttledUploads: [BlockRange] = []
    let connectedAt = Engine.now()
    var lastBlockAt: Int64 = 0
    /// How many requests to keep outstanding with this peer.
    var requestDepth = RequestDepth()

    init(id: Int, transport: PeerTransport, incoming: Bool, address: PeerAddress) {
        self.id = id
        self.transport = transport
        self.incoming = incoming
        self.address = address
    }

    func send(_ message: PeerMessage) {
        guard !isClosed else { return }
        var buffer = transport.allocator.buffer(capacity: 32)
        switch message {
        case .piece(let piece, let begin, let block):
            buffer.reserveCapacity(13 + block.count)
            buffer.writeInteger(UInt32(9 + block.count))
            buffer.writeInteger(PeerMessage.ID.piece.rawValue)
            buffer.writeInteger(UInt32(piece))
            buffer.writeInteger(UInt32(begin))
            buffer.writeBytes(block)
        default:
            buffer.writeBytes(message.encoded)
        }
        transport.write(buffer)
        pendingWrites = true
    }

    func sendRaw(_ bytes: [UInt8]) {
        guard !isClosed else { return }
        transport.write(transport.allocator.buffer(bytes: bytes))
        pendingWrites = true
    }

    func flush() {
        guard pendingWrites else { return }
        pendingWrites = false
        transport.flush()
    }

    func close(_ reason: DisconnectReason) {
        guard !isClosed else { return }
        closeReason = closeReason ?? reason
        flush()
        transport.close()
    }

    /// The address other peers can reach this one at, for PEX.
    var reachableAddress: PeerAddress? { incoming ? listenAddress : address }
}
