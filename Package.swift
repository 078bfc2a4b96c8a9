// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "torrentfs",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "torrentfs", targets: ["torrentfs"]),
        .library(name: "BitTorrent", targets: ["BitTorrent"]),
        .library(name: "TorrentEngine", targets: ["TorrentEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // Codecs: pure values, Foundation only (the SHA-1 it needs for info hashes is its own).
        .target(name: "BitTorrent"),
        .target(
            name: "TorrentEngine",
            dependencies: [
                "BitTorrent",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "torrentfs",
            dependencies: [
                "BitTorrent",
                "TorrentEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "BitTorrentTests", dependencies: ["BitTorrent"]),
        .testTarget(
            name: "TorrentEngineTests",
            dependencies: ["TorrentEngine", "BitTorrent", .product(name: "Crypto", package: "swift-crypto")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
