import ArgumentParser
import TorrentEngine

/// `--encryption prefer|require|off`.
extension EncryptionPolicy: ExpressibleByArgument {}
