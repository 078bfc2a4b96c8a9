/// A command-line failure: one line, printed by ArgumentParser as `Error: …`, exit 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) { self.description = description }
}
