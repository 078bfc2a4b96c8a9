import Foundation

/// Numbers as the view shows them.
public enum Format {
    /// `1.5 MiB`-style sizes (as `torrentfs status` prints them).
    public static func bytes(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// `1.5 MiB/s`.
    public static func rate(_ bytesPerSecond: Double) -> String {
        bytes(Int64(max(0, bytesPerSecond.isFinite ? bytesPerSecond : 0))) + "/s"
    }

    /// `0:42`, `12:05`, `3:02:01`; past a day `2d 03h`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "-" }
        guard seconds < 100 * 86_400 else { return ">99d" }
        let s = Int(seconds.rounded())
        if s >= 86_400 { return String(format: "%dd %02dh", s / 86_400, s / 3600 % 24) }
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
            : String(format: "%d:%02d", s / 60, s % 60)
    }

    /// `37.4%` of a fraction 0…1.
    public static func percent(_ fraction: Double) -> String {
        String(format: "%.1f%%", min(1, max(0, fraction.isFinite ? fraction : 0)) * 100)
    }
}
