"""Local service discovery (BEP 14) against libtorrent, with no tracker, DHT
or peer hint: the only way the two clients can meet is an announce on the
multicast group.

The rig: a veth host (its own network namespace) joined to the test's
namespace by a veth pair; on each side the multicast range is routed to the
veth with that side's address as source (without ``src`` an announce leaves
from 0.0.0.0 and libtorrent drops it as out of network; without a route a send
fails with ENETUNREACH). torrentfs runs on our side, a libtorrent peer with LSD
on in the veth host. The groups reach nothing but these two namespaces.

- torrentfs finds libtorrent: a libtorrent seed that never dials out
  (``seeding_outgoing_connections`` off) serves a torrentfs ``download`` of a
  bare magnet (no ``tr=``, no ``x.pe``): torrentfs must have dialed it, and
  could only have learned its address from its LSD announce.
- libtorrent finds torrentfs: a torrentfs ``seed`` (seeds never dial) serves a
  libtorrent leecher of the bare magnet, which records the peer as found by
  LSD.
- With ``--lsd off`` nobody is found in the same rig.
- Two torrentfs processes in one namespace (the group routed over loopback)
  find each other: the multicast loop is on.

Every byte is checked against the source; every process is bounded in time
and stopped by PID."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from swarm import (LtPeer, VethHost, assert_same_tree, free_port, make_tree,
                   torrentfs_create, torrentfs_info, wait_tcp)

FILES = {"lsd/a.bin": 1_500_007, "lsd/b.txt": 333}
# libtorrent announces 0, 2 and 6 s after a torrent starts, torrentfs too; a
# 1.5 MB transfer then takes well under a second. Bounds catch hangs only.
FIND_TIMEOUT = 30.0
SEED_CHECK_TIMEOUT = 30.0
# With LSD off, nothing may happen in this long (libtorrent's first three
# announces fall in it).
QUIET_SECONDS = 8.0


def multicast_host(procs, tag: str, subnet: int) -> VethHost:
    host = VethHost(tag, subnet=subnet)
    procs.add_cleanup(host.close)
    subprocess.run(["ip", "route", "add", "224.0.0.0/4", "dev", host.local_if, "src", host.local_addr],
                   check=True, capture_output=True, timeout=30)
    procs.add_cleanup(lambda: subprocess.run(["ip", "route", "del", "224.0.0.0/4", "dev", host.local_if],
                                             capture_output=True, timeout=30))
    host.exec_ip("route", "add", "224.0.0.0/4", "dev", host.remote_if, "src", host.remote_addr)
    return host


@pytest.fixture
def content(tmp_path: Path):
    root = make_tree(tmp_path / "src" / "lsd", {k.split("/", 1)[1]: v for k, v in FILES.items()}, seed=14)
    return root


def bare_magnet(info: dict) -> str:
    return f"magnet:?xt=urn:btih:{info['infoHash']}"


def test_torrentfs_finds_libtorrent_by_lsd(content, tmp_path, procs, torrentfs_bin):
    host = multicast_host(procs, "lsd1", subnet=141)
    torrent = tmp_path / "lsd.torrent"
    info = torrentfs_create(torrentfs_bin, content, torrent)
    seed = LtPeer(procs, "lt-lsd-seed", content.parent, torrent=torrent,
                  listen=f"{host.remote_addr}:{free_port()}", seed_outgoing=False, lsd=True, host=host)
    seed.wait_listening()
    seed.wait_seeding(SEED_CHECK_TIMEOUT)

    out = tmp_path / "out"
    out.mkdir()
    state = tmp_path / "state"
    started = time.monotonic()
    dl = procs.start("tfs-lsd-dl", [torrentfs_bin, "download", bare_magnet(info), "-o", out,
                                    "--state", state, "--lsd", "on", "--natpmp", "off", "-vv"])
    rc = dl.wait(FIND_TIMEOUT)
    elapsed = time.monotonic() - started
    assert rc == 0, f"download did not finish through LSD (rc {rc})\n{dl.tail()}\n{seed.proc.tail()}"
    assert_same_tree(content, out / "lsd", "torrentfs download found by LSD")
    # The seed never dials: the connection came from torrentfs, at our veth address.
    assert any(p.startswith("-TF") for p in seed.peer_ids_seen()), seed.proc.tail()
    assert seed.outgoing_connects() == []
    incoming = [e for e in seed.events() if e.get("event") == "peer_connect"]
    assert incoming and all("incoming connection" in e["message"] and e["ip"] == host.local_addr
                            for e in incoming), incoming
    print(f"LSD: bare magnet to complete download through LSD in {elapsed:.2f}s")


def test_libtorrent_finds_torrentfs_by_lsd(content, tmp_path, procs, torrentfs_bin):
    host = multicast_host(procs, "lsd2", subnet=142)
    torrent = tmp_path / "lsd.torrent"
    info = torrentfs_create(torrentfs_bin, content, torrent)
    port = free_port(host.local_addr)
    state = tmp_path / "seed-state"
    seed = procs.start("tfs-lsd-seed", [torrentfs_bin, "seed", torrent, "--data", content.parent,
                                        "--port", port, "--state", state, "--lsd", "on", "--natpmp", "off",
                                        "-vv"])
    wait_tcp(host.local_addr, port, proc=seed)
    seed.wait_for_output(lambda text: "data verified" in text, SEED_CHECK_TIMEOUT, "the seed's data check",
                         stream="stderr")

    save = tmp_path / "lt-out"
    leech = LtPeer(procs, "lt-lsd-leech", save, magnet=bare_magnet(info),
                   listen=f"{host.remote_addr}:{free_port()}", lsd=True, host=host)
    leech.wait_listening()
    leech.wait_event(lambda e: e.get("event") == "finished", FIND_TIMEOUT, "the download through LSD")
    assert_same_tree(content, save / "lsd", "libtorrent leecher that found torrentfs by LSD")
    # libtorrent dialed us (a torrentfs seed never dials) at the address and
    # port of our announce: it had no tracker, DHT or hint to learn them from.
    dials = [e for e in leech.events() if e.get("event") == "peer_connect"]
    assert dials and all("outgoing connection" in e["message"]
                         and (e["ip"], e["port"]) == (host.local_addr, port) for e in dials), dials
    assert any(p.startswith("-TF") for p in leech.peer_ids_seen())
    ours = [p for p in leech.peers_ever() if p["pid_prefix"].startswith("-TF")]
    assert all(p["from_lsd"] for p in ours), ours


def test_lsd_off_finds_nobody(content, tmp_path, procs, torrentfs_bin):
    """The same rig with ``--lsd off``: the libtorrent seed's announces are not
    heard, so nothing downloads."""
    host = multicast_host(procs, "lsd3", subnet=143)
    torrent = tmp_path / "lsd.torrent"
    info = torrentfs_create(torrentfs_bin, content, torrent)
    seed = LtPeer(procs, "lt-lsd-seed", content.parent, torrent=torrent,
                  listen=f"{host.remote_addr}:{free_port()}", seed_outgoing=False, lsd=True, host=host)
    seed.wait_listening()
    seed.wait_seeding(SEED_CHECK_TIMEOUT)
    out = tmp_path / "out"
    dl = procs.start("tfs-lsd-off", [torrentfs_bin, "download", bare_magnet(info), "-o", out,
                                     "--state", tmp_path / "state", "--lsd", "off", "--natpmp", "off"])
    assert dl.wait(QUIET_SECONDS) is None, f"download ended without peers?\n{dl.tail()}"
    assert not [e for e in seed.events() if e.get("event") == "peer_connect"]


def test_two_torrentfs_on_one_host_find_each_other(content, tmp_path, procs, torrentfs_bin):
    """Multicast loop: a torrentfs seed and a torrentfs download in the same
    namespace, the group routed over loopback (added here, removed at the end),
    meet through LSD alone."""
    subprocess.run(["ip", "route", "add", "224.0.0.0/4", "dev", "lo", "src", "127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    procs.add_cleanup(lambda: subprocess.run(["ip", "route", "del", "224.0.0.0/4", "dev", "lo"],
                                             capture_output=True, timeout=30))
    torrent = tmp_path / "lsd.torrent"
    info = torrentfs_create(torrentfs_bin, content, torrent)
    port = free_port()
    seed = procs.start("tfs-lsd-seed", [torrentfs_bin, "seed", torrent, "--data", content.parent, "--port", port,
                                        "--state", tmp_path / "seed-state", "--natpmp", "off", "--upnp", "off"])
    wait_tcp("127.0.0.1", port, proc=seed)
    seed.wait_for_output(lambda text: "data verified" in text, SEED_CHECK_TIMEOUT, "the seed's data check",
                         stream="stderr")
    out = tmp_path / "out"
    dl = procs.start("tfs-lsd-dl", [torrentfs_bin, "download", bare_magnet(info), "-o", out,
                                    "--state", tmp_path / "dl-state", "-vv"])
    rc = dl.wait(FIND_TIMEOUT)
    assert rc == 0, f"download did not finish through LSD (rc {rc})\n{dl.tail()}"
    assert_same_tree(content, out / "lsd", "torrentfs download from a torrentfs seed found by LSD")
    assert "LSD: peers" in dl.stderr(), dl.tail()
