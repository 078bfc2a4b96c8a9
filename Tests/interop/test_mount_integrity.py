"""Data changed behind our back between two mounts, keeping its size and mtime (so the
resume data still vouches for it): a read of the changed piece through the mount gets EIO,
never the changed bytes; the rest reads correctly; the piece is fetched again from a
seeder and then reads right.

Runs in the session's private network namespace; processes are stopped by PID and mounts
unmounted at the end."""

from __future__ import annotations

import errno
import os
import time

import pytest

from mounts import FS_TIMEOUT, bounded, wait_until
from swarm import make_tree, torrentfs_create
from test_engine_swarm import lt_seeder

PIECE = 32768


def test_changed_data_is_never_served(tmp_path, procs, torrentfs_bin, mounter):
    root = make_tree(tmp_path / "src" / "Rot", {"a.bin": 8 * PIECE, "b.bin": 3 * PIECE + 5}, seed=31)
    torrent = tmp_path / "rot.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent, piece_length=str(PIECE))
    seeder = lt_seeder(procs, type("C", (), {"parent": tmp_path / "src"})(), torrent)
    data = tmp_path / "m" / "data"
    mount = mounter("m", data=data)
    mount.add(f"magnet:?xt=urn:btih:{info['infoHash']}&x.pe=127.0.0.1:{seeder.port}\n")
    wait_until(lambda: mount.path("Rot", "a.bin").exists(), 20, "the tree")
    source = (root / "a.bin").read_bytes()
    assert bounded(lambda: mount.path("Rot", "a.bin").read_bytes(), 30, "first read") == source
    mount.terminate()

    # Piece 3 of a.bin changes on disk; size and mtime stay, so resume data still trusts it.
    stored = data / "data" / info["infoHash"] / "Rot" / "a.bin"
    stat = stored.stat()
    with open(stored, "r+b") as f:
        f.seek(3 * PIECE + 100)
        f.write(b"\xff" * 16)
    os.utime(stored, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert stored.stat().st_size == stat.st_size

    mount = mounter("m", data=data)
    path = mount.path("Rot", "a.bin")
    wait_until(path.exists, 20, "the tree after the remount")
    # Peers are not kept across mounts: the seeder is named again (adding again merges it).
    mount.add(f"magnet:?xt=urn:btih:{info['infoHash']}&x.pe=127.0.0.1:{seeder.port}\n")

    def read_at(offset, size):
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    # Untouched pieces read from disk as they are.
    assert bounded(lambda: read_at(0, PIECE), FS_TIMEOUT, "piece 0") == source[:PIECE]
    # The changed piece: EIO, or (once fetched again) the right bytes; never the changed ones.
    try:
        got = bounded(lambda: read_at(3 * PIECE, PIECE), FS_TIMEOUT, "piece 3")
        assert got == source[3 * PIECE:4 * PIECE], "changed bytes were served"
    except OSError as e:
        assert e.errno == errno.EIO, e
    # The piece is fetched again from the seeder and reads right.
    deadline = time.monotonic() + 30
    while True:
        try:
            got = read_at(3 * PIECE, PIECE)
            break
        except OSError as e:
            assert e.errno == errno.EIO and time.monotonic() < deadline, e
            time.sleep(0.2)
    assert got == source[3 * PIECE:4 * PIECE]
