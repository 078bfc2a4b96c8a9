"""Disk full (RELIABILITY: storage and durability): a download into a filesystem too small
for it pauses with a clear error, keeps running, and completes once space returns.

The data directory is a 1 MiB tmpfs mounted by the test (root); growing it with
`mount -o remount,size=…` is the space coming back. Runs in the session's private
network namespace; the tmpfs is unmounted and every process stopped at the end."""

from __future__ import annotations

import subprocess
import time

from swarm import assert_same_tree, torrentfs_create
from test_engine_swarm import (TRANSFER_TIMEOUT, content, lt_seeder,  # noqa: F401 (fixture)
                               start_download, wait_exit_ok)


def test_download_pauses_when_the_disk_is_full_and_resumes(content, tmp_path, procs, torrentfs_bin):  # noqa: F811
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content.root, torrent)
    seeder = lt_seeder(procs, content, torrent)
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True, timeout=10)
    procs.add_cleanup(lambda: subprocess.run(["umount", "-l", str(small)], capture_output=True, timeout=10))

    dl = start_download(procs, torrentfs_bin, tmp_path, torrent, small, peers=[seeder.endpoint])
    # A clear error, and the process keeps running.
    dl.wait_for_output(lambda err: "torrent paused" in err and "No space left" in err, TRANSFER_TIMEOUT,
                       "the disk-full pause", stream="stderr")
    time.sleep(1)
    assert dl.poll() is None, f"download exited on a full disk\n{dl.tail()}"
    # Space returns: the download completes without help.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True, timeout=10)
    wait_exit_ok(dl, TRANSFER_TIMEOUT, "torrentfs download after space returned")
    assert "storage works again" in dl.stderr()
    assert_same_tree(content.root, small / content.name, "download resumed after a full disk")
