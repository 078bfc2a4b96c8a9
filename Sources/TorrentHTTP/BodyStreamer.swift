import NIOCore
import NIOHTTP1
import TorrentEngine

/// Sends a response body made of literal bytes and ranges of a torrent file, reading the
/// file through an engine reader at the pace the client takes it: the next chunk is asked
/// for only while the channel is writable, so memory stays bounded however slow the client.
/// A client that goes away cancels the read under way and closes the reader.
/// Confined to the channel's event loop.
final class BodyStreamer {
    /// Bytes asked of the reader at a time.
    static let chunk = 256 << 10

    enum Part {
        case bytes(ByteBuffer)
        /// A byte range of the file.
        case file(Range<Int64>)
    }

    private let channel: Channel
    private let reader: TorrentReader
    private var parts: [Part]
    private var current: Range<Int64>?
    private var pendingRead: UInt64?
    private var reading = false
    private var finished = false
    private let done: (Bool) -> Void

    /// `done(true)` once every part is written, `done(false)` when the body cannot be
    /// completed (a failed read: the connection is closed, the length cannot be honoured).
    init(channel: Channel, reader: TorrentReader, parts: [Part], done: @escaping (Bool) -> Void) {
        self.channel = channel
        self.reader = reader
        self.parts = parts.reversed()
        self.done = done
    }

    /// Writes what it can now; called again when the channel becomes writable.
    func pump() {
        while !finished, !reading, channel.isWritable {
            if current?.isEmpty ?? true {
                guard let next = parts.popLast() else { return finish(true) }
                switch next {
                case .bytes(let buffer):
                    channel.write(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
                    continue
                case .file(let range):
                    current = range
                    continue
                }
            }
            let range = current!
            reading = true
            let size = Int(min(Int64(Self.chunk), Int64(range.count)))
            let sink = Sink(streamer: NIOLoopBound(self, eventLoop: channel.eventLoop), allocator: channel.allocator)
            if case .pending(let id) = reader.read(offset: range.lowerBound, size: size, sink: sink) {
                pendingRead = id
            }
        }
        channel.flush()
    }

    /// A chunk arrived (on the loop).
    fileprivate func received(_ result: Result<ByteBuffer, ReadFailure>) {
        reading = false
        pendingRead = nil
        guard !finished else { return }
        switch result {
        case .failure:
            finish(false)
        case .success(let buffer):
            guard buffer.readableBytes > 0, let range = current else { return finish(false) }
            current = (range.lowerBound + Int64(buffer.readableBytes))..<range.upperBound
            channel.write(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
            pump()
        }
    }

    /// The client went away: the read under way is cancelled, the reader released.
    func abandon() {
        guard !finished else { return }
        finished = true
        if let pendingRead { reader.cancel(pendingRead) }
        reader.close()
    }

    private func finish(_ complete: Bool) {
        guard !finished else { return }
        finished = true
        reader.close()
        done(complete)
    }

    /// Copies the reader's bytes into a buffer and hands them to the loop.
    private struct Sink: ReadSink {
        let streamer: NIOLoopBound<BodyStreamer>
        let allocator: ByteBufferAllocator

        func data(_ bytes: UnsafeRawBufferPointer) {
            var buffer = allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            deliver(.success(buffer))
        }

        func failed(_ failure: ReadFailure) { deliver(.failure(failure)) }

        private func deliver(_ result: Result<ByteBuffer, ReadFailure>) {
            let streamer = streamer
            streamer.eventLoop.execute { streamer.value.received(result) }
        }
    }
}
