"""The engine over IPv6 loopback, and tracker scrapes.

- torrentfs downloads from a libtorrent seeder that listens only on [::1], and
  seeds to a libtorrent leecher that dials it at [::1] (our listener is the
  dual-stack wildcard);
- the mount's `.status` shows what opentracker answers to a scrape (HTTP and
  UDP): `completed` comes only from scrapes, never from announces.

Runs in the session's private network namespace (conftest.py). Every process is
stopped by PID and every mount unmounted at the end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

from swarm import LtPeer, assert_same_tree, free_port, start_opentracker, torrentfs_create, wait_tcp
from test_engine_swarm import (SEED_CHECK_TIMEOUT, TRANSFER_TIMEOUT, content, lt_seeder,  # noqa: F401 (fixture)
                               start_download, start_seed, wait_exit_ok)


def test_download_from_ipv6_only_seeder(content, tmp_path, procs, torrentfs_bin):  # noqa: F811
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content.root, torrent)
    seeder = LtPeer(procs, "lt-seed6", content.parent, torrent=torrent, listen="[::1]:0")
    seeder.wait_listening()
    seeder.wait_seeding(SEED_CHECK_TIMEOUT)
    out = tmp_path / "out"
    dl = start_download(procs, torrentfs_bin, tmp_path, torrent, out, peers=[f"[::1]:{seeder.port}"])
    wait_exit_ok(dl, TRANSFER_TIMEOUT, "torrentfs download over ::1")
    assert_same_tree(content.root, out / content.name, "torrentfs download over ::1")
    seeder.proc.stop()
    incoming = {e["ip"] for e in seeder.events() if e.get("event") == "incoming_connection"}
    assert incoming == {"::1"}, incoming


def test_seed_to_libtorrent_over_ipv6(content, tmp_path, procs, torrentfs_bin):  # noqa: F811
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent)
    port = free_port()
    start_seed(procs, torrentfs_bin, tmp_path, torrent, content.parent, port)
    wait_tcp("::1", port)
    save = tmp_path / "lt-out"
    leecher = LtPeer(procs, "lt-leech6", save, magnet=f"magnet:?xt=urn:btih:{info['infoHash']}",
                     listen="[::1]:0", connect=[f"[::1]:{port}"])
    leecher.wait_seeding(TRANSFER_TIMEOUT)
    leecher.proc.stop()
    assert_same_tree(content.root, save / content.name, "libtorrent leecher over ::1")


@pytest.mark.parametrize("scheme", ["http", "udp"])
def test_mount_status_shows_scrape_counts(scheme, content, tmp_path, procs, torrentfs_bin, mounter):  # noqa: F811
    port = free_port()
    url = f"http://127.0.0.1:{port}/announce" if scheme == "http" else f"udp://127.0.0.1:{port}"
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent, trackers=[url])
    tracker = start_opentracker(procs, tmp_path, [info["infoHash"]], port=port)
    lt_seeder(procs, content, torrent)
    tracker.wait_registered(info["infoHash"], seeds=1)
    mnt = mounter(scheme).mnt
    subprocess.run(["cp", str(torrent), str(mnt / ".add")], check=True, timeout=20)
    deadline = time.monotonic() + 30
    entry = {}
    while time.monotonic() < deadline:
        status = json.loads((mnt / ".status").read_text())
        trackers = status["torrents"][0]["trackers"]
        entry = trackers[0] if trackers else {}
        if entry.get("completed") is not None:
            break
        time.sleep(0.2)
    assert entry.get("url") == url, entry
    assert entry.get("completed") is not None, f"no scrape result in .status after 30 s: {entry}"
    counts = tracker.scrape(info["infoHash"])
    assert entry["completed"] == counts.get("downloaded", 0), (entry, counts)
    assert entry["seeders"] >= 1, entry
    # The mount reads through the seeder it found on the tracker.
    name = next(iter(sorted(os.listdir(mnt / content.name))))
    first = mnt / content.name / name
    if first.is_file():
        assert first.read_bytes() == (content.root / name).read_bytes()


def test_udp_tracker_over_ipv6_from_the_listen_port(content, tmp_path, procs, torrentfs_bin):  # noqa: F811
    """Announces to a UDP tracker at [::1] leave from the session's one UDP port
    (the TCP listen port), and the IPv6 peers it names are dialed."""
    from udp_tracker import UDPTracker
    torrent = tmp_path / "data.torrent"
    seeder_torrent = tmp_path / "seed.torrent"
    torrentfs_create(torrentfs_bin, content.root, seeder_torrent)
    seeder = LtPeer(procs, "lt-seed6u", content.parent, torrent=seeder_torrent, listen="[::1]:0")
    seeder.wait_listening()
    seeder.wait_seeding(SEED_CHECK_TIMEOUT)
    tracker = UDPTracker("::1", peers=[("::1", seeder.port)])
    try:
        torrentfs_create(torrentfs_bin, content.root, torrent, trackers=[tracker.url])
        port = free_port()
        out = tmp_path / "out"
        dl = start_download(procs, torrentfs_bin, tmp_path, torrent, out, port=port)
        wait_exit_ok(dl, TRANSFER_TIMEOUT, "torrentfs download via a UDP tracker over ::1")
        assert_same_tree(content.root, out / content.name, "torrentfs download via UDP tracker over ::1")
        announces = tracker.announces()
        assert announces, f"no announce reached the tracker: {tracker.requests}"
        assert {(a[0], a[1], a[3]) for a in announces} == {("::1", port, port)}, announces
    finally:
        tracker.stop()


def test_seed_listens_on_tcp_and_udp_both_stacks(content, tmp_path, procs, torrentfs_bin):  # noqa: F811
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content.root, torrent)
    port = free_port()
    seed = start_seed(procs, torrentfs_bin, tmp_path, torrent, content.parent, port)
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        wait_tcp(host, port, proc=seed)
        # The UDP port is taken (by our dual-stack socket): binding it fails.
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            with pytest.raises(OSError):
                probe.bind((host, port))
