import BitTorrent
import Foundation
import Logging
import NIOCore
import Synchronization
import TestSupport
import Testing
@testable import TorrentEngine

/// A torrent driven by fake peers: no sockets, no timer. The peer is a `PeerConnection`
/// over a transport that records what we write; its messages are handed to the engine as
/// the wire decoder would. Storage is in memory, injected through the configuration.
@Suite("Torrent driven by fake peers")
struct FakePeerTests {
    /// Records what the torrent writes; closing tells the engine, as a closed channel would.
    final class FakeTransport: PeerTransport {
        let allocator = ByteBufferAllocator()
        var remoteAddress: SocketAddress? { nil }
        var written: [UInt8] = []
        var closed = false
        var onClose: (() -> Void)?

        func write(_ buffer: ByteBuffer) { written += buffer.readableBytesView }
        func flush() {}
        func close() {
            guard !closed else { return }
            closed = true
            onClose?()
        }

        /// The messages written after our 68-byte handshake.
        func messages() -> [PeerMessage] {
            var out: [PeerMessage] = []
            var rest = written.dropFirst(Handshake.length)
            while let (message, consumed) = try? PeerMessageDecoder().decode(rest) {
                out.append(message)
                rest = rest.dropFirst(consumed)
            }
            return out
        }
    }

    struct Fixture {
        let session: Session
        let metainfo: Metainfo
        let data: [UInt8]
        let storage: MemoryStorage
        var engine: Engine { session.engine }
    }

    /// A 4-piece torrent (2 blocks per piece), added to a session that never opens a socket.
    static func fixture() async throws -> Fixture {
        let scratch = try Scratch()
        var generator = SplitMix64(seed: 5)
        let data = generator.bytes(4 * 32768 - 100)
        let path = scratch.root.path + "/blob"
        _ = FileManager.default.createFile(atPath: path, contents: Data(data))
        let metainfo = try TorrentCreator.create(path: path, pieceLength: 32768).metainfo
        let storage = MemoryStorage(totalLength: metainfo.info.totalLength)
        var configuration = SessionConfiguration(dataDirectory: scratch.root.path + "/data")
        configuration.makeStorage = { _, _ in storage }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let session = Session(configuration: configuration, logger: logger)
        try await session.add(.metainfo(metainfo))
        for _ in 0..<200 where await session.verifiedPieces(metainfo.infoHash) == nil {
            try await Task.sleep(for: .milliseconds(10))
        }
        return Fixture(session: session, metainfo: metainfo, data: data, storage: storage)
    }

    /// Connects a fake peer that completed its handshake (on the engine's loop).
    static func connect(_ fixture: Fixture, port: UInt16) -> (PeerConnection, FakeTransport) {
        let engine = fixture.engine
        let torrent = engine.torrents[fixture.metainfo.infoHash]!
        let transport = FakeTransport()
        let peer = PeerConnection(id: engine.makeID(), transport: transport, incoming: false,
                                  address: PeerAddress(host: "10.9.9.9", port: port))
        peer.torrent = torrent
        transport.onClose = { engine.channelClosed(peer) }
        engine.channelActive(peer)
        engine.handshakeReceived(peer, Handshake(infoHash: fixture.metainfo.infoHash,
                                                 peerID: PeerID(Array(repeating: UInt8(port), count: 20))!))
        return (peer, transport)
    }

    @Test("a seeder that has everything gets interest and requests, its blocks are verified and stored")
    func download() async throws {
        let fixture = try await Self.fixture()
        let engine = fixture.engine
        let lengths = fixture.metainfo.info.lengths
        let requests = try await engine.loop.submit { () -> [PeerMessage] in
            let (peer, transport) = Self.connect(fixture, port: 1)
            engine.messageReceived(peer, .haveAll)
            engine.messageReceived(peer, .unchoke)
            let sent = transport.messages()
            for case .request(let piece, let begin, let length) in sent {
                let start = Int(lengths.pieceOffset(lengths.piece(piece)!)) + begin
                fixture.data[start..<(start + length)].withUnsafeBytes {
                    engine.blockArrived(peer, piece: piece, begin: begin, bytes: $0)
                }
            }
            return sent
        }.get()
        #expect(requests.contains(.interested))
        #expect(requests.filter { if case .request = $0 { return true } else { return false } }.count == 8,
                "every block of the 4 pieces requested at once: \(requests)")
        try await fixture.session.waitForCompletion(fixture.metainfo.infoHash)
        #expect(try fixture.storage.read(at: 0, length: fixture.data.count) == fixture.data)
        let stats = try #require(await fixture.session.stats(fixture.metainfo.infoHash))
        #expect(stats.state == .seeding && stats.verifiedBytes == Int64(fixture.data.count))
        await fixture.session.shutdown()
    }

    @Test("a peer that breaks the protocol is cut off and banned with the reason; a timeout is not a ban")
    func violationBans() async throws {
        let fixture = try await Self.fixture()
        let engine = fixture.engine
        let hash = fixture.metainfo.infoHash
        let (closed, banned, bans) = try await engine.loop.submit { () -> (Bool, Bool, [BanReason: Int]) in
            let (peer, transport) = Self.connect(fixture, port: 2)
            engine.messageReceived(peer, .have(piece: 999))  // no such piece
            let list = engine.torrents[hash]!.peerList
            return (transport.closed, list.isBanned(peer.address), list.bansByReason)
        }.get()
        #expect(closed && banned && bans == [.protocolViolation: 1])
        let quiet = try await engine.loop.submit { () -> (Bool, Int) in
            // Known to the peer list (as a dialed address is), added without dialing it.
            engine.torrents[hash]!.peerList.add(PeerAddress(host: "10.9.9.9", port: 3), source: .tracker)
            let (peer, _) = Self.connect(fixture, port: 3)
            peer.close(.idleTimeout)
            let list = engine.torrents[hash]!.peerList
            return (list.isBanned(peer.address), list.entries[peer.address]?.failures ?? -1)
        }.get()
        #expect(quiet.0 == false && quiet.1 == 1, "a timeout backs off (one failure), no ban")
        let stats = try #require(await fixture.session.stats(hash))
        #expect(stats.bansByReason == ["protocol violation": 1] && stats.bannedPeers == 1)
        await fixture.session.shutdown()
    }
}
