extension PiecePicker {
    /// One character per cell of pieces, for status views: the torrent's pieces split into
    /// at most `cells` runs of equal count (the last may be shorter).
    public enum MapCell: Character, Sendable {
        /// Every piece of the cell is verified.
        case verified = "#"
        /// Some piece of the cell is being downloaded (blocks requested or received).
        case inFlight = ">"
        /// Some piece of the cell is wanted and missing, none in flight.
        case wanted = "-"
        /// Some pieces verified, the others neither wanted nor in flight.
        case partly = "+"
        /// Nothing verified, wanted or in flight.
        case missing = "."
    }

    /// The piece map: `cells` characters at most (fewer when there are fewer pieces).
    public func map(cells: Int) -> String {
        let count = lengths.pieceCount
        guard count > 0, cells > 0 else { return "" }
        let perCell = (count + cells - 1) / cells
        var out = ""
        out.reserveCapacity(cells)
        var start = 0
        while start < count {
            let end = min(count, start + perCell)
            var had = 0
            var flying = false
            var wanted = false
            for piece in start..<end {
                if have[piece] { had += 1; continue }
                if isInProgress(piece) { flying = true } else if wants(piece) { wanted = true }
            }
            let cell: MapCell = had == end - start ? .verified : flying ? .inFlight : wanted ? .wanted
                : had > 0 ? .partly : .missing
            out.append(cell.rawValue)
            start = end
        }
        return out
    }
}
