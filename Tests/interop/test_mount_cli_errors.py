"""Bad input to the mount's commands: each is refused with a clear one-line error and a
non-zero exit, and nothing is left mounted or running."""

from __future__ import annotations

import os
import subprocess

import pytest

from mounts import in_mount_table


def _run(torrentfs_bin, *args, timeout=30):
    return subprocess.run([str(torrentfs_bin), *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("options, message", [
    ("bogus", "unknown mount option bogus"),
    ("port=70000", "port=70000: not a port number"),
    ("data=relative/dir", "an absolute path is needed"),
    ("readahead=lots", "readahead=lots: not a size"),
    ("seed_ratio=-1", "seed_ratio=-1: not a ratio"),
    ("fetch_all=yes", "option fetch_all takes no value"),
    ("cache_size=1M", "cache_size=1M: not a size of at least 4M"),
    ("blocklist=rel.p2p", "blocklist=rel.p2p: an absolute path is needed"),
])
def test_bad_mount_options_are_refused(options, message, torrentfs_bin, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for foreground in ([], ["-f"]):
        proc = _run(torrentfs_bin, "mount", mnt, "-o", options, *foreground)
        assert proc.returncode != 0, proc
        assert message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not in_mount_table(mnt)


def test_mount_point_must_be_a_folder(torrentfs_bin, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    proc = _run(torrentfs_bin, "mount", target, "-o", f"data={tmp_path / 'data'},port=0")
    assert proc.returncode != 0 and "is not a folder" in proc.stderr, proc
    proc = _run(torrentfs_bin, "mount", tmp_path / "missing", "-o", f"data={tmp_path / 'data'},port=0")
    assert proc.returncode != 0 and "is not a folder" in proc.stderr, proc


def test_add_and_status_outside_a_mount(torrentfs_bin, tmp_path):
    proc = _run(torrentfs_bin, "status", tmp_path)
    assert proc.returncode != 0 and "is torrentfs mounted there?" in proc.stderr, proc
    proc = _run(torrentfs_bin, "add", tmp_path, "0123456789abcdef0123456789abcdef01234567")
    assert proc.returncode != 0 and "cannot open" in proc.stderr, proc
    assert not os.path.exists(tmp_path / ".add")


def test_helper_fake_mode_checks_and_mounts_nothing(torrentfs_bin, tmp_path):
    """mount(8) -f runs the helper with -f: check the options and the mount point, mount
    nothing, exit at once (as mount.torrentfs; `torrentfs mount -f` is the foreground)."""
    helper = tmp_path / "mount.torrentfs"
    helper.symlink_to(torrentfs_bin)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    data = tmp_path / "data"
    ok = subprocess.run([str(helper), "torrentfs", str(mnt), "-f", "-o", f"rw,data={data},port=0"],
                        capture_output=True, text=True, timeout=10)
    assert ok.returncode == 0, ok.stderr
    assert not in_mount_table(mnt)
    bad = subprocess.run([str(helper), "torrentfs", str(mnt), "-f", "-o", "bogus"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode != 0 and "unknown mount option bogus" in bad.stderr, bad.stderr
