"""Per-torrent control and peer filtering on a mount:

- extended attributes on a torrent's folder: `user.torrentfs.fetch_all` downloads the
  whole torrent with nobody reading; `user.torrentfs.download_limit` caps its rate and,
  set back to 0, lifts the cap; bad values, read-only and unknown names and other nodes
  get the documented errno; the settings survive a remount;
- `-o blocklist=FILE`: a seeder in a blocked range is never contacted, another one is
  used; an unreadable blocklist stops the mount with a clear error.

Runs in the session's private network namespace (libtorrent seeders on 127.0.0.2 and
127.0.0.3); processes are stopped by PID and mounts unmounted at the end."""

from __future__ import annotations

import errno
import os
import subprocess
import time

import pytest

from mounts import bounded, wait_until
from swarm import LtPeer, assert_same_tree, make_tree, torrentfs_create
from test_engine_swarm import SEED_CHECK_TIMEOUT, TRANSFER_TIMEOUT

LIMIT = b"user.torrentfs.download_limit"
FETCH_ALL = b"user.torrentfs.fetch_all"
FILES = {"one.bin": 2_000_003, "two/two.bin": 1_500_001, "three.txt": 3}


def seeder(procs, src, torrent, host="127.0.0.1", name="lt-seed"):
    peer = LtPeer(procs, name, src, torrent=torrent, listen=f"{host}:0")
    peer.wait_listening()
    peer.wait_seeding(SEED_CHECK_TIMEOUT)
    return peer


def stored_bytes(data) -> int:
    return sum(f.stat().st_blocks * 512 for f in (data / "data").rglob("*") if f.is_file())


def test_folder_xattrs_control_the_torrent(tmp_path, procs, torrentfs_bin, mounter):
    root = make_tree(tmp_path / "src" / "Ctl", FILES, seed=5)
    torrent = tmp_path / "ctl.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent)
    lt = seeder(procs, tmp_path / "src", torrent)
    data = tmp_path / "m" / "data"
    m = mounter("m", data=data)
    m.add(f"magnet:?xt=urn:btih:{info['infoHash']}&x.pe={lt.endpoint}\n")
    m.wait_folder("Ctl")
    folder = m.path("Ctl")
    wait_until(lambda: m.torrent(info["infoHash"])["totalSize"], 20, "the metadata")
    names = bounded(lambda: os.listxattr(folder), 10, "listxattr")
    assert "user.torrentfs.download_limit" in names and "user.torrentfs.fetch_all" in names, names
    assert os.getxattr(folder, FETCH_ALL) == b"0"
    assert os.getxattr(folder, LIMIT) == b"0"

    # Refusals, each with its errno, and nothing changes.
    for name, value, code in [(LIMIT, b"fast", errno.EINVAL), (FETCH_ALL, b"maybe", errno.EINVAL),
                              (b"user.torrentfs.progress", b"1", errno.EPERM),
                              (b"user.other", b"1", errno.ENOTSUP)]:
        with pytest.raises(OSError) as failure:
            os.setxattr(folder, name, value)
        assert failure.value.errno == code, (name, value, failure.value)
    with pytest.raises(OSError) as failure:
        os.setxattr(m.path("Ctl", "one.bin"), FETCH_ALL, b"1")
    assert failure.value.errno == errno.ENOTSUP, failure.value
    with pytest.raises(OSError) as failure:
        os.setxattr(folder, FETCH_ALL, b"1", os.XATTR_CREATE)
    assert failure.value.errno == errno.EEXIST, failure.value
    assert os.getxattr(folder, LIMIT) == b"0"
    time.sleep(1)
    assert stored_bytes(data) == 0, "nothing is fetched while nobody reads"

    # A cap of 64 KiB/s, then everything wanted: the cap holds while it is set.
    os.setxattr(folder, LIMIT, b"64K")
    assert os.getxattr(folder, LIMIT) == str(64 << 10).encode()
    os.setxattr(folder, FETCH_ALL, b"1")
    assert os.getxattr(folder, FETCH_ALL) == b"1"
    start = time.monotonic()
    wait_until(lambda: m.torrent(info["infoHash"])["verifiedBytes"] > 0, 20, "the first piece under the cap")
    time.sleep(3)
    took = time.monotonic() - start
    got = m.torrent(info["infoHash"])["downloaded"]
    # The bucket's burst (16 KiB) and one piece in flight per peer on top of the rate.
    assert got <= (64 << 10) * took + (1 << 20), f"{got} bytes in {took:.1f}s under a 64 KiB/s cap"
    # Lifted: the whole torrent arrives with nobody reading.
    os.setxattr(folder, LIMIT, b"0")
    wait_until(lambda: m.torrent(info["infoHash"])["progress"] == 1, TRANSFER_TIMEOUT, "the whole torrent",
               interval=0.2, detail=m.log)
    assert_same_tree(root, data / "data" / info["infoHash"] / "Ctl", "fetch_all through an xattr")

    # Kept across a remount; removing a setting gives the mount's default back.
    m.terminate()
    m2 = mounter("m2", data=data)
    m2.wait_folder("Ctl")
    assert os.getxattr(m2.path("Ctl"), FETCH_ALL) == b"1"
    os.removexattr(m2.path("Ctl"), FETCH_ALL)
    assert os.getxattr(m2.path("Ctl"), FETCH_ALL) == b"0"


def test_blocklist_keeps_a_seeder_away(tmp_path, procs, torrentfs_bin, mounter):
    root = make_tree(tmp_path / "src" / "Blk", {"data.bin": 700_001}, seed=6)
    torrent = tmp_path / "blk.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent)
    blocked = seeder(procs, tmp_path / "src", torrent, host="127.0.0.2", name="lt-blocked")
    allowed = seeder(procs, tmp_path / "src", torrent, host="127.0.0.3", name="lt-allowed")
    blocklist = tmp_path / "block.p2p"
    blocklist.write_text("# test\nevil seeder:127.0.0.2-127.0.0.2\n")
    m = mounter("m", opts=[f"blocklist={blocklist}"])
    m.add(f"magnet:?xt=urn:btih:{info['infoHash']}"
          f"&x.pe=127.0.0.2:{blocked.port}&x.pe=127.0.0.3:{allowed.port}\n")
    m.wait_folder("Blk")
    assert bounded(lambda: m.path("Blk", "data.bin").read_bytes(), TRANSFER_TIMEOUT, "the read") == \
        (root / "data.bin").read_bytes()
    blocked.proc.stop()
    allowed.proc.stop()
    assert [e for e in allowed.events() if e.get("event") == "incoming_connection"], "the allowed seeder was not used"
    assert not [e for e in blocked.events() if e.get("event") == "incoming_connection"], \
        "the blocked seeder was contacted"


def test_unreadable_blocklist_stops_the_mount(tmp_path, torrentfs_bin):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = subprocess.run([str(torrentfs_bin), "mount", str(mnt), "-o",
                             f"data={tmp_path / 'data'},port=0,blocklist={tmp_path / 'missing.p2p'}"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "cannot read blocklist" in result.stderr, result.stderr
    assert not os.path.ismount(mnt)
