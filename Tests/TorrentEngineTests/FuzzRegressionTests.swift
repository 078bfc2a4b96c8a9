import BitTorrent
import Foundation
import Testing
@testable import TorrentEngine

/// Replays the resume data fuzzer's seed corpus and every crasher it found
/// (Fuzz/corpus/resumedata, Fuzz/crashers/resumedata) through the checks Fuzz/FuzzResumeData.swift
/// makes, so a fixed crash stays fixed.
@Suite("Fuzz regressions (engine)")
struct FuzzRegressionTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func inputs(_ kind: String) -> [URL] {
        ["corpus", "crashers"].flatMap { folder -> [URL] in
            let directory = fuzzDirectory.appendingPathComponent(folder).appendingPathComponent(kind)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { !$0.hasPrefix(".") }.sorted().map { directory.appendingPathComponent($0) }
        }
    }

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
