import Testing
@testable import TorrentEngine

@Suite("Deadline table")
struct DeadlineTableTests {
    /// The changes as "piece:deadline" strings ("-" for cleared), in order.
    static func render(_ changes: [DeadlineTable.Change]) -> [String] {
        changes.map { "\($0.piece):\($0.deadline.map(String.init) ?? "-")" }
    }

    @Test("the nearest holder's deadline is reported, and only when it changes")
    func nearestWins() {
        var table = DeadlineTable()
        var changes: [DeadlineTable.Change] = []
        table.hold(3, by: 1, until: 500, changes: &changes)
        table.hold(3, by: 2, until: 100, changes: &changes)
        table.hold(3, by: 3, until: 900, changes: &changes)  // farther: nothing new
        table.release(3, by: 3, changes: &changes)           // not the nearest: nothing new
        table.release(3, by: 2, changes: &changes)           // back to holder 1's
        table.release(3, by: 1, changes: &changes)           // nobody holds it
        table.release(3, by: 1, changes: &changes)           // twice: nothing
        #expect(Self.render(changes) == ["3:500", "3:100", "3:500", "3:-"])
        #expect(table.heldPieces.isEmpty)
    }

    @Test("a piece that arrived drops every hold without a change for the engine")
    func arrival() {
        var table = DeadlineTable()
        var changes: [DeadlineTable.Change] = []
        table.hold(7, by: 1, until: 10, changes: &changes)
        table.hold(8, by: 1, until: 20, changes: &changes)
        table.pieceArrived(7)
        table.release(7, by: 1, changes: &changes)
        #expect(Self.render(changes) == ["7:10", "8:20"])
        #expect(table.heldPieces == [8])
        #expect(table.deadline(of: 1, on: 8) == 20)
        #expect(table.deadline(of: 1, on: 7) == nil)
        // Held again after arriving (a recheck lost it): reported afresh.
        table.hold(7, by: 2, until: 30, changes: &changes)
        #expect(Self.render(changes).last == "7:30")
    }
}
