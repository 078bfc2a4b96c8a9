"""Listing and opening at once, many times, while torrents are added and while a
remounted mount brings its torrents back, under CPU load, through both ways of
mounting (`torrentfs mount MNT -f -o data=…,port=…` and the mount(8) helper form
`mount.torrentfs torrentfs MNT -o …`). A file that a listing showed must open:
never ENOENT. No peers are needed: opening a file does not wait for data.

Runs in the session's private network namespace; every process is stopped by PID
and every mount unmounted at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from mounts import EXIT_TIMEOUT, FS_TIMEOUT, MOUNT_TIMEOUT, bounded, force_unmount, in_mount_table, wait_until
from swarm import make_tree, torrentfs_create
from test_mount import daemon_pids, pid_alive

TORRENTS = 6
ROUNDS = 5


def make_torrents(torrentfs_bin, root: Path):
    made = []
    for index in range(TORRENTS):
        tree = root / f"src{index}" / f"stress-{index}"
        make_tree(tree, {"a.bin": 40_000 + index, f"dir{index}/b.bin": 70_001, "c.txt": 9}, seed=index)
        torrent = root / f"stress-{index}.torrent"
        torrentfs_create(torrentfs_bin, tree, torrent)
        made.append(torrent)
    return made


def walk_and_open(mnt: Path) -> int:
    """List the root and every folder below it; open every file listed. Returns the
    number of files opened; any error (ENOENT above all) propagates."""
    opened = 0
    stack = [mnt]
    while stack:
        folder = stack.pop()
        for entry in os.scandir(folder):
            if folder == mnt and entry.name in (".add", ".status"):
                continue
            if entry.is_dir():
                stack.append(Path(entry.path))
            else:
                os.close(os.open(entry.path, os.O_RDONLY))
                opened += 1
    return opened


def burn_cpu(procs):
    """Two busy processes (this machine has two cores)."""
    return [procs.start(f"burn{i}", [sys.executable, "-c", "while True: pass"]) for i in range(2)]


def exercise(mnt: Path, torrents, add: bool) -> None:
    for index, torrent in enumerate(torrents):
        if add:
            subprocess.run(["cp", str(torrent), str(mnt / ".add")], check=True, timeout=FS_TIMEOUT + 10)
        # Right after the add (or right after the remount): everything listed opens.
        opened = bounded(lambda: walk_and_open(mnt), FS_TIMEOUT * 4, "list and open")
        if add:
            assert opened == 3 * (index + 1), opened


def test_list_and_open_race_foreground_form(procs, mounter, tmp_path, torrentfs_bin):
    torrents = make_torrents(torrentfs_bin, tmp_path / "src")
    burners = burn_cpu(procs)
    data = tmp_path / "fg" / "data"
    try:
        mount = mounter("fg", data=data)
        exercise(mount.mnt, torrents, add=True)
        for _ in range(ROUNDS):
            subprocess.run(["fusermount3", "-u", str(mount.mnt)], timeout=15)
            wait_until(lambda: mount.proc.poll() is not None, EXIT_TIMEOUT, "the daemon's exit")
            mount = mounter("fg", data=data)
            for _ in range(5):
                exercise(mount.mnt, torrents, add=False)
    finally:
        for burner in burners:
            burner.stop()


def test_list_and_open_race_helper_form(procs, tmp_path, torrentfs_bin):
    torrents = make_torrents(torrentfs_bin, tmp_path / "src")
    link_dir = tmp_path / "sbin"
    link_dir.mkdir()
    helper = link_dir / "mount.torrentfs"
    helper.symlink_to(torrentfs_bin)
    mnt, data = tmp_path / "helper" / "mnt", tmp_path / "helper" / "data"
    mnt.mkdir(parents=True)

    def cleanup():
        force_unmount(mnt)
        for pid in daemon_pids(mnt):
            os.kill(pid, 15)
    procs.add_cleanup(cleanup)

    def mount_helper():
        proc = subprocess.run([str(helper), "torrentfs", str(mnt), "-o", f"data={data},port=0"],
                              capture_output=True, text=True, timeout=MOUNT_TIMEOUT + 10)
        assert proc.returncode == 0, proc.stderr
        assert in_mount_table(mnt)
        return daemon_pids(mnt)[0]

    burners = burn_cpu(procs)
    try:
        pid = mount_helper()
        exercise(mnt, torrents, add=True)
        for _ in range(ROUNDS):
            subprocess.run(["fusermount3", "-u", str(mnt)], check=True, timeout=15)
            wait_until(lambda: not pid_alive(pid), EXIT_TIMEOUT, "the daemon's exit")
            pid = mount_helper()
            for _ in range(5):
                exercise(mnt, torrents, add=False)
    finally:
        for burner in burners:
            burner.stop()
