import BitTorrent

/// `announce_peer` write tokens (BEP 5): a hash of the requester's IP with a secret that
/// changes every 5 minutes; a token made with the current or the previous secret is
/// accepted, so a token lives 5 to 10 minutes and only for the address it was given to.
struct WriteTokens {
    static let rotation: Int64 = 5 * 60 * 1_000_000_000
    static let length = 8

    private var current: [UInt8]
    private var previous: [UInt8]
    private var rotated: Int64

    init(now: Int64, using random: inout some RandomNumberGenerator) {
        current = (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
        previous = current
        rotated = now
    }

    mutating func rotateIfDue(now: Int64, using random: inout some RandomNumberGenerator) {
        guard now - rotated >= Self.rotation else { return }
        previous = current
        current = (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
        rotated = now
    }

    var nextRotation: Int64 { rotated + Self.rotation }

    private static func token(_ secret: [UInt8], _ ip: [UInt8]) -> [UInt8] {
        Array(SHA1.hash(secret + ip).bytes.prefix(length))
    }

    func token(for ip: [UInt8]) -> [UInt8] { Self.token(current, ip) }

    func isValid(_ token: [UInt8], for ip: [UInt8]) -> Bool {
        token == Self.token(current, ip) || token == Self.token(previous, ip)
    }
}
