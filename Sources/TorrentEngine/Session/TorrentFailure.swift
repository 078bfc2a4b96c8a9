/// A torrent could not complete.
public struct TorrentFailure: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
