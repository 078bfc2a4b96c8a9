/// Settings changed while the torrent runs (the mount's per-torrent extended attributes).
extension Torrent {
    /// The files to download: nil = all (or the magnet's `so=` selection), [] = none but
    /// what readers wait for. Takes effect at once: interest and requests follow.
    func setSelection(_ selected: [ClosedRange<Int>]?) {
        options.selectedFiles = selected
        guard var picker, let info = metainfo?.info else { return }
        for piece in info.lengths.pieces { picker.setPriority(PiecePicker.normalPriority, for: piece) }
        if let selected = selected ?? magnet?.selectedFiles { applySelection(selected, to: &picker, info: info) }
        self.picker = picker
        updateState()
        refreshPeers()
    }

    /// This torrent's download limit in bytes per second (nil = unlimited).
    func setDownloadLimit(_ limit: Int?) {
        options.downloadLimit = limit
        downloadBucket = TokenBucket(rate: limit, now: Engine.now())
        refreshPeers()
    }

    private func refreshPeers() {
        let now = Engine.now()
        for peer in peers.values where peer.session != nil {
            updateInterest(peer)
            fillRequests(peer, now: now)
        }
    }
}
