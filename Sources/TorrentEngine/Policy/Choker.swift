/// Tit-for-tat choking (BEP 3 spirit, libtorrent's defaults): every round, the peers that
/// gave us the most (or, when seeding, took the most) are unchoked, plus one optimistic
/// unchoke that rotates every third round. A value; no clock, no sockets.
public struct Choker: Sendable {
    /// Regular unchoke slots.
    public var slots: Int
    /// Rounds per optimistic-unchoke rotation (rounds are 10 s: 30 s per optimistic peer).
    public static let optimisticEvery = 3

    public struct Candidate: Hashable, Sendable {
        public var key: Int
        public var interested: Bool
        /// Bytes per second they sent us (leeching) or we sent them (seeding).
        public var rate: Double

        public init(key: Int, interested: Bool, rate: Double) {
            self.key = key
            self.interested = interested
            self.rate = rate
        }
    }

    private var round = 0
    private var optimistic: Int?
    private var rotation = 0

    public init(slots: Int = 4) { self.slots = slots }

    /// The set of peers to unchoke this round. Peers not interested are never unchoked.
    public mutating func choose(_ candidates: [Candidate]) -> Set<Int> {
        let interested = candidates.filter(\.interested)
        let ranked = interested.sorted { ($0.rate, -$0.key) > ($1.rate, -$1.key) }
        var unchoked = Set(ranked.prefix(slots).map(\.key))
        let others = interested.map(\.key).filter { !unchoked.contains($0) }.sorted()
        if round % Choker.optimisticEvery == 0 || optimistic.map({ !others.contains($0) }) ?? true {
            if others.isEmpty {
                optimistic = nil
            } else {
                optimistic = others[rotation % others.count]
                rotation += 1
            }
        }
        round += 1
        if let optimistic { unchoked.insert(optimistic) }
        return unchoked
    }
}
