import BitTorrent
import TorrentEngine

// libFuzzer target: a resume file as read at startup. Decoding never crashes; what decodes
// has at least one piece and re-encodes to bytes that decode to the same value and encode
// to the same bytes again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResumeData(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let resume = ResumeData(encoded: bytes) else { return 0 }
    if resume.have.count <= 0 || resume.have.setCount > resume.have.count { fatalError("bad bitfield") }
    guard let again = ResumeData(encoded: resume.encoded), again == resume else {
        fatalError("resume data did not survive a round trip")
    }
    if again.encoded != resume.encoded { fatalError("resume data encodes two ways") }
    return 0
}
