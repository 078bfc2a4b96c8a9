// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "torrentfs",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "torrentfs", targets: ["torrentfs"]),
        .library(name: "BitTorrent", targets: ["BitTorrent"]),
        .library(name: "TorrentEngine", targets: ["TorrentEngine"]),
        .library(name: "TorrentFSCore", targets: ["TorrentFSCore"]),
        .library(name: "TorrentHTTP", targets: ["TorrentHTTP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // Codecs: pure values, Foundation only (the SHA-1 it needs for info hashes is its own).
        .target(name: "BitTorrent"),
        .target(
            name: "TorrentEngine",
            dependencies: [
                "BitTorrent",
                "CPosix",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            exclude: ["Picker/NOTES.md"]
        ),
        // libfuse3 through pkg-config, with a shim header fixing FUSE_USE_VERSION.
        // Linux calls Swift's Glibc module does not export (fallocate hole punching).
        .target(name: "CPosix"),
        .systemLibrary(name: "CFuse", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        // Filesystem logic without FUSE: inodes, tree, control files, read planning.
        .target(
            name: "TorrentFSCore",
            dependencies: ["BitTorrent", "TorrentEngine", .product(name: "Logging", package: "swift-log")]
        ),
        // The HTTP range server of `torrentfs serve` and `-o http=`, over the engine's readers.
        .target(
            name: "TorrentHTTP",
            dependencies: ["BitTorrent", "TorrentEngine",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        // The live status view as lines and escape sequences, without a terminal (`status --watch`).
        .target(name: "StatusView", dependencies: ["TorrentEngine"]),
        // The thin libfuse adapter: ops table, async replies, mount and unmount.
        .target(
            name: "TorrentFS",
            dependencies: ["TorrentFSCore", "CFuse", "TorrentEngine", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "torrentfs",
            dependencies: [
                "BitTorrent",
                "TorrentEngine",
                "TorrentFSCore",
                "TorrentFS",
                "TorrentHTTP",
                "StatusView",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // examples/: the engine as a library (run by Tests/interop/test_examples.py).
        .executableTarget(name: "example-download", dependencies: ["BitTorrent", "TorrentEngine"],
                          path: "examples/download"),
        // Helpers shared by the test targets (seeded random data).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "BitTorrentTests", dependencies: ["BitTorrent", "TestSupport"]),
        .testTarget(
            name: "TorrentFSCoreTests",
            dependencies: ["TorrentFSCore", "TorrentEngine", "BitTorrent", "TestSupport",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "StatusViewTests", dependencies: ["StatusView", "TorrentEngine"]),
        .testTarget(name: "TorrentHTTPTests", dependencies: ["TorrentHTTP", "TorrentEngine", "BitTorrent", "TestSupport",
                                                      .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "TorrentEngineTests",
            dependencies: ["TorrentEngine", "BitTorrent", "TestSupport", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "NIOEmbedded", package: "swift-nio")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
