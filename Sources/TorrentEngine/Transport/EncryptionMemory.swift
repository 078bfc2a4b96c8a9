import BitTorrent

/// What the engine knows about encrypted dials: each outgoing TCP attempt until its
/// BitTorrent handshake, and the addresses where only plaintext worked. Decides what to
/// dial next when an encrypted attempt fails before the handshake: under `prefer` a
/// plaintext dial at once (or, when S began with a zero byte, one more encrypted try:
/// libtorrent before 2.0.13 fails those one time in 256); under `require` one more
/// encrypted try. A value, tested without sockets; used on the engine's loop.
struct EncryptionMemory {
    /// The most addresses remembered as plaintext-only (a full set is cleared: the cost
    /// is one failed encrypted try per address).
    static let capacity = 10_000

    struct Attempt {
        let address: PeerAddress
        let encrypted: Bool
        /// This attempt is already a retry of a failed encrypted one.
        let retry: Bool
        var failure: MSEFailure?
    }

    private var attempts: [Int: Attempt] = [:]
    private(set) var plaintextOnly: Set<PeerAddress> = []

    /// Whether a first dial to `address` should be encrypted.
    func encryptFirst(_ address: PeerAddress, policy: EncryptionPolicy) -> Bool {
        switch policy {
        case .off: return false
        case .require: return true
        case .prefer: return !plaintextOnly.contains(address)
        }
    }

    mutating func dialing(_ id: Int, _ address: PeerAddress, encrypted: Bool, retry: Bool) {
        attempts[id] = Attempt(address: address, encrypted: encrypted, retry: retry)
    }

    /// A dial to `address` did not connect (its connection never became active).
    mutating func dialFailed(_ address: PeerAddress) {
        attempts = attempts.filter { $0.value.address != address }
    }

    mutating func failed(_ id: Int, _ failure: MSEFailure) {
        attempts[id]?.failure = failure
    }

    /// The BitTorrent handshake of connection `id` arrived: remember how it got there.
    mutating func handshaken(_ id: Int, policy: EncryptionPolicy) {
        guard let attempt = attempts.removeValue(forKey: id), policy == .prefer else { return }
        if attempt.encrypted {
            plaintextOnly.remove(attempt.address)
        } else if attempt.retry {
            if plaintextOnly.count >= Self.capacity { plaintextOnly.removeAll() }
            plaintextOnly.insert(attempt.address)
        }
    }

    /// Connection `id` closed before its handshake: dial again, encrypted (true) or not
    /// (false), or nil to let the address back off as usual.
    mutating func closed(_ id: Int, policy: EncryptionPolicy) -> Bool? {
        guard let attempt = attempts.removeValue(forKey: id), attempt.encrypted, let failure = attempt.failure,
              failure.refused == nil
        else { return nil }
        if !attempt.retry && (policy == .require || failure.secretHadLeadingZero) { return true }
        return policy == .prefer ? false : nil
    }
}
