import BitTorrent
#if canImport(Glibc)
import Glibc
#endif

/// Eviction from the bounded cache (`Engine.enforceCacheLimit`).
extension Torrent {
    /// Forgets verified pieces the read coordinator already marked unverified: missing again
    /// in the picker (and not fetched again unless a reader waits for them), out of the
    /// verified bytes, and written so in the resume data before their space is released —
    /// no reader and no peer gets a released piece's zeros as data.
    func evict(_ pieces: [Int]) {
        guard var picker, let lengths = metainfo?.info.lengths else { return }
        for piece in pieces {
            guard let index = lengths.piece(piece), picker.have[piece] else { continue }
            picker.pieceLost(index)
            picker.setPriority(PiecePicker.skip, for: index)
            verifiedBytes -= Int64(lengths.pieceSize(index))
            toRelease.append(lengths.byteRange(index))
        }
        self.picker = picker
        updateState()
        releaseEvicted()
    }

    /// One release job at a time: the resume data as it is now, then every range evicted
    /// so far punched out; evictions made meanwhile wait for the next job, which starts
    /// as soon as this one ends. The resume data is saved again later (the files' times
    /// changed).
    private func releaseEvicted() {
        guard !releasing, !toRelease.isEmpty, let storage, let before = resumeWriter(syncData: false) else { return }
        releasing = true
        let ranges = toRelease
        toRelease = []
        let logger = logger
        let resume = resumePath
        engine.onDisk {
            // On a full disk the resume data cannot be written: it is removed instead (no
            // resume data trusts nothing; the next start hashes what is on disk).
            do { try before() } catch { unlink(resume) }
            for range in ranges { try storage.release(at: range.lowerBound, length: Int(range.count)) }
        }.whenComplete { [self] result in
            releasing = false
            if case .failure(let error) = result {
                logger.error("cannot release evicted pieces", metadata: ["error": "\(error)"])
            }
            resumeDirty = true  // saved at the next periodic save
            releaseEvicted()
            engine.releaseEnded()
        }
    }
}
