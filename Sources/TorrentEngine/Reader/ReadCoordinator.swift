import BitTorrent
import Foundation
import Logging

/// The streaming reads of every torrent of a session: which pieces each read waits for,
/// the deadlines readers hold (their reads, their readahead), completion when pieces are
/// verified, and serving verified bytes from the engine's storage.
///
/// Only bytes that match their piece's SHA-1 reach a reader. Pieces hashed in this process
/// (downloaded and verified before they were written, or hashed by the check) are trusted;
/// a piece trusted from resume data is read back whole and hashed the first time it is
/// served. One that no longer matches (changed behind our back between runs, a failing
/// disk) fails the read with `.storage`, counts as missing again, and is reported to the
/// engine, which fetches it again.
///
/// Thread-safe: readers call in from their own threads (FUSE, HTTP), the engine's loop
/// reports checks and verified pieces. One lock guards the tables; it is never held across
/// I/O or a sink call. Deadline changes leave under the lock, so they reach the engine in
/// the order they were decided.
final class ReadCoordinator: @unchecked Sendable {
    /// A blocking read's pieces are due `readSpacing` apart, in file order.
    static let readSpacing: Int64 = 1_000_000
    /// Readahead pieces are due this long after a read's, `readaheadSpacing` apart.
    static let readaheadDelay: Int64 = 2_000_000_000
    static let readaheadSpacing: Int64 = 20_000_000

    private let lock = NSLock()
    private var streams: [InfoHash: Stream] = [:]
    private var nextID: UInt64 = 0
    /// Ticks on every use of a piece (`Stream.lastUse`).
    private var useClock: UInt64 = 0
    private var isShutDown = false
    private let io = DispatchQueue(label: "torrentfs.reads", attributes: .concurrent)
    private let buffers = BufferPool()
    private let clock: @Sendable () -> Int64
    private let sendDeadlines: @Sendable (InfoHash, [DeadlineTable.Change]) -> Void
    /// Pieces whose stored bytes failed their hash when read back.
    private let piecesLost: @Sendable (InfoHash, [Int]) -> Void
    private let logger: Logger

    /// One torrent's reads.
    final class Stream {
        let info: InfoDictionary
        var lengths: Lengths { info.lengths }
        var storage: PieceStorage?
        /// Pieces whose stored bytes were hashed in this process (by the check, by a read
        /// back, or as they were downloaded) and matched.
        var readBack: Bitfield
        /// Verified pieces; nil until the engine has checked the data on disk.
        var verified: Bitfield?
        var deadlines = DeadlineTable()
        /// Piece → reads waiting for it.
        var waiting: [Int: Set<UInt64>] = [:]
        var reads: [UInt64: PendingRead] = [:]
        var readers: [UInt64: ReaderState] = [:]
        /// Why the torrent fetches nothing now (its storage failed); reads that need a
        /// missing piece fail at once with `.paused` instead of waiting out their timeout.
        var pausedReason: String?
        /// When each verified piece was last read or arrived (the coordinator's use clock):
        /// the bounded cache evicts the least recently used first.
        var lastUse: [Int: UInt64] = [:]
        /// Pieces being read from storage right now (never evicted under a read).
        var serving: [Int: Int] = [:]

        init(info: InfoDictionary) {
            self.info = info
            readBack = Bitfield(count: info.lengths.pieceCount)
        }

        /// Pieces covering `range` not read back yet (their first serving hashes them).
        func unchecked(_ range: Range<Int64>) -> [Int] {
            guard !range.isEmpty, let pieces = lengths.pieces(covering: range) else { return [] }
            return (pieces.lowerBound.value...pieces.upperBound.value).filter { !readBack[$0] }
        }

        func isVerified(_ piece: Int) -> Bool { verified?[piece] == true }
    }

    struct ReaderState {
        var window: ReadaheadWindow
        /// Pieces this reader holds deadlines on for readahead.
        var held = Set<Int>()
        /// The torrent bytes from its last read to the end of its window: kept from eviction.
        var span: Range<Int64>?
        let timeout: Double?
    }

    final class PendingRead {
        let id: UInt64
        let reader: UInt64
        let range: Range<Int64>
        var missing: Set<Int>
        let sink: any ReadSink

        init(id: UInt64, reader: UInt64, range: Range<Int64>, missing: Set<Int>, sink: any ReadSink) {
            self.id = id
            self.reader = reader
            self.range = range
            self.missing = missing
            self.sink = sink
        }
    }

    init(logger: Logger, clock: @escaping @Sendable () -> Int64,
         sendDeadlines: @escaping @Sendable (InfoHash, [DeadlineTable.Change]) -> Void,
         piecesLost: @escaping @Sendable (InfoHash, [Int]) -> Void) {
        self.logger = logger
        self.clock = clock
        self.sendDeadlines = sendDeadlines
        self.piecesLost = piecesLost
    }

    private func makeID() -> UInt64 {
        nextID += 1
        return nextID
    }

    // MARK: Readers

    func open(_ infoHash: InfoHash, info: InfoDictionary, fileIndex: Int, options: ReaderOptions) -> TorrentReader {
        lock.withLock {
            let stream = streams[infoHash] ?? Stream(info: info)
            streams[infoHash] = stream
            let id = makeID()
            stream.readers[id] = ReaderState(
                window: ReadaheadWindow(initial: options.initialWindow, maximum: options.maximumWindow),
                timeout: options.timeout)
            return TorrentReader(infoHash: infoHash, fileIndex: fileIndex, file: info.files[fileIndex], id: id,
                                 coordinator: self)
        }
    }

    func close(_ reader: TorrentReader) {
        let failed = lock.withLock { () -> [PendingRead] in
            guard let stream = streams[reader.infoHash], let state = stream.readers.removeValue(forKey: reader.id) else {
                return []
            }
            var changes: [DeadlineTable.Change] = []
            for piece in state.held { stream.deadlines.release(piece, by: reader.id, changes: &changes) }
            let reads = stream.reads.values.filter { $0.reader == reader.id }
            for read in reads { forget(read, in: stream, changes: &changes) }
            send(reader.infoHash, changes)
            return reads
        }
        for read in failed { read.sink.failed(.cancelled) }
    }

    // MARK: Reading

    func read(_ reader: TorrentReader, offset: Int64, size: Int, sink: any ReadSink) -> StreamRead {
        enum Plan {
            case fail(ReadFailure)
            case empty
            case serve(Serving)
            case wait(UInt64, Double?)
        }
        let plan = lock.withLock { () -> Plan in
            guard !isShutDown else { return .fail(.shutDown) }
            guard let stream = streams[reader.infoHash], var state = stream.readers[reader.id] else { return .fail(.removed) }
            let file = reader.file
            guard offset >= 0, offset < file.length, size > 0 else { return .empty }
            let end = min(file.length, offset + Int64(size))
            let range = (file.offset + offset)..<(file.offset + end)
            let covering = stream.lengths.pieces(covering: range)!
            let missing = (covering.lowerBound.value...covering.upperBound.value).filter { !stream.isVerified($0) }
            if !missing.isEmpty, let reason = stream.pausedReason { return .fail(.paused(reason)) }
            let now = clock()
            var changes: [DeadlineTable.Change] = []
            planReadahead(&state, reader: reader, stream: stream, readEnd: end, offset: offset, now: now,
                          changes: &changes)
            stream.readers[reader.id] = state
            guard !missing.isEmpty else {
                send(reader.infoHash, changes)
                return .serve(startServing(reader.infoHash, stream: stream, range: range))
            }
            let id = makeID()
            stream.reads[id] = PendingRead(id: id, reader: reader.id, range: range, missing: Set(missing), sink: sink)
            for (order, piece) in missing.enumerated() {
                stream.waiting[piece, default: []].insert(id)
                stream.deadlines.hold(piece, by: id, until: now + Int64(order) * Self.readSpacing, changes: &changes)
            }
            send(reader.infoHash, changes)
            return .wait(id, state.timeout)
        }
        switch plan {
        case .fail(let failure):
            sink.failed(failure)
        case .empty:
            sink.data(UnsafeRawBufferPointer(start: nil, count: 0))
        case .serve(let serving):
            serve(serving, sink)
        case .wait(let id, let timeout):
            if let timeout, timeout > 0 {
                let hash = reader.infoHash
                io.asyncAfter(deadline: .now() + timeout) { [weak self] in self?.cancel(hash, read: id, failure: .timedOut) }
            }
            return .pending(id)
        }
        return .done
    }

    /// The window follows the reader's sequential speed; its missing pieces get later
    /// deadlines than any blocking read (lock held).
    private func planReadahead(_ state: inout ReaderState, reader: TorrentReader, stream: Stream, readEnd end: Int64,
                               offset: Int64, now: Int64, changes: inout [DeadlineTable.Change]) {
        // A complete torrent has nothing to fetch ahead: warm reads skip the planning.
        if stream.verified?.isComplete == true {
            state.held = []
            state.span = (reader.file.offset + offset)..<(reader.file.offset + end)
            return
        }
        let file = reader.file
        let window = state.window.read(offset: offset, end: end, now: now)
        var wanted = Set<Int>()
        let aheadEnd = min(file.length, end + Int64(window))
        state.span = (file.offset + offset)..<(file.offset + max(end, aheadEnd))
        if aheadEnd > end, let pieces = stream.lengths.pieces(covering: (file.offset + end)..<(file.offset + aheadEnd)) {
            for (order, piece) in (pieces.lowerBound.value...pieces.upperBound.value).enumerated()
            where !stream.isVerified(piece) {
                wanted.insert(piece)
                // A piece keeps the deadline it got when it entered the window.
                if stream.deadlines.deadline(of: reader.id, on: piece) == nil {
                    let due = now + Self.readaheadDelay + Int64(order) * Self.readaheadSpacing
                    stream.deadlines.hold(piece, by: reader.id, until: due, changes: &changes)
                }
            }
        }
        for piece in state.held.subtracting(wanted) { stream.deadlines.release(piece, by: reader.id, changes: &changes) }
        state.held = wanted
    }

    func cancel(_ infoHash: InfoHash, read id: UInt64, failure: ReadFailure) {
        let read = lock.withLock { () -> PendingRead? in
            guard let stream = streams[infoHash], let read = stream.reads[id] else { return nil }
            var changes: [DeadlineTable.Change] = []
            forget(read, in: stream, changes: &changes)
            send(infoHash, changes)
            return read
        }
        read?.sink.failed(failure)
    }

    /// Drops a read with its waits and deadlines (lock held).
    private func forget(_ read: PendingRead, in stream: Stream, changes: inout [DeadlineTable.Change]) {
        stream.reads[read.id] = nil
        for piece in read.missing {
            stream.waiting[piece]?.remove(read.id)
            if stream.waiting[piece]?.isEmpty == true { stream.waiting[piece] = nil }
            stream.deadlines.release(piece, by: read.id, changes: &changes)
        }
    }

    private func send(_ infoHash: InfoHash, _ changes: [DeadlineTable.Change]) {
        if !changes.isEmpty { sendDeadlines(infoHash, changes) }
    }

    /// What serving a range needs, taken under the lock.
    struct Serving: @unchecked Sendable {  // `info` and `storage` are immutable or thread-safe
        let hash: InfoHash
        let info: InfoDictionary
        let storage: PieceStorage?
        let range: Range<Int64>
        /// Pieces to read back and hash before serving from them.
        let unchecked: [Int]

        init(hash: InfoHash, stream: Stream, range: Range<Int64>) {
            self.hash = hash
            info = stream.info
            storage = stream.storage
            self.range = range
            unchecked = stream.unchecked(range)
        }
    }

    /// A serving of verified pieces starts: they are used now and cannot be evicted until
    /// `finishServing` (lock held).
    private func startServing(_ hash: InfoHash, stream: Stream, range: Range<Int64>) -> Serving {
        useClock += 1
        if let pieces = stream.lengths.pieces(covering: range) {
            for piece in pieces.lowerBound.value...pieces.upperBound.value {
                stream.serving[piece, default: 0] += 1
                stream.lastUse[piece] = useClock
            }
        }
        return Serving(hash: hash, stream: stream, range: range)
    }

    private func finishServing(_ serving: Serving) {
        lock.withLock {
            guard let stream = streams[serving.hash], let pieces = stream.lengths.pieces(covering: serving.range) else { return }
            for piece in pieces.lowerBound.value...pieces.upperBound.value {
                let left = (stream.serving[piece] ?? 1) - 1
                stream.serving[piece] = left > 0 ? left : nil
            }
        }
    }

    /// Reads verified bytes from storage into a pooled buffer and hands them to the sink;
    /// pieces served for the first time are read back whole and hashed first.
    private func serve(_ serving: Serving, _ sink: any ReadSink) {
        defer { finishServing(serving) }
        guard let storage = serving.storage else { return sink.failed(.storage("no storage")) }
        if !serving.unchecked.isEmpty {
            var good: [Int] = []
            var bad: [Int] = []
            for piece in serving.unchecked {
                let index = serving.info.lengths.piece(piece)!
                let range = serving.info.lengths.byteRange(index)
                if let bytes = try? storage.read(at: range.lowerBound, length: range.count),
                   PieceHasher.digest(bytes) == serving.info.hash(of: index) {
                    good.append(piece)
                } else {
                    bad.append(piece)
                }
            }
            readBack(serving.hash, good: good, bad: bad)
            if !bad.isEmpty {
                return sink.failed(.storage("piece \(bad[0]) on disk does not match its hash; fetching it again"))
            }
        }
        let count = Int(serving.range.count)
        let buffer = buffers.take(count)
        defer { buffers.give(buffer) }
        let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
        do {
            try storage.read(at: serving.range.lowerBound, into: slice)
        } catch {
            logger.error("cannot read verified data", metadata: ["error": "\(error)"])
            return sink.failed(.storage("\(error)"))
        }
        sink.data(UnsafeRawBufferPointer(slice))
    }

    /// Records what reading back found; lost pieces count as missing and go to the engine.
    private func readBack(_ infoHash: InfoHash, good: [Int], bad: [Int]) {
        lock.withLock {
            guard let stream = streams[infoHash] else { return }
            for piece in good { stream.readBack[piece] = true }
            for piece in bad { stream.verified?[piece] = false }
        }
        if !bad.isEmpty {
            logger.error("stored data does not match its hash", metadata: ["pieces": "\(bad)"])
            piecesLost(infoHash, bad)
        }
    }

    // MARK: Engine events (the engine's loop)

    /// The torrent's data was checked: `have` is what storage holds, `hashed` the part of it
    /// hashed just now (the rest is trusted from resume data).
    func checked(_ infoHash: InfoHash, info: InfoDictionary, storage: PieceStorage, have: Bitfield, hashed: Bitfield) {
        let ready = lock.withLock { () -> [(PendingRead, Serving)] in
            let stream = streams[infoHash] ?? Stream(info: info)
            streams[infoHash] = stream
            stream.storage = storage
            stream.verified = have
            stream.readBack = hashed
            return have.setIndices.flatMap { arrived($0, in: stream) }.map { ($0, startServing(infoHash, stream: stream, range: $0.range)) }
        }
        deliver(ready)
    }

    func pieceVerified(_ infoHash: InfoHash, piece: Int) {
        let ready = lock.withLock { () -> [(PendingRead, Serving)] in
            guard let stream = streams[infoHash] else { return [] }
            stream.verified?[piece] = true
            // Written from bytes hashed in memory just now.
            stream.readBack[piece] = true
            useClock += 1
            stream.lastUse[piece] = useClock
            return arrived(piece, in: stream).map { ($0, startServing(infoHash, stream: stream, range: $0.range)) }
        }
        deliver(ready)
    }

    /// Serves completed reads off the engine's thread.
    private func deliver(_ reads: [(PendingRead, Serving)]) {
        for (read, serving) in reads {
            let sink = read.sink
            io.async { [self] in serve(serving, sink) }
        }
    }

    /// Reads that miss nothing once `piece` is here leave the tables (lock held).
    private func arrived(_ piece: Int, in stream: Stream) -> [PendingRead] {
        stream.deadlines.pieceArrived(piece)
        guard let ids = stream.waiting.removeValue(forKey: piece) else { return [] }
        var ready: [PendingRead] = []
        for id in ids {
            guard let read = stream.reads[id] else { continue }
            read.missing.remove(piece)
            guard read.missing.isEmpty else { continue }
            stream.reads[id] = nil
            ready.append(read)
        }
        return ready
    }

    /// The torrent paused (`reason`) or resumed (nil). Pausing fails the reads waiting for
    /// pieces; verified data is still served.
    func paused(_ infoHash: InfoHash, info: InfoDictionary, reason: String?) {
        let failed = lock.withLock { () -> [PendingRead] in
            let stream = streams[infoHash] ?? Stream(info: info)
            streams[infoHash] = stream
            stream.pausedReason = reason
            guard reason != nil else { return [] }
            var changes: [DeadlineTable.Change] = []
            let reads = Array(stream.reads.values)
            for read in reads { forget(read, in: stream, changes: &changes) }
            send(infoHash, changes)
            return reads
        }
        if let reason { for read in failed { read.sink.failed(.paused(reason)) } }
    }

    /// Why the torrent is paused, if it is.
    func pausedReason(_ infoHash: InfoHash) -> String? {
        lock.withLock { streams[infoHash]?.pausedReason }
    }

    /// The torrent left the session: its reads fail, its readers read nothing more.
    func removed(_ infoHash: InfoHash) {
        let reads = lock.withLock { streams.removeValue(forKey: infoHash).map { Array($0.reads.values) } ?? [] }
        for read in reads { read.sink.failed(.removed) }
    }

    /// Every read fails; no new one starts.
    func shutDown() {
        let reads = lock.withLock { () -> [PendingRead] in
            isShutDown = true
            defer { streams = [:] }
            return streams.values.flatMap { $0.reads.values }
        }
        for read in reads { read.sink.failed(.shutDown) }
    }

    // MARK: The bounded cache

    /// Chooses and marks unverified the least recently used verified pieces, across every
    /// torrent, until at least `bytes` are chosen. Never chosen: a piece being read from
    /// storage, inside a reader's span (its last read to the end of its window), or in
    /// `protected` (pieces being uploaded). Marked under the lock: from the moment this
    /// returns, a read of a chosen piece waits for it to be fetched again.
    func evict(bytes: Int64, protected: [InfoHash: Set<Int>]) -> [InfoHash: [Int]] {
        lock.withLock {
            var candidates: [(use: UInt64, hash: InfoHash, piece: Int)] = []
            for (hash, stream) in streams {
                guard let verified = stream.verified else { continue }
                var kept = protected[hash] ?? []
                kept.formUnion(stream.serving.keys)
                for state in stream.readers.values {
                    guard let span = state.span, let pieces = stream.lengths.pieces(covering: span) else { continue }
                    kept.formUnion(pieces.lowerBound.value...pieces.upperBound.value)
                }
                for piece in verified.setIndices where !kept.contains(piece) {
                    candidates.append((stream.lastUse[piece] ?? 0, hash, piece))
                }
            }
            candidates.sort { $0.use != $1.use ? $0.use < $1.use : $0.piece < $1.piece }
            var chosen: [InfoHash: [Int]] = [:]
            var freed: Int64 = 0
            for candidate in candidates where freed < bytes {
                guard let stream = streams[candidate.hash], let index = stream.lengths.piece(candidate.piece) else { continue }
                stream.verified?[candidate.piece] = false
                stream.readBack[candidate.piece] = false
                stream.lastUse[candidate.piece] = nil
                chosen[candidate.hash, default: []].append(candidate.piece)
                freed += Int64(stream.lengths.pieceSize(index))
            }
            return chosen
        }
    }

    // MARK: Queries

    /// Verified bytes of the torrent within `range` of its byte stream.
    func verifiedBytes(_ infoHash: InfoHash, in range: Range<Int64>) -> Int64 {
        lock.withLock {
            guard let stream = streams[infoHash], let verified = stream.verified, !range.isEmpty,
                  let pieces = stream.lengths.pieces(covering: range) else { return 0 }
            var total: Int64 = 0
            for piece in pieces.lowerBound.value...pieces.upperBound.value where verified[piece] {
                let bytes = stream.lengths.byteRange(stream.lengths.piece(piece)!)
                total += min(bytes.upperBound, range.upperBound) - max(bytes.lowerBound, range.lowerBound)
            }
            return total
        }
    }
}
