/// Message stream encryption (MSE/PE) for peer connections: mount `-o encryption=`, CLI
/// `--encryption`.
public enum EncryptionPolicy: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Plaintext BitTorrent only: encrypted handshakes are refused, none is tried.
    case off
    /// Outgoing: an encrypted handshake first (offering RC4 or plaintext after it), and
    /// at once a plaintext one if that fails; what worked is remembered per address.
    /// Incoming: both kinds taken; after an encrypted handshake, plaintext chosen when
    /// offered (as libtorrent does by default: RC4 halves loopback throughput), else RC4.
    case prefer
    /// Encrypted handshakes with RC4 only, both ways, over TCP and uTP; plaintext peers
    /// are refused.
    case require

    public var description: String { rawValue }
}
