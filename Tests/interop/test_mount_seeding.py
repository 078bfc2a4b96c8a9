"""Seeding while mounted: what a mount has verified goes to other peers.

A libtorrent seeder serves the content to a mount, which reads every file through
FUSE; the seeder is stopped; a libtorrent leecher that knows only the mount's listen
port (from `.status`) then downloads everything from the mount, and its copy is
checked byte for byte. Runs in the session's private network namespace."""

from __future__ import annotations

import json
import time

from swarm import LtPeer, assert_same_tree, torrentfs_create
from test_engine_swarm import TRANSFER_TIMEOUT, content, lt_seeder  # noqa: F401 (fixture)


def test_mount_seeds_what_it_has_read(content, tmp_path, procs, torrentfs_bin, mounter):  # noqa: F811
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent)
    seeder = lt_seeder(procs, content, torrent)

    m = mounter("seeding")
    mnt = m.mnt
    magnet = f"magnet:?xt=urn:btih:{info['infoHash']}&dn={content.name}&x.pe=127.0.0.1:{seeder.port}"
    (mnt / ".add").write_text(magnet + "\n")
    # Read every file through the mount: all pieces become verified.
    for path in sorted(content.root.rglob("*")):
        if path.is_file():
            copy = mnt / content.name / path.relative_to(content.root)
            assert copy.read_bytes() == path.read_bytes(), copy
    status = json.loads((mnt / ".status").read_text())
    torrent_status = status["torrents"][0]
    assert torrent_status["progress"] == 1, torrent_status
    port = status["listenPort"]
    assert port > 0, status
    seeder.proc.stop()

    save = tmp_path / "lt-out"
    leecher = LtPeer(procs, "lt-leech", save, magnet=f"magnet:?xt=urn:btih:{info['infoHash']}",
                     connect=[f"127.0.0.1:{port}"])
    leecher.wait_seeding(TRANSFER_TIMEOUT)
    leecher.proc.stop()
    assert_same_tree(content.root, save / content.name, "libtorrent leecher served by the mount")
    uploaded = json.loads((mnt / ".status").read_text())["torrents"][0]["uploaded"]
    assert uploaded >= content.size, (uploaded, content.size)


def test_seed_ratio_zero_uploads_nothing(content, tmp_path, procs, torrentfs_bin, mounter):  # noqa: F811
    """`-o seed_ratio=0`: the mount downloads but never uploads; a leecher that can
    reach only the mount gets nothing."""
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent)
    seeder = lt_seeder(procs, content, torrent)
    m = mounter("noseed", opts=["seed_ratio=0"])
    (m.mnt / ".add").write_text(
        f"magnet:?xt=urn:btih:{info['infoHash']}&dn={content.name}&x.pe=127.0.0.1:{seeder.port}\n")
    for path in sorted(content.root.rglob("*")):
        if path.is_file():
            assert (m.mnt / content.name / path.relative_to(content.root)).read_bytes() == path.read_bytes()
    seeder.proc.stop()
    port = json.loads((m.mnt / ".status").read_text())["listenPort"]
    leecher = LtPeer(procs, "lt-leech", tmp_path / "lt-out", torrent=torrent, connect=[f"127.0.0.1:{port}"])
    leecher.wait_event(lambda e: e.get("event") == "status" and e["peers"], TRANSFER_TIMEOUT,
                       "a connection to the mount")
    time.sleep(3)
    assert leecher.last_status()["total_payload_download"] == 0, leecher.last_status()
    assert json.loads((m.mnt / ".status").read_text())["torrents"][0]["uploaded"] == 0
