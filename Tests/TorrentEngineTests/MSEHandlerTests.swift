import BitTorrent
import NIOCore
import NIOEmbedded
import Testing

@testable import TorrentEngine

@Suite("MSE in the pipeline and the outgoing strategy")
struct MSEHandlerTests {
    static let torrent = SHA1.hash(Array("handler torrent".utf8))
    static let handshake = Handshake(infoHash: torrent, peerID: SHA1.hash([2])).encoded

    static func responder(_ policy: EncryptionPolicy) throws -> EmbeddedChannel {
        let key = MSEHandshake.torrentKey(torrent)
        let channel = EmbeddedChannel(handler: MSEHandler(incoming: policy) { $0 == key ? torrent : nil })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    static func initiator(_ policy: EncryptionPolicy) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: MSEHandler(initiatorFor: torrent, policy: policy))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Moves written bytes between the two channels until neither writes more; all of it.
    static func pump(_ a: EmbeddedChannel, _ b: EmbeddedChannel) throws -> [UInt8] {
        var wire: [UInt8] = []
        var moved = true
        while moved {
            moved = false
            for (from, to) in [(a, b), (b, a)] {
                while let buffer = try from.readOutbound(as: ByteBuffer.self) {
                    wire += buffer.readableBytesView
                    try to.writeInbound(buffer)
                    moved = true
                }
            }
        }
        return wire
    }

    static func inbound(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        return bytes
    }

    @Test("initiator and responder handlers carry the handshake as initial payload, then RC4 when required, else plaintext",
          arguments: [EncryptionPolicy.require, .prefer])
    func encryptedStream(policy: EncryptionPolicy) throws {
        let a = try Self.initiator(policy)
        let b = try Self.responder(.prefer)
        // Written before the MSE handshake finished: held, then sent as the initial payload.
        a.writeAndFlush(a.allocator.buffer(bytes: Self.handshake), promise: nil)
        let wire = try Self.pump(a, b)
        #expect(try Self.inbound(b) == Self.handshake)
        #expect(!wire.contains(subsequence: Self.handshake), "the handshake crossed the wire in clear")
        let reply = Array("a reply of the responder, then more".utf8)
        for chunk in [reply[..<10], reply[10...]] { try b.writeAndFlush(b.allocator.buffer(bytes: chunk)).wait() }
        let replyWire = try Self.pump(a, b)
        #expect(try Self.inbound(a) == reply)
        if policy == .require {
            #expect(replyWire.count == reply.count && replyWire != reply, "RC4: same length, other bytes")
        } else {
            #expect(replyWire == reply, "offered both, the responder selects plaintext after the handshake")
        }
        _ = try a.finish()
        _ = try b.finish()
    }

    @Test("a plaintext handshake passes through unless encryption is required")
    func plaintextIncoming() throws {
        let open = try Self.responder(.prefer)
        try open.writeInbound(open.allocator.buffer(bytes: Self.handshake[..<5]))
        try open.writeInbound(open.allocator.buffer(bytes: Self.handshake[5...]))
        #expect(try Self.inbound(open) == Self.handshake)
        try open.writeAndFlush(open.allocator.buffer(bytes: [1, 2, 3])).wait()
        #expect(try open.readOutbound(as: ByteBuffer.self)?.readableBytesView.elementsEqual([1, 2, 3]) == true)

        let strict = try Self.responder(.require)
        #expect(throws: MSEFailure.self) { try strict.writeInbound(strict.allocator.buffer(bytes: Self.handshake)) }
        #expect(!strict.isActive)
    }

    @Test("an encrypted handshake is refused when encryption is off")
    func encryptedRefusedWhenOff() throws {
        let a = try Self.initiator(.prefer)
        let off = try Self.responder(.off)
        let ya = try #require(try a.readOutbound(as: ByteBuffer.self))
        #expect(throws: MSEFailure.self) { try off.writeInbound(ya) }
        #expect(!off.isActive)
    }

    @Test("a peer hanging up during the handshake is reported as an MSE failure")
    func hangUp() throws {
        let a = try Self.initiator(.prefer)
        _ = try a.readOutbound(as: ByteBuffer.self)
        a.pipeline.fireChannelInactive()
        #expect(throws: MSEFailure.self) { try a.throwIfErrorCaught() }
    }

    @Test("prefer: plaintext at once after a failed encrypted try, remembered; require: one more encrypted try")
    func strategy() {
        let peer = PeerAddress(host: "10.0.0.1", port: 6881)
        var memory = EncryptionMemory()
        #expect(memory.encryptFirst(peer, policy: .prefer) && memory.encryptFirst(peer, policy: .require))
        #expect(!memory.encryptFirst(peer, policy: .off))
        memory.dialing(1, peer, encrypted: true, retry: false)
        memory.failed(1, MSEFailure(error: nil, secretHadLeadingZero: false))
        #expect(memory.closed(1, policy: .prefer) == false)
        memory.dialing(2, peer, encrypted: false, retry: true)
        memory.handshaken(2, policy: .prefer)
        #expect(!memory.encryptFirst(peer, policy: .prefer), "plaintext remembered")
        // A plaintext connection that closes is not retried.
        memory.dialing(3, peer, encrypted: false, retry: false)
        #expect(memory.closed(3, policy: .prefer) == nil)

        // A secret with a leading zero: one more encrypted try even under prefer, then plaintext.
        memory.dialing(4, peer, encrypted: true, retry: false)
        memory.failed(4, MSEFailure(error: nil, secretHadLeadingZero: true))
        #expect(memory.closed(4, policy: .prefer) == true)
        memory.dialing(5, peer, encrypted: true, retry: true)
        memory.failed(5, MSEFailure(error: nil, secretHadLeadingZero: true))
        #expect(memory.closed(5, policy: .prefer) == false)
        memory.dialing(6, peer, encrypted: true, retry: false)
        memory.handshaken(6, policy: .prefer)
        #expect(memory.encryptFirst(peer, policy: .prefer), "encryption worked again: forgotten")

        // require: one retry, then the usual backoff.
        memory.dialing(7, peer, encrypted: true, retry: false)
        memory.failed(7, MSEFailure(error: .noSynchronization, secretHadLeadingZero: false))
        #expect(memory.closed(7, policy: .require) == true)
        memory.dialing(8, peer, encrypted: true, retry: true)
        memory.failed(8, MSEFailure(error: .noSynchronization, secretHadLeadingZero: false))
        #expect(memory.closed(8, policy: .require) == nil)
        // A closed connection without an MSE failure (it never started) is not retried.
        memory.dialing(9, peer, encrypted: true, retry: false)
        #expect(memory.closed(9, policy: .require) == nil)
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { self[$0..<$0 + subsequence.count].elementsEqual(subsequence) }
    }
}
