import NIOCore
import NIOHTTP1
import TorrentEngine

/// One HTTP connection: collects a request, asks the `Responder` (off the loop), writes the
/// answer, streams file bodies with back-pressure, and handles keep-alive and the header and
/// idle timeouts (`ConnectionClock`). Requests on one connection are answered in order;
/// NIO's pipelining handler holds later ones back.
final class HTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Largest request body (`POST /` with a .torrent).
    static let maxBody = 16 << 20

    /// The request being read.
    private enum Request {
        /// None: between requests.
        case none
        /// A `POST /` that may add a torrent: its body is kept, the answer comes at its end.
        case collecting(HTTPRequestHead, body: [UInt8], tooLarge: Bool)
        /// Answered at its end; a body it has is dropped.
        case awaitingEnd(HTTPRequestHead)
        /// Answered from its head alone (a refusal); the rest of it is dropped. If the answer
        /// goes out before the end, the connection closes after it.
        case answeredEarly
    }

    private let responder: Responder
    private var request = Request.none
    private var streamer: BodyStreamer?
    /// Requests read whose answer is not fully written yet.
    private var answering = 0
    /// The client will send nothing more: close once the answers are out.
    private var inputClosed = false
    private var clock: ConnectionClock
    /// The timer armed for the clock's deadline, and when it fires.
    private var timer: (task: Scheduled<Void>, at: NIODeadline)?

    init(responder: Responder, timeouts: ConnectionClock.Timeouts) {
        self.responder = responder
        clock = ConnectionClock(timeouts: timeouts, now: .now())
    }

    func handlerAdded(context: ChannelHandlerContext) { arm(context) }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.task.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard clock.phase != .lingering else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            clock.headReceived(now: .now())
            if responder.needsBody(head) {
                request = .collecting(head, body: [], tooLarge: false)
            } else if head.method == .GET || head.method == .HEAD {
                request = .awaitingEnd(head)
            } else {
                request = .answeredEarly
                clock.answering()
                answer(context, head, body: [])
            }
        case .body(var buffer):
            guard case .collecting(let head, var body, var tooLarge) = request else { break }
            request = .none  // the body is not copied while it grows
            if body.count + buffer.readableBytes > Self.maxBody {
                tooLarge = true
            } else if let bytes = buffer.readBytes(length: buffer.readableBytes) {
                body += bytes
            }
            request = .collecting(head, body: body, tooLarge: tooLarge)
        case .end:
            let current = request
            request = .none
            switch current {
            case .none, .answeredEarly:
                break
            case .collecting(let head, _, true):
                clock.answering()
                answering += 1
                write(context, head, responder.text(.payloadTooLarge, "request body too large"), keepAlive: head.isKeepAlive)
            case .collecting(let head, let body, false):
                clock.answering()
                answer(context, head, body: body)
            case .awaitingEnd(let head):
                clock.answering()
                answer(context, head, body: [])
            }
        }
        arm(context)
    }

    private var betweenRequests: Bool {
        if case .none = request { return true }
        return false
    }

    private var answeredEarly: Bool {
        if case .answeredEarly = request { return true }
        return false
    }

    /// Asks the responder off the loop, then writes the answer on it.
    private func answer(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, body: [UInt8]) {
        answering += 1
        let responder = responder
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        Task {
            let answer = await responder.answer(head, body: body)
            bound.eventLoop.execute {
                let (handler, context) = bound.value
                // Still reading the body of a request answered from its head: the client
                // learns it need not send the rest, and the connection closes after.
                handler.write(context, head, answer, keepAlive: head.isKeepAlive && !handler.answeredEarly)
            }
        }
    }

    private func write(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ answer: Responder.Answer,
                       keepAlive: Bool) {
        switch answer {
        case .simple(let status, var headers, let bytes):
            headers.replaceOrAdd(name: "Content-Length", value: "\(bytes.count)")
            respond(context, request, status, headers, keepAlive: keepAlive)
            if request.method != .HEAD, !bytes.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
            }
            end(context, keepAlive: keepAlive)
        case .file(let status, let headers, let reader, let parts):
            respond(context, request, status, headers, keepAlive: keepAlive)
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
                         _ headers: HTTPHeaders, keepAlive: Bool) {
        var headers = headers
        headers.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
                      promise: nil)
    }

    private func end(_ context: ChannelHandlerContext, keepAlive: Bool) {
        answering -= 1
        // Before the end is written: NIO's pipelining handler may hand over the next request
        // while it is written, and that request starts its own phase.
        clock.responseEnded(now: .now())
        let early = answeredEarly
        if early {
            request = .none
            clock.lingering(now: .now())
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        arm(context)
        guard !keepAlive || (inputClosed && answering == 0) else { return }
        let channel = context.channel
        if early && !inputClosed {
            // Lingering close: the answer and a FIN go out, the rest of the body is read and
            // dropped until the client closes or the clock runs out. Closing with unread
            // bytes would send a reset, which can destroy the answer before it is read.
            done.futureResult.whenComplete { _ in channel.close(mode: .output, promise: nil) }
        } else {
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// Arms the timer for the clock's deadline. A timer that fires before a deadline that
    /// moved later re-arms itself, so a body that keeps coming does not reschedule per read.
    private func arm(_ context: ChannelHandlerContext) {
        guard let deadline = clock.deadline else { return }
        if let timer {
            if timer.at <= deadline { return }
            timer.task.cancel()
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let task = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.timer = nil
            if handler.clock.expired(now: .now()) {
                context.close(promise: nil)
            } else {
                handler.arm(context)
            }
        }
        timer = (task, deadline)
    }

    /// The client half-closed (`nc -N`, `curl` with `--no-keepalive` after a POST…): the
    /// answers under way are still sent, then the connection closes. Bytes of a request
    /// (raw, before parsing) move the clock from idle to the header deadline.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            if answering == 0 && (clock.phase == .lingering || betweenRequests) {
                context.close(promise: nil)
            }
            return
        }
        if event is RequestBytesHandler.Arrived {
            clock.bytesArrived(now: .now())
            arm(context)
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
        timer?.task.cancel()
        timer = nil
        streamer?.abandon()
        streamer = nil
        context.fireChannelInactive()
    }
}
