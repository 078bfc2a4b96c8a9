import NIOCore
import NIOHTTP1
import TorrentEngine

/// One HTTP connection: collects a request, asks the `Responder` (off the loop), writes the
/// answer, streams file bodies with back-pressure, and handles keep-alive. Requests on one
/// connection are answered in order; NIO's pipelining handler holds later ones back.
final class HTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Largest request body (`POST /` with a .torrent).
    static let maxBody = 16 << 20

    private let responder: Responder
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    private var streamer: BodyStreamer?
    /// Requests read whose answer is not fully written yet.
    private var answering = 0
    /// The client will send nothing more: close once the answers are out.
    private var inputClosed = false

    init(responder: Responder) { self.responder = responder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
            body = []
            tooLarge = false
        case .body(var buffer):
            if body.count + buffer.readableBytes > Self.maxBody {
                tooLarge = true
            } else if let bytes = buffer.readBytes(length: buffer.readableBytes) {
                body += bytes
            }
        case .end:
            guard let request = head else { return }
            head = nil
            answering += 1
            if tooLarge {
                write(context, request, responder.text(.payloadTooLarge, "request body too large"))
                return
            }
            let responder = responder
            let requestBody = body
            body = []
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            Task {
                let answer = await responder.answer(request, body: requestBody)
                bound.eventLoop.execute {
                    let (handler, context) = bound.value
                    handler.write(context, request, answer)
                }
            }
        }
    }

    private func write(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ answer: Responder.Answer) {
        let keepAlive = request.isKeepAlive
        switch answer {
        case .simple(let status, var headers, let bytes):
            headers.replaceOrAdd(name: "Content-Length", value: "\(bytes.count)")
            respond(context, request, status, headers)
            if request.method != .HEAD, !bytes.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
            }
            end(context, keepAlive: keepAlive)
        case .file(let status, let headers, let reader, let parts):
            respond(context, request, status, headers)
            guard request.method != .HEAD, context.channel.isActive else {
                reader.close()
                return end(context, keepAlive: keepAlive)
            }
            let allocator = context.channel.allocator
            let bodyParts: [BodyStreamer.Part] = parts.map { part in
                switch part {
                case .bytes(let bytes): return .bytes(allocator.buffer(bytes: bytes))
                case .range(let range): return .file(range)
                }
            }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let streamer = BodyStreamer(channel: context.channel, reader: reader, parts: bodyParts) { complete in
                let (handler, context) = bound.value
                handler.streamer = nil
                // A body that cannot be completed cannot be fixed up: the length was promised.
                guard complete else { return context.close(promise: nil) }
                handler.end(context, keepAlive: keepAlive)
            }
            self.streamer = streamer
            streamer.pump()
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus,
                         _ headers: HTTPHeaders) {
        var headers = headers
        headers.replaceOrAdd(name: "Connection", value: request.isKeepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
                      promise: nil)
    }

    private func end(_ context: ChannelHandlerContext, keepAlive: Bool) {
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        answering -= 1
        guard !keepAlive || (inputClosed && answering == 0) else { return }
        let channel = context.channel
        done.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    /// The client half-closed (`nc -N`, `curl` with `--no-keepalive` after a POST…): the
    /// answers under way are still sent, then the connection closes.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            if answering == 0 && head == nil { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { streamer?.pump() }
        context.fireChannelWritabilityChanged()
    }

    /// A malformed request (the pipeline's error handler has already answered 400) or a
    /// failed socket: nothing more can be read on this connection, so it is closed rather
    /// than left open for the client to hold.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        streamer?.abandon()
        streamer = nil
        context.fireChannelInactive()
    }
}
