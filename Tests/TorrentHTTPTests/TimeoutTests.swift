import Foundation
import Testing
@testable import TorrentHTTP

/// Clients that hold connections without using them: the header and idle timeouts and the
/// connection cap, on a real socket, with timeouts of a fraction of a second.
@Suite("HTTP timeouts and connection cap")
struct TimeoutTests {
    static let get = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"

    @Test("a connection that sends nothing is closed after the header timeout")
    func silentConnectionCloses() async throws {
        let server = try await TestServer()
        let (reply, took) = try await server.run { server in
            let client = try RawClient(port: server.port)
            let started = Date()
            return (client.read(seconds: 3), Date().timeIntervalSince(started))
        }
        #expect(reply.closed && reply.bytes.isEmpty, "still open after 3 s")
        #expect(took >= 0.25 && took < 2, "closed after \(took) s; the header timeout is 0.3 s")
    }

    @Test("a head that stops mid-headers, or trickles a byte at a time, is closed at the header deadline",
          arguments: [false, true])
    func stalledHeadCloses(trickle: Bool) async throws {
        let server = try await TestServer()
        let (closed, took) = try await server.run { server in
            let client = try RawClient(port: server.port)
            let started = Date()
            try client.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            if trickle {
                // Slowloris: bytes keep coming, the head never ends; 3 s of it at most.
                for _ in 0..<60 {
                    guard (try? client.send("X")) != nil else { break }
                    if client.read(seconds: 0.05).closed { return (true, Date().timeIntervalSince(started)) }
                }
                return (false, Date().timeIntervalSince(started))
            }
            return (client.read(seconds: 3).closed, Date().timeIntervalSince(started))
        }
        #expect(closed, "the server kept a connection whose head never completed")
        #expect(took < 2, "closed after \(took) s; the header timeout is 0.3 s")
    }

    @Test("a kept-alive connection serves requests within the idle timeout, then is closed")
    func idleKeepAliveCloses() async throws {
        let server = try await TestServer()
        let (first, second, closed, took) = try await server.run { server in
            let client = try RawClient(port: server.port)
            try client.send(Self.get)
            let first = try client.response()
            // Longer than the header timeout, shorter than the idle one: still open.
            Thread.sleep(forTimeInterval: 0.35)
            try client.send(Self.get)
            let second = try client.response()
            let started = Date()
            let end = client.read(seconds: 3)
            return (first.head, second.head, end.closed && end.bytes.isEmpty, Date().timeIntervalSince(started))
        }
        #expect(first.hasPrefix("HTTP/1.1 200 ") && second.hasPrefix("HTTP/1.1 200 "), "\(first)\n\(second)")
        #expect(closed, "the idle connection was not closed")
        #expect(took >= 0.4 && took < 2, "closed \(took) s after the response; the idle timeout is 0.5 s")
    }

    @Test("a response body read slowly is not idle: the client gets all of it")
    func slowReaderKeepsItsConnection() async throws {
        let server = try await TestServer(fileSize: 8 << 20)
        let file = try #require(server.file)
        let (reply, took) = try await server.run { server in
            let client = try RawClient(port: server.port, receiveBuffer: 64 << 10)
            try client.send("GET \(file.path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let started = Date()
            var bytes: [UInt8] = []
            while true {
                let chunk = client.read(seconds: 3) { $0.count >= 64 << 10 }
                bytes += chunk.bytes
                if chunk.closed || chunk.bytes.isEmpty { break }
                if let split = RawClient.headEnd(bytes), bytes.count - split >= file.bytes.count { break }
                Thread.sleep(forTimeInterval: 0.01)
            }
            return (bytes, Date().timeIntervalSince(started))
        }
        let split = try #require(RawClient.headEnd(reply))
        #expect(Array(reply[split...]) == file.bytes, "got \(reply.count - split) of \(file.bytes.count) bytes")
        #expect(took > 0.6, "read in \(took) s: not slower than the timeouts, the test shows nothing")
    }

    @Test("connections beyond the cap get 503 and are closed; a slot freed is used again")
    func connectionCap() async throws {
        let server = try await TestServer(TestServer.quick {
            $0.maxConnections = 3
            $0.headerTimeout = .seconds(30)
            $0.idleTimeout = .seconds(30)
        })
        let (refused, admitted) = try await server.run { server in
            var held = try (0..<3).map { _ in try RawClient(port: server.port) }
            // Each held connection has answered once: the server has accepted them all.
            for client in held {
                try client.send(Self.get)
                _ = try client.response()
            }
            let extra = try RawClient(port: server.port)
            let refused = extra.read(seconds: 3)
            held.removeLast()
            var admitted = ""
            for _ in 0..<50 {
                let client = try RawClient(port: server.port)
                try? client.send(Self.get)
                admitted = (try? client.response(seconds: 1).head) ?? ""
                if admitted.hasPrefix("HTTP/1.1 200 ") { break }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return (refused, admitted)
        }
        #expect(String(decoding: refused.bytes, as: UTF8.self).hasPrefix("HTTP/1.1 503 "))
        #expect(refused.closed, "the connection over the cap was left open")
        #expect(admitted.hasPrefix("HTTP/1.1 200 "), "no connection admitted after one closed: \(admitted)")
    }
}
