import AsyncHTTPClient
import BitTorrent
import NIOCore
import NIOHTTP1

/// A web seed (BEP 19) as a block source: the picker's blocks are grouped into runs of
/// contiguous bytes (up to `maxRunBytes`), each run fetched with HTTP range requests (one
/// per file it touches, in order) and cut back into blocks as the body streams in; the
/// blocks then go through the same assembly and SHA-1 check as a peer's. A seed that
/// answers wrongly (an error status, a range it was not asked for, a short or long body) is
/// retried with backoff and dropped after `maxFailures` failures in a row; one whose data
/// fails the hash check `maxBadPieces` times is dropped too (`Torrent.ban`).
/// Confined to the engine's event loop.
final class WebSeed: BlockSource, @unchecked Sendable {
    static let maxRunBytes: Int64 = 4 << 20
    /// HTTP requests in flight at once (keep-alive connections are reused).
    static let maxRuns = 4
    static let maxFailures = 5
    static let maxBadPieces = 3
    static let maxBackoffSeconds: Int64 = 60

    let id: Int
    let url: String
    /// Stands for the seed where peers are named (smart ban, logs): its host and port.
    let address: PeerAddress
    private let map: WebSeedMap
    private let lengths: Lengths
    private let client: HTTPClient
    private let loop: EventLoop
    private weak var torrent: Torrent?
    private(set) var outstandingBlocks: [BlockRange: Int64] = [:]
    var downloadMeter = RateMeter()
    private var runs = 0
    private var failures = 0
    private var retryAt: Int64 = 0
    var badPieces = 0
    private(set) var isDropped = false
    private var tasks: [ObjectIdentifier: HTTPClient.Task<Void>] = [:]

    init?(url: String, info: InfoDictionary, id: Int, torrent: Torrent, client: HTTPClient, loop: EventLoop) {
        guard let map = WebSeedMap(base: url, info: info) else { return nil }
        self.url = url
        self.map = map
        self.id = id
        self.torrent = torrent
        self.client = client
        self.loop = loop
        lengths = info.lengths
        let authority = url.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first.map(String.init) ?? ""
        address = PeerAddress(authority) ?? PeerAddress(host: authority.isEmpty ? "webseed" : authority,
                                                       port: url.lowercased().hasPrefix("https") ? 443 : 80)
    }

    // MARK: BlockSource

    var requestablePieces: Bitfield? {
        guard !isDropped, runs < Self.maxRuns, Engine.now() >= retryAt else { return nil }
        var all = Bitfield(count: lengths.pieceCount)
        for piece in 0..<lengths.pieceCount { all[piece] = true }
        return all
    }

    /// About two seconds of its rate, between 1 MiB and 16 MiB of blocks.
    func queueDepth(now: Int64) -> Int {
        let blocks = Int(downloadRate(now: now) * 2) / Lengths.blockSize
        return min(1024, max(64, blocks))
    }

    func downloadRate(now: Int64) -> Double { downloadMeter.rate(now: now) }

    var prefersRuns: Bool { true }

    func request(_ blocks: [BlockRange], now: Int64) {
        guard !blocks.isEmpty else { return }
        for block in blocks { outstandingBlocks[block] = now }
        let sorted = blocks.sorted { offset(of: $0) < offset(of: $1) }
        var run: [BlockRange] = []
        for block in sorted {
            if let last = run.last, offset(of: last) + Int64(last.length) == offset(of: block),
               offset(of: block) + Int64(block.length) - offset(of: run[0]) <= Self.maxRunBytes {
                run.append(block)
            } else {
                if !run.isEmpty { start(run) }
                run = [block]
            }
        }
        if !run.isEmpty { start(run) }
    }

    private func offset(of block: BlockRange) -> Int64 { lengths.pieceOffset(block.piece) + Int64(block.begin) }

    // MARK: Runs

    private func start(_ blocks: [BlockRange]) {
        let begin = offset(of: blocks[0])
        let end = offset(of: blocks[blocks.count - 1]) + Int64(blocks[blocks.count - 1].length)
        let run = Run(blocks: blocks, segments: map.segments(begin..<end), allocator: ByteBufferAllocator())
        runs += 1
        next(run)
    }

    /// Fetches the run's next segment, or ends the run.
    private func next(_ run: Run) {
        guard !isDropped else { return }
        guard let segment = run.segments.first else { return finished(run, error: nil) }
        run.segments.removeFirst()
        guard let url = segment.url else {
            run.buffer.writeRepeatingByte(0, count: Int(segment.fileRange.count))
            deliver(run)
            return next(run)
        }
        let request: HTTPClient.Request
        do {
            var headers = HTTPHeaders()
            headers.add(name: "Range", value: "bytes=\(segment.fileRange.lowerBound)-\(segment.fileRange.upperBound - 1)")
            request = try HTTPClient.Request(url: url, method: .GET, headers: headers)
        } catch {
            return finished(run, error: "bad URL \(url)")
        }
        let delegate = SegmentDelegate(seed: self, run: run, segment: segment)
        let task = client.execute(request: request, delegate: delegate, eventLoop: .delegate(on: loop),
                                  deadline: .now() + .seconds(60))
        tasks[ObjectIdentifier(run)] = task
        task.futureResult.whenComplete { [self] result in
            tasks[ObjectIdentifier(run)] = nil
            switch result {
            case .success where delegate.problem == nil && delegate.received == segment.fileRange.count:
                next(run)
            case .success:
                finished(run, error: delegate.problem ?? "short body (\(delegate.received) of \(segment.fileRange.count) bytes)")
            case .failure(let error):
                finished(run, error: delegate.problem ?? "\(error)")
            }
        }
    }

    /// Body bytes of the current segment (on the loop).
    fileprivate func received(_ bytes: ByteBuffer, in run: Run) {
        var bytes = bytes
        run.buffer.writeBuffer(&bytes)
        deliver(run)
    }

    /// Hands every complete block at the head of the run's buffer to the torrent.
    private func deliver(_ run: Run) {
        let now = Engine.now()
        while let block = run.blocks.first, run.buffer.readableBytes >= block.length, !isDropped {
            run.blocks.removeFirst()
            let slice = run.buffer.readSlice(length: block.length)!
            outstandingBlocks[block] = nil
            downloadMeter.add(block.length, now: now)
            slice.withUnsafeReadableBytes { torrent?.webSeedBlock(self, block, $0, now: now) }
        }
        run.buffer.discardReadBytes()
    }

    private func finished(_ run: Run, error: String?) {
        runs -= 1
        let undelivered = run.blocks
        run.blocks = []
        for block in undelivered { outstandingBlocks[block] = nil }
        if let error {
            failed(error)
        } else {
            failures = 0
        }
        torrent?.webSeedIdle(self, dropped: undelivered)
    }

    /// A failure: backoff (2ⁿ s), dropped after `maxFailures` in a row.
    func failed(_ reason: String) {
        failures += 1
        retryAt = Engine.now() + min(Self.maxBackoffSeconds, Int64(1) << min(failures, 6)) * 1_000_000_000
        torrent?.logger.warning("web seed failed", metadata: ["url": "\(url)", "error": "\(reason)",
                                                              "failures": "\(failures)"])
        if failures >= Self.maxFailures { drop("\(failures) failures in a row") }
    }

    /// Stops using the seed: requests under way are cancelled, their blocks given back.
    /// `reason` is logged as a warning; nil when the torrent stops (nothing went wrong).
    func drop(_ reason: String?) {
        guard !isDropped else { return }
        isDropped = true
        for task in tasks.values { task.cancel() }
        tasks = [:]
        if let reason { torrent?.logger.warning("web seed dropped", metadata: ["url": "\(url)", "reason": "\(reason)"]) }
    }

    /// One run: its blocks not delivered yet (in order), the segments left, the bytes
    /// received and not yet cut into blocks.
    fileprivate final class Run: @unchecked Sendable {  // on the engine's loop
        var blocks: [BlockRange]
        var segments: [WebSeedMap.Segment]
        var buffer: ByteBuffer

        init(blocks: [BlockRange], segments: [WebSeedMap.Segment], allocator: ByteBufferAllocator) {
            self.blocks = blocks
            self.segments = segments
            buffer = allocator.buffer(capacity: 256 << 10)
        }
    }
}

/// Streams one range response into its run, checking it is the range asked for.
private final class SegmentDelegate: HTTPClientResponseDelegate, @unchecked Sendable {  // on the engine's loop
    typealias Response = Void
    let seed: WebSeed
    let run: WebSeed.Run
    let segment: WebSeedMap.Segment
    var received: Int64 = 0
    var problem: String?

    init(seed: WebSeed, run: WebSeed.Run, segment: WebSeedMap.Segment) {
        self.seed = seed
        self.run = run
        self.segment = segment
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let range = segment.fileRange
        switch head.status {
        case .partialContent:
            let expected = "bytes \(range.lowerBound)-\(range.upperBound - 1)/"
            if !(head.headers["Content-Range"].first?.hasPrefix(expected) ?? false) {
                problem = "answered \(head.headers["Content-Range"].first ?? "no Content-Range") for \(expected)…"
            }
        case .ok where range.lowerBound == 0 && range.count == segment.fileLength:
            break  // the whole file was asked for
        default:
            problem = "HTTP \(head.status.code) for bytes \(range.lowerBound)-\(range.upperBound - 1)"
        }
        if problem != nil { task.cancel() }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard problem == nil else { return task.eventLoop.makeSucceededVoidFuture() }
        received += Int64(buffer.readableBytes)
        if received > segment.fileRange.count {
            problem = "a longer body than the \(segment.fileRange.count) bytes asked for"
            task.cancel()
        } else {
            seed.received(buffer, in: run)
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: Error) {}

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {}
}
