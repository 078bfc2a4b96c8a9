/// Packets a uTP connection received ahead of a gap, held until the gap fills: slot i
/// holds packet `ack + 2 + i`'s payload (a ring of `capacity` slots; packets further
/// ahead are dropped). Its bitmap is the selective ack the connection sends. Payloads are
/// slices of the datagrams they came in (held, not copied).
struct UTPReorderBuffer {
    let capacity: Int
    private var slots: [ArraySlice<UInt8>?]
    /// Payload bytes held.
    private(set) var bytes = 0
    private(set) var count = 0
    /// Ring index of packet `ack + 1`.
    private var head = 0

    init(capacity: Int) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "a power of two")
        self.capacity = capacity
        slots = Array(repeating: nil, count: capacity)
    }

    /// Stores the payload of the packet `distance` (≥ 2) past the cumulative ack; false if
    /// it is too far ahead or held already.
    mutating func store(_ payload: ArraySlice<UInt8>, distance: Int) -> Bool {
        guard distance >= 2, distance <= capacity else { return false }
        let index = (head + distance - 1) & (capacity - 1)
        guard slots[index] == nil else { return false }
        slots[index] = payload
        bytes += payload.count
        count += 1
        return true
    }

    /// The cumulative ack moved one packet on: the slot of the new next packet is
    /// returned (its payload if it was held).
    mutating func advance() -> ArraySlice<UInt8>? {
        // slot `head` belonged to the packet just accepted in order (never stored).
        head = (head + 1) & (capacity - 1)
        guard let payload = slots[head] else { return nil }
        slots[head] = nil
        bytes -= payload.count
        count -= 1
        return payload
    }

    /// Whether the packet `distance` past the ack is held.
    func holds(distance: Int) -> Bool {
        guard distance >= 1, distance <= capacity else { return false }
        return slots[(head + distance - 1) & (capacity - 1)] != nil
    }

    /// The selective-ack bitmask (bit i: packet ack+2+i held), whole 32-bit words up to the
    /// last packet held, at most `maxBytes`; nil when nothing is held.
    func selectiveAck(maxBytes: Int) -> [UInt8]? {
        guard count > 0 else { return nil }
        let limit = min(capacity - 1, maxBytes * 8)
        var last = -1
        for bit in 0..<limit where holds(distance: bit + 2) { last = bit }
        guard last >= 0 else { return nil }
        var mask = [UInt8](repeating: 0, count: (last / 32 + 1) * 4)
        for bit in 0...last where holds(distance: bit + 2) { mask[bit / 8] |= 1 << UInt8(bit % 8) }
        return mask
    }
}
