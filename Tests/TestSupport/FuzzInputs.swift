import Foundation

/// The fuzzers' seed corpora and the crashers they found (`Fuzz/corpus/KIND`,
/// `Fuzz/crashers/KIND`), replayed by each test target through its targets' checks.
public enum FuzzInputs {
    public static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    /// Every input of one fuzz target, corpus first, each folder sorted.
    public static func files(_ kind: String) -> [URL] {
        ["corpus", "crashers"].flatMap { folder -> [URL] in
            let folderURL = directory.appendingPathComponent(folder).appendingPathComponent(kind)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folderURL.path)) ?? []
            return names.filter { !$0.hasPrefix(".") }.sorted().map { folderURL.appendingPathComponent($0) }
        }
    }
}
