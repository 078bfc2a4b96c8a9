/// Local service discovery in the status document (`lsd`; absent when LSD is off).
public struct LSDStatus: Sendable, Codable, Hashable {
    /// Multicast groups joined (`239.192.152.143:6771`, `[ff15::efc0:988f]:6771`); empty
    /// when none could be (no multicast route).
    public var groups: [String]
    /// Announce datagrams sent, over all groups.
    public var announcesSent: Int
    /// Peers for our torrents learned from others' announces.
    public var peersFound: Int
    /// Announces dropped: malformed, or over the receive limit.
    public var dropped: Int
    /// Our own announces heard back from the group (the multicast loop works).
    public var ownHeard: Int

    public init(groups: [String], announcesSent: Int, peersFound: Int, dropped: Int, ownHeard: Int) {
        self.groups = groups
        self.announcesSent = announcesSent
        self.peersFound = peersFound
        self.dropped = dropped
        self.ownHeard = ownHeard
    }
}
