"""Mounting torrentfs in tests: a mount in a subprocess (`torrentfs mount MNT -f`,
so its PID is known), bounded filesystem calls, the mount table, and unmounting by
every means there is. The `mounter` fixture (conftest.py) hands out `Mount`s and
unmounts them at teardown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from swarm import Proc, ProcGroup

# `mount -f` until the mount point is live.
MOUNT_TIMEOUT = 20.0
# Operations that must never wait on the network (ls, stat, .status, xattrs).
FS_TIMEOUT = 5.0
# The daemon's exit after SIGTERM or an unmount.
EXIT_TIMEOUT = 10.0
# Metadata of a magnet from a loopback peer; a folder appearing or renamed.
METADATA_TIMEOUT = 20.0


def bounded(fn: Callable, timeout: float, what: str):
    """fn() in a daemon thread, at most ``timeout`` seconds: a filesystem call
    that hangs fails the test instead of hanging it (the thread is released
    when the mount goes away at teardown)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    th = threading.Thread(target=run, daemon=True, name=f"bounded: {what}")
    th.start()
    th.join(timeout)
    if th.is_alive():
        raise AssertionError(f"{what}: no answer after {timeout}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _unescape_mount_path(field: str) -> str:
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def in_mount_table(mnt: Path) -> bool:
    """Whether ``mnt`` is in /proc/self/mounts (unlike os.path.ismount, this
    also sees a dead FUSE mount whose stat fails)."""
    target = os.path.realpath(mnt)
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split(" ")
            if len(fields) > 1 and _unescape_mount_path(fields[1]) == target:
                return True
    return False


def is_mount_point(mnt: Path) -> bool:
    """os.path.ismount, bounded (it stats the mount's root)."""
    return bounded(lambda: os.path.ismount(mnt), FS_TIMEOUT, f"stat of {mnt}")


def force_unmount(mnt: Path) -> None:
    """Teardown: unmount by every means there is (a file still open makes a
    plain unmount fail with EBUSY)."""
    for cmd in (["fusermount3", "-u", str(mnt)], ["fusermount3", "-uz", str(mnt)],
                ["umount", "-l", str(mnt)]):
        if not in_mount_table(mnt):
            return
        try:
            subprocess.run(cmd, capture_output=True, timeout=15)
        except subprocess.TimeoutExpired:
            pass


def wait_until(pred: Callable[[], bool], timeout: float, what: str, interval: float = 0.05,
               detail: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail()}")
        time.sleep(interval)


class Mount:
    """``torrentfs mount MNT -f -o data=DATA,port=0,natpmp=off,upnp=off,dht=off[,opts]``
    in a subprocess (no port mapping unless a test starts its own gateway and
    passes ``natpmp=on`` or ``upnp=on``; no DHT unless a test passes ``dht=on`` with its own
    local ``dht_router``)."""

    def __init__(self, procs: ProcGroup, bin_path: Path, mnt: Path, data: Path,
                 opts: Sequence[str] = (), name: str = "tfs-mount"):
        self.mnt = mnt
        self.data = data
        mnt.mkdir(parents=True, exist_ok=True)
        option_list = ",".join([f"data={data}", "port=0", "natpmp=off", "upnp=off", "dht=off", *opts])
        self.proc: Proc = procs.start(name, [bin_path, "mount", mnt, "-f", "-o", option_list])
        wait_until(lambda: in_mount_table(mnt) or self.proc.poll() is not None,
                   MOUNT_TIMEOUT, f"the mount at {mnt}", detail=self.proc.tail)
        assert self.proc.poll() is None, f"mount exited {self.proc.returncode}\n{self.proc.tail()}"
        assert is_mount_point(mnt), f"{mnt} is in the mount table but not a mount point"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def path(self, *parts: str) -> Path:
        return self.mnt.joinpath(*parts)

    # -- control files --

    def status(self, timeout: float = FS_TIMEOUT) -> dict:
        raw = bounded(lambda: self.path(".status").read_bytes(), timeout, "reading .status")
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise AssertionError(f".status is not JSON ({e}): {raw[:500]!r}")

    def torrent(self, info_hash: str) -> Optional[dict]:
        for t in self.status()["torrents"]:
            if t["infoHash"] == info_hash:
                return t
        return None

    def add(self, payload, append: bool = False, timeout: float = 30.0) -> None:
        """Write payload (str or bytes) to .add in one write and close it; an
        error of the write or the close is raised as OSError."""
        data = payload.encode() if isinstance(payload, str) else payload

        def go():
            flags = os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC)
            fd = os.open(self.path(".add"), flags)
            try:
                done = 0
                while done < len(data):
                    done += os.write(fd, data[done:])
            except OSError:
                try:
                    os.close(fd)
                except OSError:
                    pass
                raise
            os.close(fd)

        bounded(go, timeout, "writing .add")

    def listdir(self, *parts: str, timeout: float = FS_TIMEOUT) -> List[str]:
        return sorted(bounded(lambda: os.listdir(self.path(*parts)), timeout,
                              f"listing {'/'.join(parts) or 'the mount root'}"))

    def folders(self) -> List[str]:
        return [n for n in self.listdir() if n not in (".add", ".status")]

    def wait_folder(self, name: str, timeout: float = METADATA_TIMEOUT,
                    gone: Sequence[str] = ()) -> None:
        """Wait until the root lists ``name`` (and none of ``gone``)."""
        def ok():
            names = self.folders()
            return name in names and not any(g in names for g in gone)
        wait_until(ok, timeout, f"folder {name!r} in the mount (without {list(gone)})",
                   interval=0.1, detail=lambda: f"folders: {self.folders()}\n{self.proc.tail()}")

    # -- lifecycle --

    def terminate(self) -> int:
        """SIGTERM the daemon; it must unmount and exit 0 within EXIT_TIMEOUT."""
        self.proc.popen.send_signal(signal.SIGTERM)
        rc = self.proc.wait(EXIT_TIMEOUT)
        assert rc is not None, f"daemon still running {EXIT_TIMEOUT}s after SIGTERM\n{self.proc.tail()}"
        assert rc == 0, f"daemon exited {rc} after SIGTERM\n{self.proc.tail()}"
        assert not in_mount_table(self.mnt), f"{self.mnt} still mounted after the daemon exited"
        return rc

    def log(self) -> str:
        return self.proc.tail(80)
