/// Why a torrent's metadata was refused.
public struct MetainfoError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case bencode(BencodeError)
        case notADictionary
        case missingInfo
        case infoNotADictionary
        case missingName
        case missingPieceLength
        case invalidPieceLength(Int64)
        case missingPieces
        case piecesNotMultipleOf20(Int)
        case pieceCountMismatch(expected: Int, actual: Int)
        case tooManyPieces(count: Int, limit: Int)
        case missingLength
        case bothLengthAndFiles
        case invalidFileLength(index: Int, length: Int64)
        case invalidFileEntry(index: Int)
        case emptyFiles
        case zeroTotalLength
        case totalLengthOverflow
        case pathTooDeep(index: Int, depth: Int, limit: Int)
        case tooManyFiles(count: Int, limit: Int)
        case infoHashMismatch(expected: InfoHash, actual: InfoHash)
    }

    public var reason: Reason

    public init(_ reason: Reason) { self.reason = reason }

    public var description: String {
        switch reason {
        case .bencode(let error): return error.description
        case .notADictionary: return "metainfo: the torrent is not a bencoded dictionary"
        case .missingInfo: return "metainfo: no 'info' dictionary"
        case .infoNotADictionary: return "metainfo: 'info' is not a dictionary"
        case .missingName: return "metainfo: 'info' has no 'name'"
        case .missingPieceLength: return "metainfo: 'info' has no 'piece length'"
        case .invalidPieceLength(let length): return "metainfo: invalid piece length \(length)"
        case .missingPieces: return "metainfo: 'info' has no 'pieces'"
        case .piecesNotMultipleOf20(let count): return "metainfo: 'pieces' is \(count) bytes, not a multiple of 20"
        case .pieceCountMismatch(let expected, let actual):
            return "metainfo: total length needs \(expected) pieces but 'pieces' has \(actual)"
        case .tooManyPieces(let count, let limit): return "metainfo: \(count) pieces exceeds the limit of \(limit)"
        case .missingLength: return "metainfo: 'info' has neither 'length' nor 'files'"
        case .bothLengthAndFiles: return "metainfo: 'info' has both 'length' and 'files'"
        case .invalidFileLength(let index, let length): return "metainfo: file \(index) has invalid length \(length)"
        case .invalidFileEntry(let index): return "metainfo: file \(index) is malformed"
        case .emptyFiles: return "metainfo: 'files' is empty"
        case .zeroTotalLength: return "metainfo: total length is zero"
        case .totalLengthOverflow: return "metainfo: total length overflows"
        case .pathTooDeep(let index, let depth, let limit):
            return "metainfo: file \(index) path has \(depth) elements, over the limit of \(limit)"
        case .tooManyFiles(let count, let limit): return "metainfo: \(count) files exceeds the limit of \(limit)"
        case .infoHashMismatch(let expected, let actual):
            return "metainfo: metadata hashes to \(actual), expected \(expected)"
        }
    }
}

/// One file of a torrent, with its place in the torrent's byte stream.
public struct TorrentFile: Hashable, Sendable {
    /// Sanitized path relative to the torrent's folder (at least one element).
    public var path: [String]
    public var length: Int64
    /// Offset of the file's first byte in the concatenation of all files.
    public var offset: Int64
    /// BEP 47 padding: counted in offsets, hidden from users, never stored.
    public var isPadding: Bool
    /// BEP 47 attributes as given (`p` pad, `x` executable, `h` hidden, `l` symlink).
    public var attributes: String

    public init(path: [String], length: Int64, offset: Int64, isPadding: Bool = false, attributes: String = "") {
        self.path = path
        self.length = length
        self.offset = offset
        self.isPadding = isPadding
        self.attributes = attributes
    }

    public var byteRange: Range<Int64> { offset..<(offset + length) }
}

/// The `info` dictionary: everything the info hash covers.
public struct InfoDictionary: Hashable, Sendable {
    /// Most pieces accepted (2²¹, twice libtorrent's default `max_pieces`).
    public static let maxPieceCount = 1 << 21
    /// Largest piece length accepted: a piece must fit in memory to be verified.
    public static let maxPieceLength: Int64 = 256 << 20
    /// Most path elements in one file path.
    public static let maxPathDepth = 100
    /// Most files in one torrent.
    public static let maxFileCount = 1 << 20

    /// Sanitized torrent name: the folder (or single file) name.
    public var name: String
    public var pieceLength: Int
    public var pieceHashes: [Digest20]
    /// Every file in torrent order, padding included; see `visibleFiles`.
    public var files: [TorrentFile]
    public var isPrivate: Bool
    /// True for the single-file form (`length` instead of `files`).
    public var isSingleFile: Bool
    public var lengths: Lengths

    /// Files users see: padding removed.
    public var visibleFiles: [TorrentFile] { files.filter { !$0.isPadding } }
    public var totalLength: Int64 { lengths.totalLength }

    /// Parses and validates an `info` dictionary value.
    public init(_ value: BValue) throws(MetainfoError) {
        guard let dict = value.dictionaryValue else { throw MetainfoError(.infoNotADictionary) }
        guard let rawName = (dict["name.utf-8"]?.bytesValue).flatMap({ String(validating: $0, as: UTF8.self) != nil ? $0 : nil })
                ?? dict["name"]?.bytesValue else { throw MetainfoError(.missingName) }
        name = PathSanitizer.element(rawName) ?? PathSanitizer.emptyReplacement

        guard let pieceLength = dict["piece length"]?.integerValue else { throw MetainfoError(.missingPieceLength) }
        guard pieceLength > 0, pieceLength <= InfoDictionary.maxPieceLength else {
            throw MetainfoError(.invalidPieceLength(pieceLength))
        }
        self.pieceLength = Int(pieceLength)

        guard let pieces = dict["pieces"]?.bytesValue else { throw MetainfoError(.missingPieces) }
        guard pieces.count % 20 == 0 else { throw MetainfoError(.piecesNotMultipleOf20(pieces.count)) }
        guard pieces.count / 20 <= InfoDictionary.maxPieceCount else {
            throw MetainfoError(.tooManyPieces(count: pieces.count / 20, limit: InfoDictionary.maxPieceCount))
        }

        isPrivate = dict["private"]?.integerValue == 1
        var files: [TorrentFile] = []
        var total: Int64 = 0
        switch (dict["length"], dict["files"]) {
        case (.some, .some):
            throw MetainfoError(.bothLengthAndFiles)
        case (.some(let lengthValue), nil):
            guard let length = lengthValue.integerValue, length >= 0 else {
                throw MetainfoError(.invalidFileLength(index: 0, length: lengthValue.integerValue ?? -1))
            }
            isSingleFile = true
            total = length
            files = [TorrentFile(path: [name], length: length, offset: 0,
                                 attributes: dict["attr"]?.stringValue ?? "")]
        case (nil, .some(let filesValue)):
            guard let list = filesValue.listValue else { throw MetainfoError(.invalidFileEntry(index: 0)) }
            guard !list.isEmpty else { throw MetainfoError(.emptyFiles) }
            guard list.count <= InfoDictionary.maxFileCount else {
                throw MetainfoError(.tooManyFiles(count: list.count, limit: InfoDictionary.maxFileCount))
            }
            isSingleFile = false
            var paths: [[String]] = []
            paths.reserveCapacity(list.count)
            for (index, entry) in list.enumerated() {
                guard let lengthValue = entry["length"]?.integerValue else {
                    throw MetainfoError(.invalidFileEntry(index: index))
                }
                guard lengthValue >= 0 else { throw MetainfoError(.invalidFileLength(index: index, length: lengthValue)) }
                let rawPath = InfoDictionary.pathElements(entry["path.utf-8"]) ?? InfoDictionary.pathElements(entry["path"])
                guard let rawPath else { throw MetainfoError(.invalidFileEntry(index: index)) }
                guard rawPath.count <= InfoDictionary.maxPathDepth else {
                    throw MetainfoError(.pathTooDeep(index: index, depth: rawPath.count, limit: InfoDictionary.maxPathDepth))
                }
                let attributes = entry["attr"]?.stringValue ?? ""
                let isPadding = attributes.contains("p")
                    || (rawPath.count == 2 && rawPath[0] == Array(".pad".utf8))
                    || (rawPath.last.map { $0.starts(with: Array("_____padding_file_".utf8)) } ?? false)
                paths.append(PathSanitizer.path(rawPath))
                let (sum, overflow) = total.addingReportingOverflow(lengthValue)
                guard !overflow else { throw MetainfoError(.totalLengthOverflow) }
                files.append(TorrentFile(path: [], length: lengthValue, offset: total, isPadding: isPadding,
                                         attributes: attributes))
                total = sum
            }
            // Padding never reaches a listing, so only visible files compete for names.
            let visible = files.indices.filter { !files[$0].isPadding }
            let unique = PathSanitizer.deduplicate(visible.map { paths[$0] })
            for (slot, index) in visible.enumerated() { files[index].path = unique[slot] }
            for index in files.indices where files[index].isPadding { files[index].path = paths[index] }
        case (nil, nil):
            throw MetainfoError(.missingLength)
        }
        guard total > 0, let lengths = Lengths(totalLength: total, pieceLength: self.pieceLength) else {
            throw MetainfoError(.zeroTotalLength)
        }
        guard lengths.pieceCount == pieces.count / 20 else {
            throw MetainfoError(.pieceCountMismatch(expected: lengths.pieceCount, actual: pieces.count / 20))
        }
        self.lengths = lengths
        self.files = files
        pieceHashes = stride(from: 0, to: pieces.count, by: 20).map { Digest20(pieces[$0..<($0 + 20)])! }
    }

    /// A list of byte strings, or nil when the value is not one.
    private static func pathElements(_ value: BValue?) -> [[UInt8]]? {
        guard let list = value?.listValue else { return nil }
        var elements: [[UInt8]] = []
        for item in list {
            guard let bytes = item.bytesValue else { return nil }
            elements.append(bytes)
        }
        return elements
    }

    /// The expected SHA-1 of a piece.
    public func hash(of piece: PieceIndex) -> Digest20 { pieceHashes[piece.value] }
}

/// A parsed .torrent file (BEP 3, v1), with the info hash of the exact bytes received.
public struct Metainfo: Hashable, Sendable {
    /// Largest .torrent file accepted.
    public static let maxFileSize = 64 << 20

    public var info: InfoDictionary
    public var infoHash: InfoHash
    /// The bencoded info dictionary exactly as received (what ut_metadata serves).
    public var infoBytes: [UInt8]
    public var announce: String?
    /// BEP 12 tiers, as given (empty when absent).
    public var announceList: [[String]]
    /// BEP 19 web seeds (`url-list`).
    public var webSeeds: [String]
    public var creationDate: Int64?
    public var comment: String?
    public var createdBy: String?
    public var encoding: String?

    /// Tracker tiers to use: `announce-list` when present (BEP 12), else `announce`.
    public var trackerTiers: [[String]] {
        if !announceList.isEmpty { return announceList }
        return announce.map { [[$0]] } ?? []
    }

    /// Parses a .torrent file. Unsorted or duplicate keys are tolerated.
    public init(bytes: [UInt8]) throws(MetainfoError) {
        let document: BencodeDocument
        do {
            document = try Bencode.decodeDocument(
                bytes, limits: BencodeLimits(maxInputSize: Metainfo.maxFileSize, requireCanonicalKeys: false))
        } catch {
            throw MetainfoError(.bencode(error))
        }
        guard let root = document.value.dictionaryValue else { throw MetainfoError(.notADictionary) }
        guard let infoValue = root["info"], let span = document.topLevelSpans[Array("info".utf8)] else {
            throw MetainfoError(.missingInfo)
        }
        info = try InfoDictionary(infoValue)
        infoBytes = Array(bytes[span])
        infoHash = SHA1.hash(infoBytes)
        announce = root["announce"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        announceList = (root["announce-list"]?.listValue ?? []).compactMap { tier in
            let urls = (tier.listValue ?? []).compactMap { $0.stringValue }.filter { !$0.isEmpty }
            return urls.isEmpty ? nil : urls
        }
        switch root["url-list"] {
        case .bytes(let url)?: webSeeds = String(validating: url, as: UTF8.self).map { $0.isEmpty ? [] : [$0] } ?? []
        case .list(let urls)?: webSeeds = urls.compactMap { $0.stringValue }.filter { !$0.isEmpty }
        default: webSeeds = []
        }
        creationDate = root["creation date"]?.integerValue
        comment = root["comment.utf-8"]?.stringValue ?? root["comment"]?.stringValue
        createdBy = root["created by"]?.stringValue
        encoding = root["encoding"]?.stringValue
    }

    /// Metadata fetched with ut_metadata (BEP 9): only the info dictionary, which must hash
    /// to the expected info hash.
    public init(infoBytes: [UInt8], expected: InfoHash, trackers: [[String]] = [], webSeeds: [String] = [])
        throws(MetainfoError)
    {
        let actual = SHA1.hash(infoBytes)
        guard actual == expected else { throw MetainfoError(.infoHashMismatch(expected: expected, actual: actual)) }
        let value: BValue
        do {
            value = try Bencode.decode(infoBytes, limits: BencodeLimits(maxInputSize: Metainfo.maxFileSize,
                                                                        requireCanonicalKeys: false))
        } catch {
            throw MetainfoError(.bencode(error))
        }
        info = try InfoDictionary(value)
        self.infoBytes = infoBytes
        infoHash = actual
        announce = nil
        announceList = trackers
        self.webSeeds = webSeeds
        creationDate = nil
        comment = nil
        createdBy = nil
        encoding = nil
    }
}
