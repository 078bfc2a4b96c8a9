import Foundation

/// The IPv4 default gateway, read from the kernel's routing table (`/proc/net/route`):
/// the gateway of the first up default route (destination and mask 0), lowest metric
/// first. Port mapping asks this router.
enum DefaultGateway {
    static let routeTable = "/proc/net/route"

    /// The gateway in `table` (the text of `/proc/net/route`), dotted.
    static func parse(_ table: String) -> String? {
        var best: (metric: Int, gateway: String)?
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            // Iface Destination Gateway Flags RefCnt Use Metric Mask …
            guard fields.count >= 8, fields[1] == "00000000", fields[7] == "00000000",
                  let flags = UInt32(fields[3], radix: 16), flags & 0x3 == 0x3,  // RTF_UP | RTF_GATEWAY
                  let raw = UInt32(fields[2], radix: 16), raw != 0, let metric = Int(fields[6]) else { continue }
            // The kernel prints the address in host (little-endian) order.
            let gateway = [raw & 0xFF, raw >> 8 & 0xFF, raw >> 16 & 0xFF, raw >> 24].map(String.init).joined(separator: ".")
            if best == nil || metric < best!.metric { best = (metric, gateway) }
        }
        return best?.gateway
    }

    static func current() -> String? {
        guard let table = try? String(contentsOfFile: routeTable, encoding: .utf8) else { return nil }
        return parse(table)
    }
}
