"""uTP (BEP 29) against real peers, in the session's loopback-only namespace.

- torrentfs downloads from a libtorrent seeder that speaks only uTP (TCP off
  both ways), with `torrentfs download` and through the mount;
- torrentfs seeds to a libtorrent leecher that speaks only uTP;
- two torrentfs instances over uTP (the mount's .status says "utp");
- hostile datagrams on our UDP port: garbage, bogus connection ids, a SYN
  flood and a peer that completes a handshake then never acks: the process
  stays up, its memory stays bounded and an honest uTP transfer completes.

libtorrent 2.0.8's uTP keeps the kernel's default 208 KiB socket buffers and
is slow on loopback with them; the libtorrent peers here get 4 MiB buffers
(`--socket-buffer`) so transfers finish within the time bounds.
Every downloaded byte is compared with the source; every process is bounded
in time and stopped by PID."""

from __future__ import annotations

import os
import random
import socket
import struct
import time
from pathlib import Path

import pytest

from swarm import LtPeer, assert_same_tree, free_port, make_tree, torrentfs_create, wait_tcp

CONTENT_FILES = {"u/one.bin": 3_000_017, "two.bin": 1_234_567, "tiny.txt": 9}
TRANSFER_TIMEOUT = 60.0
SEED_CHECK_TIMEOUT = 30.0
LT_BUFFER = 4 << 20
OUR_PEER_ID_PREFIX = "-TF"


def make_content(tmp_path: Path) -> Path:
    parent = tmp_path / "src"
    return make_tree(parent / "utp-data", CONTENT_FILES, seed=29)


def start_seed(procs, bin_path, tmp_path, torrent, data, port, extra=()):
    state = tmp_path / "state-seed"
    state.mkdir(parents=True, exist_ok=True)
    cmd = [bin_path, "seed", torrent, "--data", data, "--port", port, "--state", state,
           "--natpmp", "off", "--lsd", "off", "--dht", "off", "--utp", "on", "-v", *extra]
    proc = procs.start("tfs-seed", cmd)
    wait_tcp("127.0.0.1", port, proc=proc)
    return proc


def start_download(procs, bin_path, tmp_path, target, out, peers=(), name="tfs-dl"):
    state = tmp_path / f"state-{name}"
    state.mkdir(parents=True, exist_ok=True)
    cmd = [bin_path, "download", target, "-o", out, "--state", state, "--lsd", "off",
           "--dht", "off", "--utp", "on", "-v"]
    for p in peers:
        cmd += ["--peer", p]
    return procs.start(name, cmd)


def wait_exit_ok(proc, timeout, what):
    rc = proc.wait(timeout)
    assert rc is not None, f"{what}: still running after {timeout}s\n{proc.tail()}"
    assert rc == 0, f"{what}: exited {rc}\n{proc.tail()}"


def utp_seeder(procs, torrent, data_parent) -> LtPeer:
    seeder = LtPeer(procs, "lt-utp-seed", data_parent, torrent=torrent, transport="utp",
                    socket_buffer=LT_BUFFER)
    seeder.wait_listening()
    seeder.wait_seeding(SEED_CHECK_TIMEOUT)
    return seeder


def test_download_from_utp_only_libtorrent(tmp_path, procs, torrentfs_bin):
    """libtorrent with TCP off both ways: every byte comes over uTP."""
    root = make_content(tmp_path)
    torrent = tmp_path / "utp.torrent"
    torrentfs_create(torrentfs_bin, root, torrent)
    seeder = utp_seeder(procs, torrent, root.parent)
    out = tmp_path / "out"
    started = time.monotonic()
    dl = start_download(procs, torrentfs_bin, tmp_path, torrent, out,
                        peers=[f"127.0.0.1:{seeder.port}"])
    wait_exit_ok(dl, TRANSFER_TIMEOUT, "torrentfs download from a uTP-only seeder")
    elapsed = time.monotonic() - started
    assert_same_tree(root, out / root.name, "download over uTP")
    seeder.proc.stop()
    assert seeder.last_status()["total_payload_upload"] >= sum(CONTENT_FILES.values())
    print(f"uTP download from libtorrent: {elapsed:.2f} s")


def test_seed_to_utp_only_libtorrent(tmp_path, procs, torrentfs_bin):
    """A libtorrent leecher with TCP off both ways downloads everything from us."""
    root = make_content(tmp_path)
    torrent = tmp_path / "utp.torrent"
    torrentfs_create(torrentfs_bin, root, torrent)
    port = free_port()
    start_seed(procs, torrentfs_bin, tmp_path, torrent, root.parent, port)
    save = tmp_path / "lt-out"
    leecher = LtPeer(procs, "lt-utp-leech", save, torrent=torrent, transport="utp",
                     socket_buffer=LT_BUFFER, connect=[f"127.0.0.1:{port}"])
    leecher.wait_seeding(TRANSFER_TIMEOUT)
    leecher.proc.stop()
    assert_same_tree(root, save / root.name, "libtorrent leecher over uTP")
    seen = leecher.peer_ids_seen()
    assert seen and all(p.startswith(OUR_PEER_ID_PREFIX) for p in seen), seen


def test_mount_reads_from_utp_only_libtorrent(tmp_path, procs, torrentfs_bin, mounter):
    """Through the mount: a magnet naming only a uTP-only seeder (so every byte
    came over uTP); the files read through the mount equal the source."""
    root = make_content(tmp_path)
    torrent = tmp_path / "utp.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent)
    seeder = utp_seeder(procs, torrent, root.parent)
    mount = mounter("utp", opts=["utp=on", "lsd=off", "dht=off", "natpmp=off"])
    mount.add(f"magnet:?xt=urn:btih:{info['infoHash']}&x.pe=127.0.0.1:{seeder.port}")
    mount.wait_folder(root.name)
    for name, size in CONTENT_FILES.items():
        data = mount.path(root.name, name).read_bytes()
        assert len(data) == size and data == (root / name).read_bytes(), name


def test_two_torrentfs_over_utp(tmp_path, procs, torrentfs_bin, mounter):
    """Our own two instances: the mount dials the seed, uTP first, and gets it
    (the seed's upload is limited so the connection is seen in .status)."""
    root = make_content(tmp_path)
    torrent = tmp_path / "utp.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent)
    port = free_port()
    start_seed(procs, torrentfs_bin, tmp_path, torrent, root.parent, port, extra=["--upload-limit", "1M"])
    mount = mounter("pair", opts=["utp=on", "lsd=off", "dht=off", "natpmp=off"])
    mount.add(f"magnet:?xt=urn:btih:{info['infoHash']}&x.pe=127.0.0.1:{port}")
    mount.wait_folder(root.name)
    deadline = time.monotonic() + TRANSFER_TIMEOUT
    transports = []
    while time.monotonic() < deadline and not transports:
        transports = [p["transport"] for p in mount.torrent(info["infoHash"])["peers"]]
        time.sleep(0.05)
    assert transports == ["utp"], transports
    for name in CONTENT_FILES:
        assert mount.path(root.name, name).read_bytes() == (root / name).read_bytes(), name


@pytest.mark.parametrize("transport", ["utp", "tcp"])
def test_peer_reachable_over_one_transport_connects_within_2s(transport, tmp_path, procs,
                                                              torrentfs_bin):
    """uTP and TCP raced (TCP 25 ms behind): a seeder speaking only one of them accepts our
    connection within 2 s of starting the download (libtorrent's clock and ours are
    both CLOCK_MONOTONIC)."""
    root = make_content(tmp_path)
    torrent = tmp_path / "one.torrent"
    torrentfs_create(torrentfs_bin, root, torrent)
    seeder = LtPeer(procs, f"lt-{transport}-seed", root.parent, torrent=torrent,
                    transport=transport, socket_buffer=LT_BUFFER)
    seeder.wait_listening()
    seeder.wait_seeding(SEED_CHECK_TIMEOUT)
    out = tmp_path / "out"
    started = time.monotonic()
    dl = start_download(procs, torrentfs_bin, tmp_path, torrent, out,
                        peers=[f"127.0.0.1:{seeder.port}"])
    accepted = seeder.wait_event(lambda e: e.get("event") == "incoming_connection", 10.0,
                                 "our connection")
    wait_exit_ok(dl, TRANSFER_TIMEOUT, f"download from a {transport}-only seeder")
    assert_same_tree(root, out / root.name, f"download from a {transport}-only seeder")
    delay = accepted["t"] - started
    print(f"connected to a {transport}-only libtorrent seeder after {delay:.3f} s")
    assert delay < 2.0, delay


# ---------------------------------------------------------------------------
# Hostile datagrams
# ---------------------------------------------------------------------------

def utp_packet(kind, conn_id, seq, ack, payload=b"", wnd=1 << 20):
    ts = int(time.monotonic() * 1e6) & 0xFFFFFFFF
    return struct.pack(">BBHIIIHH", kind << 4 | 1, 0, conn_id, ts, 0, wnd, seq, ack) + payload


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def silent_peer(port: int, info_hash: bytes) -> socket.socket:
    """Opens a uTP connection, sends a BitTorrent handshake, then never acks anything."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2.0)
    recv_id = random.randrange(0, 0xFFFE)
    s.sendto(utp_packet(4, recv_id, 1, 0), ("127.0.0.1", port))
    reply, _ = s.recvfrom(65536)
    their_seq = struct.unpack(">H", reply[16:18])[0]
    handshake = (bytes([19]) + b"BitTorrent protocol" + bytes(8) + info_hash
                 + b"-XX0000-" + os.urandom(12))
    s.sendto(utp_packet(0, recv_id + 1, 2, their_seq - 1, handshake), ("127.0.0.1", port))
    return s


def test_hostile_datagrams_leave_an_honest_transfer_alone(tmp_path, procs, torrentfs_bin):
    root = make_content(tmp_path)
    torrent = tmp_path / "utp.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent)
    port = free_port()
    seed = start_seed(procs, torrentfs_bin, tmp_path, torrent, root.parent, port)
    time.sleep(0.5)
    before = rss_kib(seed.pid)
    target = ("127.0.0.1", port)
    rng = random.Random(5)
    # A peer that handshakes, then never acks what we send back.
    silent = silent_peer(port, bytes.fromhex(info["infoHash"]))
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flood.bind(("127.0.0.1", 0))
    for i in range(20_000):
        which = i % 4
        if which == 0:  # garbage that looks like uTP (version 1) and garbage that does not
            size = rng.randrange(0, 300)
            data = bytes([rng.randrange(5) << 4 | 1]) + rng.randbytes(size)
        elif which == 1:  # DATA and STATE for connections that do not exist
            data = utp_packet(rng.choice([0, 2]), rng.randrange(65536), rng.randrange(65536),
                              rng.randrange(65536), rng.randbytes(rng.randrange(100)))
        else:  # a SYN flood (from one address; half-open entries stay bounded)
            data = utp_packet(4, rng.randrange(65536), rng.randrange(65536), 0)
        flood.sendto(data, target)
    # The honest leecher, while more SYNs keep coming.
    save = tmp_path / "lt-out"
    leecher = LtPeer(procs, "lt-utp-leech", save, torrent=torrent, transport="utp",
                     socket_buffer=LT_BUFFER, connect=[f"127.0.0.1:{port}"])
    deadline = time.monotonic() + TRANSFER_TIMEOUT
    while time.monotonic() < deadline:
        if any(e.get("event") == "status" and e["is_seeding"] for e in leecher.events()):
            break
        for _ in range(200):
            flood.sendto(utp_packet(4, rng.randrange(65536), rng.randrange(65536), 0), target)
        time.sleep(0.05)
    leecher.wait_seeding(1.0)
    assert seed.poll() is None, seed.tail()
    assert_same_tree(root, save / root.name, "libtorrent leecher during a flood")
    after = rss_kib(seed.pid)
    assert after - before < 64 * 1024, (before, after)
    silent.close()
    flood.close()
