import Foundation
import Glibc
import Logging
import Testing
import TorrentEngine
@testable import TorrentHTTP

/// The server on a real socket: what a client that sends garbage gets back.
@Suite("HTTP connections")
struct ConnectionTests {
    /// Sends `request` on a fresh connection and reads until the server closes it (true) or
    /// `seconds` pass without it closing (false).
    static func exchange(port: Int, _ request: [UInt8], seconds: Int = 5) throws -> (reply: [UInt8], closed: Bool) {
        let client = try RawClient(port: port)
        try client.send(request)
        let reply = client.read(seconds: Double(seconds))
        return (reply.bytes, reply.closed)
    }

    @Test("a malformed request gets 400 and the connection is closed, not left open for the client to hold",
          arguments: ["garbage", "request line", "oversized header"])
    func malformedRequestCloses(kind: String) async throws {
        let request = switch kind {
        case "garbage": "NONSENSE\r\n\r\n"
        case "request line": "GET / HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n"
        default: "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: \(String(repeating: "a", count: 100_000))\r\n\r\n"
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tfs-http-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let session = Session(configuration: SessionConfiguration(dataDirectory: directory))
        var configuration = TorrentHTTPServer.Configuration()
        configuration.port = 0
        let server = try await TorrentHTTPServer.start(session: session, configuration: configuration,
                                                      logger: Logger(label: "test"))
        let port = server.port
        let outcome = await Task.detached { Result { try Self.exchange(port: port, Array(request.utf8)) } }.value
        // Stopped before any failure is reported: a session must be shut down before it goes.
        await server.stop()
        await session.shutdown()
        let result = try outcome.get()
        #expect(String(decoding: result.reply, as: UTF8.self).hasPrefix("HTTP/1.1 400 "))
        #expect(result.closed, "the server kept the connection open after answering 400")
    }

    @Test("a refused upload gets 403 as soon as its head is in, without waiting for the body")
    func refusedPostAnswersAtOnce() async throws {
        // Timeouts far longer than the wait: the answer cannot come from one of them.
        let server = try await TestServer(TestServer.quick { $0.headerTimeout = .seconds(30); $0.idleTimeout = .seconds(30) })
        let (reply, took) = try await server.run { server in
            let client = try RawClient(port: server.port)
            let started = Date()
            try client.send("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 16000000\r\n\r\n")
            try client.send([UInt8](repeating: 0x61, count: 100_000))
            return (client.read(seconds: 3), Date().timeIntervalSince(started))
        }
        let text = String(decoding: reply.bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 403 ") && text.contains("Connection: close"), "\(text.prefix(200))")
        #expect(reply.closed, "the connection was left open after the refusal")
        #expect(took < 2, "answered after \(took) s")
    }

    @Test("absolute-form targets are accepted, their authority under the Host rule", arguments: [
        ("GET http://127.0.0.1:PORT/ HTTP/1.1\r\nHost: 127.0.0.1:PORT", "200"),
        ("GET HTTP://LOCALHOST/?x=1 HTTP/1.1\r\nHost: localhost", "200"),
        ("GET http://127.0.0.1/ HTTP/1.0", "200"),
        ("GET http://evil.example/ HTTP/1.1\r\nHost: 127.0.0.1", "403"),
        ("GET http://127.0.0.1/ HTTP/1.1\r\nHost: evil.example", "403"),
        ("GET http://user@127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1", "400"),
        ("GET http://127.0.0.1/t/\(String(repeating: "ab", count: 20))/%2e%2e/x HTTP/1.1\r\nHost: 127.0.0.1", "400"),
        ("GET http://127.0.0.1/ HTTP/1.1", "400"),
    ])
    func absoluteForm(request: String, status: String) async throws {
        let server = try await TestServer()
        let reply = try await server.run { server in
            let client = try RawClient(port: server.port)
            try client.send(request.replacingOccurrences(of: "PORT", with: "\(server.port)") + "\r\nConnection: close\r\n\r\n")
            return try client.response().head
        }
        #expect(reply.hasPrefix("HTTP/1.1 \(status) ") || reply.hasPrefix("HTTP/1.0 \(status) "), "\(request): \(reply)")
    }
}
