import BitTorrent
import Crypto

/// SHA-1 of pieces with swift-crypto (SHA-NI where the CPU has it).
struct PieceHasher: Sendable {
    let info: InfoDictionary

    static func digest(_ bytes: [UInt8]) -> Digest20 {
        Digest20(Array(Insecure.SHA1.hash(data: bytes)))!
    }

    func verify(_ piece: PieceIndex, _ bytes: [UInt8]) -> Bool {
        PieceHasher.digest(bytes) == info.hash(of: piece)
    }
}
