// libFuzzer target: metainfo parsing never crashes, and a parsed torrent is consistent:
// sanitized names cannot escape, offsets are contiguous, and the info bytes parse again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMetainfo(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let metainfo = try? Metainfo(bytes: bytes) else { return 0 }
    var offset: Int64 = 0
    for file in metainfo.info.files {
        if file.offset != offset { fatalError("file offsets are not contiguous") }
        offset += file.length
        for element in file.path where element.isEmpty || element == "." || element == ".." || element.contains("/")
            || element.utf8.contains(0) || element.utf8.count > PathSanitizer.maxNameBytes {
            fatalError("unsafe path element survived sanitizing: \(element)")
        }
    }
    if offset != metainfo.info.totalLength { fatalError("file lengths do not add up") }
    let visible = metainfo.info.visibleFiles.map { $0.path.map { Array($0.utf8) } }
    if Set(visible).count != visible.count { fatalError("duplicate paths survived") }
    guard (try? Metainfo(infoBytes: metainfo.infoBytes, expected: metainfo.infoHash)) != nil else {
        fatalError("info bytes of a parsed torrent do not parse again")
    }
    return 0
}
