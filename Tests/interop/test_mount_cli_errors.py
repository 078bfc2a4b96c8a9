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
