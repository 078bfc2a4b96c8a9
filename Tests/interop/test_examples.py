"""The programs in examples/ work: each is run against a local libtorrent seeder and its
output checked against the source data. Runs in the session's private network namespace."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from swarm import assert_same_tree, torrentfs_create
from test_engine_swarm import TRANSFER_TIMEOUT, content, lt_seeder  # noqa: F401 (fixture)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _magnet(info: dict, name: str, port: int) -> str:
    return f"magnet:?xt=urn:btih:{info['infoHash']}&dn={name}&x.pe=127.0.0.1:{port}"


def _largest(root: Path) -> Path:
    return max((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def test_example_download_uses_the_engine_as_a_library(content, tmp_path, procs, torrentfs_bin):  # noqa: F811
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent)
    seeder = lt_seeder(procs, content, torrent)
    example = Path(torrentfs_bin).parent / "example-download"
    out = tmp_path / "out"
    proc = subprocess.run([str(example), f"magnet:?xt=urn:btih:{info['infoHash']}", str(out),
                           f"127.0.0.1:{seeder.port}"], capture_output=True, text=True, timeout=TRANSFER_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done: " in proc.stdout, proc.stdout
    assert_same_tree(content.root, out / content.name, "examples/download")


def test_example_stream_py(content, tmp_path, procs, torrentfs_bin, mounter):  # noqa: F811
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent)
    seeder = lt_seeder(procs, content, torrent)
    m = mounter("stream")
    proc = subprocess.run(["/usr/bin/python3", str(EXAMPLES / "stream.py"), str(m.mnt),
                           _magnet(info, "Streamed", seeder.port)],
                          capture_output=True, text=True, timeout=TRANSFER_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    largest = _largest(content.root)
    assert f"sha256 {hashlib.sha256(largest.read_bytes()).hexdigest()}" in proc.stdout, proc.stdout


def test_example_mount_add_read_sh(content, tmp_path, procs, torrentfs_bin):  # noqa: F811
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent)
    seeder = lt_seeder(procs, content, torrent)
    data = tmp_path / "data"
    env = dict(os.environ, TORRENTFS=str(torrentfs_bin))
    proc = subprocess.run(["bash", str(EXAMPLES / "mount-add-read.sh"), _magnet(info, content.name, seeder.port),
                           str(data)], capture_output=True, text=True, timeout=TRANSFER_TIMEOUT, env=env)
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        largest = _largest(content.root).read_bytes()
        middle = len(largest) // 2 // 65536 * 65536
        assert hashlib.sha256(largest[middle:middle + 65536]).hexdigest() in proc.stdout, proc.stdout
        assert "no torrents" in proc.stdout, proc.stdout  # after the rmdir
    finally:
        # The script unmounts on exit; make sure no daemon or mount is left either way.
        mounts = [line.split()[1] for line in open("/proc/self/mounts") if "torrentfs-mnt." in line]
        for mnt in mounts:
            subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=10)
        assert not mounts, f"left mounted: {mounts}"
