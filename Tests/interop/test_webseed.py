"""Web seeds (BEP 19) against nginx: a torrent whose only source is a web seed downloads
completely with `torrentfs download` (single-file: the URL is the file; multi-file: the
URL is the folder holding the torrent's folder) and streams through the mount at random
offsets; a web seed serving corrupted bytes for some pieces loses them to a libtorrent
peer, and no bad byte reaches a reader; a server that ignores Range (Python's
http.server answers 200 with the whole file) is dropped and the peer finishes the job.

Runs in the session's private network namespace; nginx and every other process are
stopped by PID; mounts unmounted."""

from __future__ import annotations

import hashlib
import os
import random
import sys

from mounts import bounded
from nginx import Nginx
from swarm import LtPeer, assert_same_tree, free_port, make_tree, torrentfs_create, wait_tcp
from test_engine_swarm import SEED_CHECK_TIMEOUT, TRANSFER_TIMEOUT, start_download, wait_exit_ok

PIECE = 64 * 1024
MULTI = {"clip.mp4": 3_000_017, "docs/read me.txt": 70_001, "docs/ü.bin": 500_000, "tiny": 5}


def create(torrentfs_bin, root, torrent, web_seed: str) -> dict:
    import json
    import subprocess
    out = subprocess.run([str(torrentfs_bin), "create", str(root), "-o", str(torrent), "--json",
                          "--piece-length", str(PIECE), "--web-seed", web_seed],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_single_and_multi_file_from_a_web_seed_only(tmp_path, procs, torrentfs_bin):
    served = tmp_path / "www"
    single = make_tree(served, {"film.bin": 2_500_003}, seed=1) / "film.bin"
    multi = make_tree(served / "Kit", MULTI, seed=2)
    web = Nginx(procs, served, tmp_path / "nginx")

    one = tmp_path / "one.torrent"
    create(torrentfs_bin, single, one, web.url("film.bin"))
    out1 = tmp_path / "out1"
    dl = start_download(procs, torrentfs_bin, tmp_path, one, out1, name="tfs-dl-single")
    wait_exit_ok(dl, TRANSFER_TIMEOUT, "download of a single-file torrent from a web seed")
    assert (out1 / "film.bin").read_bytes() == single.read_bytes()

    kit = tmp_path / "kit.torrent"
    create(torrentfs_bin, multi, kit, web.url())
    out2 = tmp_path / "out2"
    dl = start_download(procs, torrentfs_bin, tmp_path, kit, out2, name="tfs-dl-multi")
    wait_exit_ok(dl, TRANSFER_TIMEOUT, "download of a multi-file torrent from a web seed")
    assert_same_tree(multi, out2 / "Kit", "web seed download")


def test_mount_streams_from_a_web_seed(tmp_path, procs, torrentfs_bin, mounter):
    served = tmp_path / "www"
    multi = make_tree(served / "Kit", MULTI, seed=3)
    web = Nginx(procs, served, tmp_path / "nginx")
    kit = tmp_path / "kit.torrent"
    create(torrentfs_bin, multi, kit, web.url())
    m = mounter("m")
    m.add(kit.read_bytes())
    m.wait_folder("Kit")
    source = (multi / "clip.mp4").read_bytes()
    rng = random.Random(7)
    with open(m.path("Kit", "clip.mp4"), "rb") as f:
        for _ in range(8):
            offset = rng.randrange(len(source))
            f.seek(offset)
            got = bounded(lambda: f.read(100_000), 30, f"a read at {offset}")
            assert got == source[offset:offset + 100_000], f"wrong bytes at {offset}"
    assert bounded(lambda: m.path("Kit", "docs", "ü.bin").read_bytes(), 30, "a whole file") == \
        (multi / "docs" / "ü.bin").read_bytes()
    seeds = [p for p in m.torrent(hashlib_hex(kit, torrentfs_bin))["peers"] if p["transport"] == "http"]
    assert seeds and seeds[0]["downloaded"] > 0, seeds


def hashlib_hex(torrent, torrentfs_bin) -> str:
    import json
    import subprocess
    out = subprocess.run([str(torrentfs_bin), "info", str(torrent), "--json"], capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)["infoHash"]


def test_corrupt_web_seed_loses_to_a_peer(tmp_path, procs, torrentfs_bin, mounter):
    good = make_tree(tmp_path / "src" / "Kit", MULTI, seed=4)
    bad_root = tmp_path / "www"
    make_tree(bad_root / "Kit", MULTI, seed=4)
    # Corrupt three pieces' worth of clip.mp4 on the web server only.
    clip = bad_root / "Kit" / "clip.mp4"
    data = bytearray(clip.read_bytes())
    for piece in (0, 7, 20):
        data[piece * PIECE + 100] ^= 0xFF
    clip.write_bytes(bytes(data))
    web = Nginx(procs, bad_root, tmp_path / "nginx")
    kit = tmp_path / "kit.torrent"
    info = create(torrentfs_bin, good, kit, web.url())
    seeder = LtPeer(procs, "lt-seed", tmp_path / "src", torrent=kit)
    seeder.wait_listening()
    seeder.wait_seeding(SEED_CHECK_TIMEOUT)
    m = mounter("m")
    m.add(f"magnet:?xt=urn:btih:{info['infoHash']}&x.pe={seeder.endpoint}&ws={web.url()}\n")
    m.add(kit.read_bytes())
    m.wait_folder("Kit")
    got = bounded(lambda: m.path("Kit", "clip.mp4").read_bytes(), TRANSFER_TIMEOUT, "reading past bad web seed data")
    assert hashlib.sha256(got).digest() == hashlib.sha256((good / "clip.mp4").read_bytes()).digest()
    assert m.torrent(info["infoHash"])["hashFailures"] >= 1


def test_server_ignoring_range_is_dropped(tmp_path, procs, torrentfs_bin):
    good = make_tree(tmp_path / "src" / "Kit", MULTI, seed=5)
    port = free_port()
    server = procs.start("http-server", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                         "--directory", str(tmp_path / "src")])
    wait_tcp("127.0.0.1", port, proc=server)
    kit = tmp_path / "kit.torrent"
    create(torrentfs_bin, good, kit, f"http://127.0.0.1:{port}/")
    seeder = LtPeer(procs, "lt-seed", tmp_path / "src", torrent=kit, upload_limit=2_000_000)
    seeder.wait_listening()
    seeder.wait_seeding(SEED_CHECK_TIMEOUT)
    out = tmp_path / "out"
    dl = start_download(procs, torrentfs_bin, tmp_path, kit, out, peers=[seeder.endpoint])
    wait_exit_ok(dl, TRANSFER_TIMEOUT, "download with a web seed that ignores Range")
    assert_same_tree(good, out / "Kit", "download past a Range-less server")
    assert "web seed failed" in dl.stderr() and "HTTP 200" in dl.stderr(), dl.tail()
