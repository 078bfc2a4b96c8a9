import ArgumentParser

/// `on` or `off`: the value of switches such as `--lsd` and `--natpmp` (as mount options
/// take `lsd=on`).
enum OnOff: String, ExpressibleByArgument, Sendable {
    case on, off
}
