/// Who a datagram on the shared UDP port is for, told from its first bytes alone (as
/// libtorrent does): the DHT speaks bencoded dictionaries, uTP has a fixed 20-byte header
/// with version 1, and UDP tracker answers start with a 32-bit action (0–3), so their first
/// byte is 0.
enum DatagramKind: Equatable, Sendable {
    case dht
    case utp
    case tracker

    /// Length of a BEP 29 uTP header.
    static let utpHeaderLength = 20
    /// Highest BEP 29 packet type (ST_SYN).
    static let utpMaxType: UInt8 = 4

    static func classify(_ bytes: some Collection<UInt8>) -> DatagramKind {
        guard let first = bytes.first else { return .tracker }
        if first == UInt8(ascii: "d") { return .dht }
        if bytes.count >= utpHeaderLength, first & 0x0F == 1, first >> 4 <= utpMaxType { return .utp }
        return .tracker
    }
}
