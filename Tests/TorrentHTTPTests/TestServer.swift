import BitTorrent
import Foundation
import Glibc
import Logging
import NIOCore
import TestSupport
import TorrentEngine
@testable import TorrentHTTP

/// A session and its HTTP server on 127.0.0.1, port 0, in a scratch directory; optionally
/// serving one complete single-file torrent made from seeded random bytes.
final class TestServer: Sendable {
    let directory: String
    let session: Session
    let server: TorrentHTTPServer
    /// The served file's URL path and bytes, when one was asked for.
    let file: (path: String, bytes: [UInt8])?
    var port: Int { server.port }

    static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }()

    /// Short timeouts, so that tests of them take a fraction of a second.
    static func quick(_ configure: (inout TorrentHTTPServer.Configuration) -> Void = { _ in }) -> TorrentHTTPServer.Configuration {
        var configuration = TorrentHTTPServer.Configuration()
        configuration.port = 0
        configuration.headerTimeout = .milliseconds(300)
        configuration.idleTimeout = .milliseconds(500)
        configure(&configuration)
        return configuration
    }

    /// `fileSize` > 0: a torrent of one file of that many bytes, complete before it is served.
    init(_ configuration: TorrentHTTPServer.Configuration = quick(), fileSize: Int = 0) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tfs-http-\(UUID().uuidString)").path
        var sessionConfiguration = SessionConfiguration(dataDirectory: directory + "/data")
        sessionConfiguration.listenHosts = ["127.0.0.1"]
        session = Session(configuration: sessionConfiguration, logger: Self.logger)
        if fileSize > 0 {
            var generator = SplitMix64(seed: 7)
            let bytes = generator.bytes(fileSize)
            try FileManager.default.createDirectory(atPath: directory + "/src", withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: directory + "/src/clip.mp4", contents: Data(bytes))
            let metainfo = try TorrentCreator.create(path: directory + "/src/clip.mp4", pieceLength: 65536).metainfo
            var options = TorrentOptions()
            options.dataDirectory = directory + "/src"
            try await session.add(.metainfo(metainfo), options: options)
            try await session.waitForCompletion(metainfo.infoHash)
            file = ("/t/\(metainfo.infoHash.hex)/clip.mp4", bytes)
        } else {
            file = nil
        }
        server = try await TorrentHTTPServer.start(session: session, configuration: configuration, logger: Self.logger)
    }

    func stop() async {
        await server.stop()
        await session.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `body` on a thread of its own (its sockets block: on the cooperative pool, a few
    /// tests at once would starve the server's own tasks), then stops the server before any
    /// failure is reported: a session must be shut down before it goes.
    func run<T: Sendable>(_ body: @escaping @Sendable (TestServer) throws -> T) async throws -> T {
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, Error>, Never>) in
            Thread { continuation.resume(returning: Result { try body(self) }) }.start()
        }
        await stop()
        return try outcome.get()
    }
}

/// A blocking TCP client for what `curl` cannot do: send nothing, stall mid-header, read slowly.
final class RawClient {
    let fd: Int32

    init(port: Int, receiveBuffer: Int? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXFailure(what: "socket") }
        if var size = receiveBuffer.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw POSIXFailure(what: "connect")
        }
    }

    deinit { close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw POSIXFailure(what: "send") }
    }

    /// Reads until the server closes the connection (`closed`), or `seconds` pass without a
    /// byte, or `until` says the bytes so far are enough.
    func read(seconds: Double, until: ([UInt8]) -> Bool = { _ in false }) -> (bytes: [UInt8], closed: Bool) {
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !until(bytes) {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                bytes += buffer[0..<count]
                continue
            }
            // 0: closed by the server; -1: EAGAIN (still open when time ran out) or a reset.
            return (bytes, count == 0 || errno == ECONNRESET)
        }
        return (bytes, false)
    }

    /// One response read whole: its head and body (by Content-Length; none for a HEAD).
    func response(seconds: Double = 5, bodyless: Bool = false) throws -> (head: String, body: [UInt8]) {
        let reply = read(seconds: seconds) { bytes in
            guard let split = Self.headEnd(bytes) else { return false }
            return bodyless || bytes.count - split >= Self.contentLength(String(decoding: bytes[..<split], as: UTF8.self))
        }
        guard let split = Self.headEnd(reply.bytes) else { throw POSIXFailure(what: "no response head") }
        let head = String(decoding: reply.bytes[..<split], as: UTF8.self)
        return (head, Array(reply.bytes[split...]))
    }

    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index..<(index + 4)].elementsEqual([13, 10, 13, 10]) {
            return index + 4
        }
        return nil
    }

    static func contentLength(_ head: String) -> Int {
        header("Content-Length", in: head).flatMap { Int($0) } ?? 0
    }

    static func header(_ name: String, in head: String) -> String? {
        head.split(separator: "\r\n").first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
            .map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) }
    }
}

struct POSIXFailure: Error {
    let what: String
    var code = errno
}
