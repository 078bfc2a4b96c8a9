/// The allowed fast set of BEP 6: pieces a peer may request from us while choked, chosen
/// from its IPv4 /24 and the info hash, so that every client computes the same set and a
/// peer cannot collect more by reconnecting from the same network.
public enum AllowedFast {
    /// How many pieces we allow (libtorrent and the BEP's examples use 10 or fewer).
    public static let defaultCount = 10

    /// The first `count` distinct piece indices for `ipv4` (4 bytes) in a torrent of
    /// `pieceCount` pieces; empty when either is unusable.
    public static func set(ipv4: [UInt8], infoHash: InfoHash, pieceCount: Int, count: Int = defaultCount) -> [Int] {
        guard ipv4.count == 4, pieceCount > 0 else { return [] }
        let wanted = min(count, pieceCount)
        var x = [ipv4[0], ipv4[1], ipv4[2], 0] + infoHash.bytes
        var out: [Int] = []
        while out.count < wanted {
            x = SHA1.hash(x).bytes
            for i in 0..<5 where out.count < wanted {
                let y = x[(i * 4)..<(i * 4 + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let index = Int(y % UInt32(pieceCount))
                if !out.contains(index) { out.append(index) }
            }
        }
        return out
    }
}
