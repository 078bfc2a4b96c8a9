"""Peers named by a tracker are dialed the moment its answer arrives, not at the
engine's next periodic tick (250 ms apart).

A UDP tracker (udp_tracker.py) answers each announce with the address of a fresh
listening socket; the test records when each answer left and when our client
connected to the address in it. Over several downloads (one announce each), every
dial follows its answer closely: a client that waited for its tick would be late
by up to 250 ms, on average 125 ms.

Runs in the session's private network namespace; the download is stopped by PID."""

from __future__ import annotations

import socket
import threading
import time

from swarm import free_port, torrentfs_create
from test_engine_swarm import content, start_download  # noqa: F401 (fixture)
from udp_tracker import UDPTracker

DOWNLOADS = 5
# Generous for a loaded machine, still well under the tick a late dial would wait for.
DIAL_WITHIN = 0.1


class Listener:
    """A listening socket that records when the first connection arrived."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.accepted_at = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        try:
            conn, _ = self.sock.accept()
            self.accepted_at = time.monotonic()
            conn.close()
        except OSError:
            pass


def test_tracker_peers_are_dialed_at_once(content, tmp_path, procs, torrentfs_bin):  # noqa: F811
    listeners = []

    def fresh_peer():
        listener = Listener()
        listeners.append(listener)
        return [("127.0.0.1", listener.port)]

    tracker = UDPTracker("127.0.0.1", peers_for_announce=fresh_peer)
    try:
        torrent = tmp_path / "data.torrent"
        torrentfs_create(torrentfs_bin, content.root, torrent, trackers=[tracker.url])
        for index in range(DOWNLOADS):
            # Defaults (uTP on): the listener speaks only TCP, so its dial is the raced one,
            # 25 ms behind the unanswered uTP SYN.
            dl = start_download(procs, torrentfs_bin, tmp_path, torrent, tmp_path / f"out{index}",
                                name=f"tfs-dl{index}", port=free_port())
            deadline = time.monotonic() + 20
            while (len(listeners) <= index or listeners[index].accepted_at is None) and time.monotonic() < deadline:
                time.sleep(0.02)
            dl.stop()
        delays = [(l.accepted_at - t) if l.accepted_at else None for l, t in zip(listeners, tracker.answered_at)]
        assert len(delays) == DOWNLOADS, f"announces: {tracker.answered_at}"
        assert all(d is not None for d in delays), f"a peer of an answer was never dialed: {delays}"
        print("dial delays after tracker answers:", delays)
        assert max(delays) < DIAL_WITHIN, f"dials waited after the tracker's answers: {delays}"
    finally:
        tracker.stop()
        for listener in listeners:
            listener.sock.close()
