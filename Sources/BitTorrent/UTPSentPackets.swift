/// The packets a uTP connection sent and the peer has not acknowledged, by sequence number
/// (a ring of `capacity` slots: at most that many packets are in flight).
struct UTPSentPackets {
    struct Entry {
        var seq: UInt16
        var kind: UTPPacket.Kind
        /// A slice of what the connection wrote (shared, not copied).
        var payload: ArraySlice<UInt8>
        var sentAt: Int64
        var transmissions: Int
        /// Acknowledged by a selective ack (not yet cumulatively).
        var sacked = false
        /// Declared lost and waiting to be sent again (not counted in flight).
        var lost = false
    }

    let capacity: Int
    private var slots: [Entry?]
    /// Packets sent and acknowledged by neither kind of ack, nor lost (bytes).
    private(set) var flightBytes = 0
    private(set) var count = 0
    private(set) var lostCount = 0

    init(capacity: Int) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "a power of two")
        self.capacity = capacity
        slots = Array(repeating: nil, count: capacity)
    }

    var isFull: Bool { count >= capacity - 1 }

    subscript(seq: UInt16) -> Entry? {
        guard let entry = slots[Int(seq) & (capacity - 1)], entry.seq == seq else { return nil }
        return entry
    }

    mutating func insert(_ entry: Entry) {
        precondition(!isFull && self[entry.seq] == nil)
        slots[Int(entry.seq) & (capacity - 1)] = entry
        count += 1
        flightBytes += entry.payload.count
    }

    /// Removes `seq` (cumulatively acked); returns it.
    mutating func remove(_ seq: UInt16) -> Entry? {
        guard let entry = self[seq] else { return nil }
        slots[Int(seq) & (capacity - 1)] = nil
        count -= 1
        if entry.lost { lostCount -= 1 } else if !entry.sacked { flightBytes -= entry.payload.count }
        return entry
    }

    /// Marks `seq` selectively acked; returns the entry as it was if this is news.
    mutating func markSacked(_ seq: UInt16) -> Entry? {
        guard var entry = self[seq], !entry.sacked else { return nil }
        let before = entry
        if entry.lost { lostCount -= 1 } else { flightBytes -= entry.payload.count }
        entry.sacked = true
        entry.lost = false
        slots[Int(seq) & (capacity - 1)] = entry
        return before
    }

    /// Declares `seq` lost (to be sent again); false if it was acked or lost already.
    @discardableResult
    mutating func markLost(_ seq: UInt16) -> Bool {
        guard var entry = self[seq], !entry.sacked, !entry.lost else { return false }
        entry.lost = true
        flightBytes -= entry.payload.count
        lostCount += 1
        slots[Int(seq) & (capacity - 1)] = entry
        return true
    }

    /// Records a new transmission of a lost packet.
    mutating func resent(_ seq: UInt16, at now: Int64) {
        guard var entry = self[seq], entry.lost else { return }
        entry.lost = false
        entry.sentAt = now
        entry.transmissions += 1
        flightBytes += entry.payload.count
        lostCount -= 1
        slots[Int(seq) & (capacity - 1)] = entry
    }
}
