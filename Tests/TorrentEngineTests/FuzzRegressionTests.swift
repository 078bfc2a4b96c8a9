import BitTorrent
import Foundation
import TestSupport
import Testing
@testable import TorrentEngine

/// Replays the resume data fuzzer's seed corpus and every crasher it found
/// (Fuzz/corpus/resumedata, Fuzz/crashers/resumedata) through the checks Fuzz/FuzzResumeData.swift
/// makes, so a fixed crash stays fixed.
@Suite("Fuzz regressions (engine)")
struct FuzzRegressionTests {
    static func inputs(_ kind: String) -> [URL] { FuzzInputs.files(kind) }

    @Test("the corpus is there")
    func corpusExists() {
        #expect(!Self.inputs("resumedata").isEmpty)
    }

    @Test("resume data inputs round-trip", arguments: inputs("resumedata"))
    func resumeData(_ file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        guard let resume = ResumeData(encoded: bytes) else { return }
        #expect(resume.have.count > 0 && resume.have.setCount <= resume.have.count)
        let again = try #require(ResumeData(encoded: resume.encoded))
        #expect(again == resume)
        #expect(again.encoded == resume.encoded)
    }
}
