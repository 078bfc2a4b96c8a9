import TorrentEngine

/// Scaling `TorrentStats.pieceMap` to a width.
public enum PieceMap {
    /// `width` cells: each of `map`'s cells repeated when there is more room than cells,
    /// runs of them merged when there is less (a merged cell is verified if all are, in
    /// flight if any is, else wanted if any is, else partly verified if any piece is
    /// verified). Empty when `map` is.
    public static func scale(_ map: String, to width: Int) -> [PiecePicker.MapCell] {
        let cells = map.map { PiecePicker.MapCell(rawValue: $0) ?? .missing }
        guard !cells.isEmpty, width > 0 else { return [] }
        return (0..<width).map { column in
            let start = column * cells.count / width
            let end = max(start + 1, (column + 1) * cells.count / width)
            return merge(cells[start..<end])
        }
    }

    static func merge(_ run: ArraySlice<PiecePicker.MapCell>) -> PiecePicker.MapCell {
        if run.allSatisfy({ $0 == .verified }) { return .verified }
        if run.contains(.inFlight) { return .inFlight }
        if run.contains(.wanted) { return .wanted }
        if run.contains(where: { $0 == .verified || $0 == .partly }) { return .partly }
        return .missing
    }
}
