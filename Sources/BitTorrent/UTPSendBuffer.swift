/// The bytes a uTP connection was given to send and has not yet put into packets: the
/// writes as they came (one array each), taken from the front in packet-sized pieces.
/// A piece inside one write is a slice of it (no copy; the sent-packet ring keeps it for
/// retransmission); only a piece that spans two writes is copied together. Taking never
/// moves the bytes still queued (a single growing array did, on each compaction).
struct UTPSendBuffer {
    private var chunks: [[UInt8]] = []
    /// The first chunk not fully taken, and how much of it was.
    private var head = 0
    private var offset = 0
    /// Bytes queued and not taken.
    private(set) var count = 0

    mutating func append(_ bytes: some Collection<UInt8>) {
        guard !bytes.isEmpty else { return }
        chunks.append(Array(bytes))
        count += bytes.count
    }

    /// The next `size` bytes (at most `count`).
    mutating func take(_ size: Int) -> ArraySlice<UInt8> {
        precondition(size <= count)
        guard size > 0 else { return [] }
        count -= size
        let first = chunks[head]
        if first.count - offset >= size {
            let piece = first[offset..<offset + size]
            advance(by: size, in: first.count)
            return piece
        }
        var piece: [UInt8] = []
        piece.reserveCapacity(size)
        while piece.count < size {
            let chunk = chunks[head]
            let part = min(size - piece.count, chunk.count - offset)
            piece.append(contentsOf: chunk[offset..<offset + part])
            advance(by: part, in: chunk.count)
        }
        return piece[...]
    }

    private mutating func advance(by taken: Int, in chunkSize: Int) {
        offset += taken
        guard offset == chunkSize else { return }
        chunks[head] = []
        head += 1
        offset = 0
        if head >= 64, head * 2 >= chunks.count {
            chunks.removeFirst(head)
            head = 0
        }
    }

    mutating func removeAll() {
        chunks = []
        head = 0
        offset = 0
        count = 0
    }
}
