"""Disk full (RELIABILITY: storage and durability), tried as a new user would.

- `torrentfs download` into a filesystem too small for the torrent exits non-zero with
  one clear line (it used to log once and then show `paused` forever);
- a mount keeps the torrent paused, shows the error in `.status`, fails the reads that
  wait for missing data at once with EIO (not after the read timeout), still serves what
  is verified, and resumes by itself once space returns;
- `torrentfs serve` answers 503 with the reason for missing data while paused, and
  serves the file once space returns.

The data directory is a small tmpfs mounted by the test (root); growing it with
`mount -o remount,size=…` is the space coming back. Runs in the session's private
network namespace; the tmpfs is unmounted and every process stopped at the end."""

from __future__ import annotations

import errno
import hashlib
import subprocess
import time

import pytest

from mounts import wait_until
from swarm import assert_same_tree, torrentfs_create
from test_engine_swarm import (TRANSFER_TIMEOUT, content, lt_seeder,  # noqa: F401 (fixture)
                               start_download)
from test_serve import Served

# Far below the mount's read timeout: a paused torrent's reader must not wait it out.
PROMPT_FAILURE = 10.0


def small_tmpfs(tmp_path, procs, name: str, size: str = "1m"):
    path = tmp_path / name
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True, timeout=10)
    procs.add_cleanup(lambda: subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10))
    return path


def grow(path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(path)], check=True, timeout=10)


def answer(served, path: str, status: int, timeout: float, what: str):
    """GET `path` until it is answered with `status`; the response and its body."""
    deadline = time.monotonic() + timeout
    while True:
        response, body = served.request("GET", path)
        if response.status == status:
            return response, body
        assert time.monotonic() < deadline, f"{what}: got {response.status}\n{served.proc.tail()}"
        time.sleep(0.2)


def test_download_exits_with_one_clear_line_when_the_disk_is_full(content, tmp_path, procs, torrentfs_bin):  # noqa: F811
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content.root, torrent)
    seeder = lt_seeder(procs, content, torrent)
    small = small_tmpfs(tmp_path, procs, "small")
    dl = start_download(procs, torrentfs_bin, tmp_path, torrent, small, peers=[seeder.endpoint], verbose="")
    rc = dl.wait(TRANSFER_TIMEOUT)
    assert rc is not None, f"download still running on a full disk\n{dl.tail()}"
    assert rc != 0, f"download exited 0 on a full disk\n{dl.tail()}"
    errors = [line for line in dl.stderr().splitlines() if "No space left" in line]
    assert len(errors) == 1, f"expected one line naming the full disk\n{dl.tail()}"
    assert "cannot store data" in errors[0], errors[0]


def test_mount_pauses_fails_readers_at_once_and_resumes(content, tmp_path, procs, torrentfs_bin, mounter):  # noqa: F811
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent)
    seeder = lt_seeder(procs, content, torrent)
    small = small_tmpfs(tmp_path, procs, "small")
    m = mounter("full", data=small, opts=["read_timeout=120"])
    m.add(f"magnet:?xt=urn:btih:{info['infoHash']}&x.pe={seeder.endpoint}\n")
    m.wait_folder(content.name)
    big = m.path(content.name, "b.bin")

    def read_all():
        with open(big, "rb") as f:
            return f.read()

    start = time.monotonic()
    with pytest.raises(OSError) as failure:
        read_all()
    took = time.monotonic() - start
    assert failure.value.errno == errno.EIO, failure.value
    assert took < PROMPT_FAILURE, f"the reader of a paused torrent waited {took:.1f}s"
    torrent_status = m.torrent(info["infoHash"])
    assert torrent_status["state"] == "paused", torrent_status
    assert "No space left" in (torrent_status["error"] or ""), torrent_status
    # Another read of missing data fails at once too, and the mount is still up.
    start = time.monotonic()
    with pytest.raises(OSError):
        read_all()
    assert time.monotonic() - start < 2.0, "a second read of a paused torrent waited"
    assert m.proc.poll() is None

    grow(small)
    wait_until(lambda: m.torrent(info["infoHash"])["state"] != "paused", 60, "the torrent resuming",
               interval=0.2, detail=m.log)
    data = read_all()
    assert hashlib.sha256(data).digest() == hashlib.sha256((content.root / "b.bin").read_bytes()).digest()
    assert m.torrent(info["infoHash"]).get("error") is None


def test_serve_answers_503_while_paused_and_serves_after(content, tmp_path, procs, torrentfs_bin):  # noqa: F811
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent)
    seeder = lt_seeder(procs, content, torrent)
    small = small_tmpfs(tmp_path, procs, "small")
    served = Served(procs, torrentfs_bin, tmp_path, seeder.port, torrent, data=small)
    path = f"/t/{info['infoHash']}/b.bin"
    # The first request starts the download; the disk fills while it streams (its body
    # cannot be completed: the connection closes) or before it starts (503).
    try:
        served.request("GET", path)
    except Exception:
        pass
    response, body = answer(served, path, 503, TRANSFER_TIMEOUT, "a 503 from a paused torrent")
    assert b"No space left" in body, body
    assert response.getheader("Retry-After")
    grow(small)
    response, body = answer(served, path, 200, 60, "serve resuming once space returns")
    assert body == (content.root / "b.bin").read_bytes()


def test_cache_evicts_to_resume_a_mount_on_a_full_disk(tmp_path, procs, torrentfs_bin, mounter):
    """A cache bigger than the disk: when the disk fills, eviction frees room and the
    paused torrent resumes by itself; a sequential reader never sees an error."""
    from swarm import make_tree
    root = make_tree(tmp_path / "src" / "Film", {"film.bin": 24 << 20}, seed=8)
    torrent = tmp_path / "film.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent, piece_length=str(256 << 10))
    seeder = lt_seeder(procs, type("C", (), {"parent": tmp_path / "src"})(), torrent)
    small = small_tmpfs(tmp_path, procs, "small", size="12m")
    m = mounter("full", data=small, opts=["cache_size=64M", "readahead=2M"])
    m.add(f"magnet:?xt=urn:btih:{info['infoHash']}&x.pe={seeder.endpoint}\n")
    m.wait_folder("Film")
    digest = hashlib.sha256()
    with open(m.path("Film", "film.bin"), "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256((root / "film.bin").read_bytes()).digest()
    assert m.status()["cache"]["evictions"] > 0
