import BitTorrent

/// The UTF-8 bytes of `text`.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Lowercase hex of `bytes`, for comparing digests with published vectors.
func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] })
}

/// The error `Bencode.decode` throws for `input`, or nil when it decodes.
func bencodeError(_ input: [UInt8], limits: BencodeLimits = .strict) -> BencodeError? {
    do {
        _ = try Bencode.decode(input, limits: limits)
        return nil
    } catch {
        return error
    }
}

func bencodeError(_ input: String, limits: BencodeLimits = .strict) -> BencodeError? {
    bencodeError(bytes(input), limits: limits)
}

/// The reason `Metainfo(bytes:)` refuses `input`, or nil when it parses.
func metainfoReason(_ input: [UInt8]) -> MetainfoError.Reason? {
    do {
        _ = try Metainfo(bytes: input)
        return nil
    } catch {
        return error.reason
    }
}

/// The reason `MagnetLink(parsing:)` refuses `text`, or nil when it parses.
func magnetReason(_ text: String) -> MagnetError.Reason? {
    do {
        _ = try MagnetLink(parsing: text)
        return nil
    } catch {
        return error.reason
    }
}
