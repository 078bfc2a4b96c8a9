"""The bounded cache (`-o cache_size=SIZE`): a mount with a 64 MiB cache reads a 256 MiB
torrent end to end and correctly while the data directory's disk use (allocated blocks,
sampled every few milliseconds) never goes above the limit plus two pieces; `.status`
shows the cache; evicted pieces are fetched again when read; and a remount after eviction
does not trust evicted pieces: with the seeder gone, an evicted region fails with EIO
(never zeros) while the cached regions still read right.

Runs in the session's private network namespace; processes are stopped by PID and mounts
unmounted at the end."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time

import pytest

from mounts import bounded, wait_until
from swarm import torrentfs_create
from test_engine_swarm import lt_seeder

MiB = 1 << 20
SIZE = 256 * MiB
LIMIT = 64 * MiB
PIECE = 256 * 1024
READ_TIMEOUT = 180.0


def allocated(root) -> int:
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


class DiskWatch(threading.Thread):
    """The largest allocation of the data files seen while it runs."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root = root
        self.peak = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, allocated(self.root))
            time.sleep(0.005)

    def stop(self) -> int:
        self.done.set()
        self.join(5)
        return self.peak


def read_range(path, offset: int, length: int) -> bytes:
    """Read through the mount, not the kernel's page cache of the file."""
    with open(path, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        f.seek(offset)
        return f.read(length)


def test_cache_keeps_disk_use_under_the_limit(tmp_path, procs, torrentfs_bin, mounter):
    root = tmp_path / "src" / "Big"
    root.mkdir(parents=True)
    with open(root / "film.bin", "wb") as f:
        for _ in range(SIZE // (16 * MiB)):
            f.write(os.urandom(16 * MiB))
    source = (root / "film.bin").read_bytes()
    torrent = tmp_path / "big.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent, piece_length=str(PIECE))
    seeder = lt_seeder(procs, type("C", (), {"parent": tmp_path / "src"})(), torrent)
    data = tmp_path / "m" / "data"
    m = mounter("m", data=data, opts=["cache_size=64M"])
    m.add(f"magnet:?xt=urn:btih:{info['infoHash']}&x.pe={seeder.endpoint}\n")
    m.wait_folder("Big")
    film = m.path("Big", "film.bin")

    watch = DiskWatch(data / "data")
    watch.start()
    digest = hashlib.sha256()

    def read_all():
        with open(film, "rb") as f:
            while chunk := f.read(4 * MiB):
                digest.update(chunk)

    bounded(read_all, READ_TIMEOUT, "reading 256 MiB through a 64 MiB cache")
    peak = watch.stop()
    assert digest.digest() == hashlib.sha256(source).digest(), "the bytes read differ from the source"
    assert peak <= LIMIT + 2 * PIECE, f"disk use reached {peak / MiB:.1f} MiB under a 64 MiB cache"
    cache = m.status()["cache"]
    assert cache["limit"] == LIMIT and cache["size"] <= LIMIT and cache["evictions"] > 0, cache

    # The start was evicted long ago: read again, it is fetched again and right.
    assert bounded(lambda: read_range(film, 0, 4 * MiB), 60, "re-reading the start") == source[:4 * MiB]

    m.terminate()
    seeder.proc.stop()
    m2 = mounter("m2", data=data, opts=["cache_size=64M", "read_timeout=3"])
    m2.wait_folder("Big")
    film = m2.path("Big", "film.bin")
    wait_until(lambda: m2.torrent(info["infoHash"])["pieceMap"], 30, "the check of the remount")
    status = m2.torrent(info["infoHash"])
    assert status["verifiedBytes"] <= LIMIT, f"the remount trusts {status['verifiedBytes']} bytes"
    # Cached regions read right (hashed on first read); an evicted one is never zeros.
    assert bounded(lambda: read_range(film, 0, MiB), 30, "the cached start") == source[:MiB]
    assert bounded(lambda: read_range(film, SIZE - MiB, MiB), 30, "the cached end") == source[SIZE - MiB:]
    with pytest.raises(OSError) as failure:
        bounded(lambda: read_range(film, SIZE // 2, 64 * 1024), 30, "an evicted region")
    assert failure.value.errno == errno.EIO, failure.value
