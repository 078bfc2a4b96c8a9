import Foundation
import Testing
@testable import TorrentHTTP

/// Range responses of a served file: what goes over the socket.
@Suite("HTTP range responses")
struct RangeResponseTests {
    static func request(_ method: String, _ path: String, range: String) -> String {
        "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: \(range)\r\n\r\n"
    }

    @Test("a multipart HEAD announces the Content-Length of the GET, every time")
    func multipartHeadMatchesGet() async throws {
        let server = try await TestServer(fileSize: 100_000)
        let file = try #require(server.file)
        let pairs = try await server.run { server in
            let client = try RawClient(port: server.port)
            return try (0..<64).map { _ in
                try client.send(Self.request("HEAD", file.path, range: "bytes=0-9,100-199"))
                let head = try client.response(bodyless: true).head
                try client.send(Self.request("GET", file.path, range: "bytes=0-9,100-199"))
                let get = try client.response()
                return (RawClient.contentLength(head), RawClient.contentLength(get.head), get.body.count)
            }
        }
        let mismatched = pairs.filter { $0.0 != $0.1 || $0.1 != $0.2 }
        #expect(mismatched.isEmpty, "HEAD, GET Content-Length, GET body: \(mismatched)")
    }

    @Test("16 times the whole file is sent once, as one range")
    func repeatedRangesAreMerged() async throws {
        let server = try await TestServer(fileSize: 100_000)
        let file = try #require(server.file)
        let reply = try await server.run { server in
            let client = try RawClient(port: server.port)
            try client.send(Self.request("GET", file.path, range: "bytes=" + Array(repeating: "0-", count: 16).joined(separator: ",")))
            return try client.response()
        }
        #expect(reply.head.hasPrefix("HTTP/1.1 206 "), "\(reply.head)")
        #expect(RawClient.header("Content-Range", in: reply.head) == "bytes 0-99999/100000")
        #expect(RawClient.contentLength(reply.head) == 100_000 && reply.body == file.bytes)
    }
}
