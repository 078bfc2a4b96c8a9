"""Message stream encryption (MSE/PE) against real clients, in the session's
loopback-only network namespace (conftest.py).

- libtorrent with encryption forced (``in_enc_policy``/``out_enc_policy`` =
  pe_forced), RC4 only or both levels: torrentfs downloads from it (we dial,
  we are the MSE initiator) and it downloads from `torrentfs seed` (it dials,
  we are the responder); libtorrent's own peer list says the connection was
  encrypted;
- aria2c with ``--bt-require-crypto=true``, both ways;
- transmission with encryption required (on a veth host: it refuses loopback
  peers), both ways;
- two torrentfs instances with ``--encryption require`` (RC4 both ways);
- ``--encryption require`` refuses a plaintext-only libtorrent, both ways;
- garbage where an MSE handshake should be (random bytes, padding past the
  512-byte limit) is dropped at once and an honest download follows;
  the default ``prefer`` falls back to plaintext with it at once.

Every downloaded byte is checked against the source; every process is bounded
in time and stopped by PID."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import os
import socket

from swarm import (LtPeer, VethHost, assert_same_tree, free_port, make_tree, start_opentracker,
                   torrentfs_create, wait_tcp, write_transmission_settings)

CONTENT_NAME = "mse-data"
CONTENT_FILES = {"a.bin": 1_500_007, "dir/b.bin": 700_001, "c.txt": 33}
TRANSFER_TIMEOUT = 60.0
SEED_CHECK_TIMEOUT = 30.0
# How long a refused pairing is watched: a working one finishes in ~1 s.
REFUSAL_WINDOW = 8.0
OUR_PREFIX = "-TF"
# libtorrent's rate limit where its peer list is checked: ~2 s for the content.
SLOW_RATE = 1_000_000


@pytest.fixture
def content(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src" / CONTENT_NAME, CONTENT_FILES, seed=1313)


def download(procs, bin_path, tmp_path, target, out, *, peers=(), encryption=None, name="tfs-dl"):
    out.mkdir(parents=True, exist_ok=True)
    state = tmp_path / f"state-{name}"
    state.mkdir(parents=True, exist_ok=True)
    cmd = [bin_path, "download", target, "-o", out, "--state", state, "--lsd", "off",
           "--dht", "off", "-vv"]
    for p in peers:
        cmd += ["--peer", p]
    if encryption:
        cmd += ["--encryption", encryption]
    return procs.start(name, cmd)


def seed(procs, bin_path, tmp_path, torrent, data, *, encryption=None, name="tfs-seed"):
    port = free_port()
    state = tmp_path / f"state-{name}"
    state.mkdir(parents=True, exist_ok=True)
    cmd = [bin_path, "seed", torrent, "--data", data, "--port", port, "--state", state,
           "--natpmp", "off", "--lsd", "off", "--dht", "off", "-vv"]
    if encryption:
        cmd += ["--encryption", encryption]
    proc = procs.start(name, cmd)
    wait_tcp("127.0.0.1", port, proc=proc)
    return proc, port


def wait_ok(proc, timeout, what):
    rc = proc.wait(timeout)
    assert rc is not None, f"{what}: still running after {timeout}s\n{proc.tail()}"
    assert rc == 0, f"{what}: exited {rc}\n{proc.tail()}"


def lt_seeder(procs, content: Path, torrent: Path, **kw) -> LtPeer:
    seeder = LtPeer(procs, "lt-seed", content.parent, torrent=torrent, **kw)
    seeder.wait_listening()
    seeder.wait_seeding(SEED_CHECK_TIMEOUT)
    return seeder


def our_peers(lt_peer: LtPeer):
    return [p for p in lt_peer.peers_ever() if p["pid_prefix"].startswith(OUR_PREFIX)]


@pytest.mark.parametrize("level,ours,expect_rc4", [
    ("rc4", None, True),        # libtorrent takes RC4 only; we offer both
    ("both", None, False),      # libtorrent selects plaintext after the encrypted handshake
    ("both", "require", True),  # we offer RC4 only
])
def test_download_from_libtorrent_forcing_encryption(level, ours, expect_rc4, content, tmp_path,
                                                     procs, torrentfs_bin):
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    # Rate-limited so that the connection shows in several of libtorrent's status lines.
    seeder = lt_seeder(procs, content, torrent, encryption="forced", enc_level=level,
                       upload_limit=SLOW_RATE)
    out = tmp_path / "out"
    dl = download(procs, torrentfs_bin, tmp_path, torrent, out,
                  peers=[f"127.0.0.1:{seeder.port}"], encryption=ours)
    wait_ok(dl, TRANSFER_TIMEOUT, "torrentfs download from an encrypting libtorrent")
    assert_same_tree(content, out / CONTENT_NAME, "torrentfs download")
    seeder.proc.stop()
    peers = our_peers(seeder)
    assert peers, seeder.proc.tail()
    assert all(p["rc4"] == expect_rc4 and (p["rc4"] or p["obfuscated"]) for p in peers), peers


@pytest.mark.parametrize("level,ours,expect_rc4", [
    ("rc4", None, True),        # libtorrent offers RC4 only
    ("both", None, False),      # offered both, we select plaintext after the handshake
    ("rc4", "require", True),
    ("both", "require", True),  # we accept RC4 only
])
def test_libtorrent_forcing_encryption_downloads_from_us(level, ours, expect_rc4, content, tmp_path,
                                                         procs, torrentfs_bin):
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    _, port = seed(procs, torrentfs_bin, tmp_path, torrent, content.parent, encryption=ours)
    save = tmp_path / "lt-out"
    leecher = LtPeer(procs, "lt-leech", save, torrent=torrent, connect=[f"127.0.0.1:{port}"],
                     encryption="forced", enc_level=level, download_limit=SLOW_RATE)
    leecher.wait_seeding(TRANSFER_TIMEOUT)
    leecher.proc.stop()
    assert_same_tree(content, save / CONTENT_NAME, "libtorrent leecher")
    peers = our_peers(leecher)
    assert peers and all(p["rc4"] == expect_rc4 and (p["rc4"] or p["obfuscated"]) for p in peers), peers


def test_two_instances_require_encryption(content, tmp_path, procs, torrentfs_bin):
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    _, port = seed(procs, torrentfs_bin, tmp_path, torrent, content.parent, encryption="require")
    out = tmp_path / "out"
    dl = download(procs, torrentfs_bin, tmp_path, torrent, out, peers=[f"127.0.0.1:{port}"],
                  encryption="require")
    wait_ok(dl, TRANSFER_TIMEOUT, "torrentfs download from torrentfs, RC4 required")
    assert_same_tree(content, out / CONTENT_NAME, "torrentfs download")


def assert_require_refuses(procs, torrentfs_bin, tmp_path, torrent, seeder: LtPeer) -> None:
    """`download --encryption require` from a plaintext-only seeder: no handshake, and the
    download keeps waiting for a peer it can take."""
    strict = download(procs, torrentfs_bin, tmp_path, torrent, tmp_path / "strict",
                      peers=[f"127.0.0.1:{seeder.port}"], encryption="require", name="strict")
    time.sleep(REFUSAL_WINDOW)
    assert strict.poll() is None, f"the download ended while refusing its only peer\n{strict.tail()}"
    strict.stop()
    assert not our_peers(seeder), "a handshake happened with encryption required"


def test_require_refuses_a_plaintext_seeder_and_prefer_falls_back(content, tmp_path, procs,
                                                                  torrentfs_bin):
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    seeder = lt_seeder(procs, content, torrent, encryption="disabled")
    assert_require_refuses(procs, torrentfs_bin, tmp_path, torrent, seeder)
    # The default, prefer: the encrypted try fails, the plaintext one follows at once.
    started = time.monotonic()
    dl = download(procs, torrentfs_bin, tmp_path, torrent, tmp_path / "out",
                  peers=[f"127.0.0.1:{seeder.port}"], name="prefer")
    wait_ok(dl, TRANSFER_TIMEOUT, "torrentfs download (prefer) from a plaintext-only libtorrent")
    assert_same_tree(content, tmp_path / "out" / CONTENT_NAME, "torrentfs download (prefer)")
    print(f"prefer → plaintext fallback download: {time.monotonic() - started:.2f} s")


def test_require_refuses_a_plaintext_leecher(content, tmp_path, procs, torrentfs_bin):
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    _, port = seed(procs, torrentfs_bin, tmp_path, torrent, content.parent, encryption="require")
    leecher = LtPeer(procs, "lt-leech", tmp_path / "lt-out", torrent=torrent,
                     connect=[f"127.0.0.1:{port}"], encryption="disabled")
    time.sleep(REFUSAL_WINDOW)
    status = leecher.last_status()
    leecher.proc.stop()
    assert status["total_payload_download"] == 0, status
    assert not our_peers(leecher), "a plaintext handshake was answered with encryption required"


def test_aria2_requiring_encryption_downloads_from_us(content, tmp_path, procs, torrentfs_bin):
    tport = free_port()
    url = f"http://127.0.0.1:{tport}/announce"
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content, torrent, trackers=[url])
    tracker = start_opentracker(procs, tmp_path, [info["infoHash"]], port=tport)
    seed(procs, torrentfs_bin, tmp_path, torrent, content.parent)
    tracker.wait_registered(info["infoHash"], seeds=1)
    out = tmp_path / "aria2-out"
    out.mkdir()
    aria = procs.start("aria2c", [
        "aria2c", "--dir", out, "--enable-dht=false", "--enable-dht6=false",
        "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--disable-ipv6=true",
        "--seed-time=0", "--listen-port", str(free_port()), "--file-allocation=none",
        "--bt-require-crypto=true", "--bt-min-crypto-level=arc4",
        "--bt-save-metadata=false", "--console-log-level=notice", "--no-conf=true",
        "--bt-stop-timeout=60", "--log", procs.log_dir / "aria2c.log", "--log-level=info", torrent])
    wait_ok(aria, 30.0, "aria2c requiring encryption")
    assert_same_tree(content, out / CONTENT_NAME, "aria2c")


def test_download_from_aria2_requiring_encryption(content, tmp_path, procs, torrentfs_bin):
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    port = free_port()
    procs.start("aria2c-seed", [
        "aria2c", "--dir", content.parent, "--check-integrity=true", "--seed-ratio=0.0",
        "--seed-time=5", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
        "--enable-peer-exchange=false", "--disable-ipv6=true", "--listen-port", str(port),
        "--bt-require-crypto=true", "--bt-min-crypto-level=arc4", "--bt-seed-unverified=false",
        "--console-log-level=notice", "--no-conf=true", "--log", procs.log_dir / "aria2c.log",
        "--log-level=info", torrent])
    wait_tcp("127.0.0.1", port)
    out = tmp_path / "out"
    dl = download(procs, torrentfs_bin, tmp_path, torrent, out, peers=[f"127.0.0.1:{port}"])
    wait_ok(dl, TRANSFER_TIMEOUT, "torrentfs download from aria2 requiring encryption")
    assert_same_tree(content, out / CONTENT_NAME, "torrentfs download")




def transmission(procs, host, tmp_path, torrent, work, port, name):
    cfg = tmp_path / f"{name}-cfg"
    write_transmission_settings(cfg, encryption=2)  # required
    return procs.start(name, host.wrap([
        "transmission-cli", "-g", cfg, "-w", work, "-p", str(port), "-er", "-M", "-D", "-U",
        torrent]))


def test_transmission_requiring_encryption_downloads_from_us(content, tmp_path, procs,
                                                             torrentfs_bin):
    host = VethHost("e1", subnet=11)
    procs.add_cleanup(host.close)
    tport = free_port(host.local_addr)
    url = f"http://{host.local_addr}:{tport}/announce"
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content, torrent, trackers=[url])
    tracker = start_opentracker(procs, tmp_path, [info["infoHash"]], host=host.local_addr,
                                port=tport)
    _, port = seed(procs, torrentfs_bin, tmp_path, torrent, content.parent)
    wait_tcp(host.local_addr, port)
    tracker.wait_registered(info["infoHash"], seeds=1)
    out = tmp_path / "tr-out"
    out.mkdir()
    tr = transmission(procs, host, tmp_path, torrent, out, free_port(), "transmission-leech")
    tr.wait_for_output(lambda text: "Seeding" in text, TRANSFER_TIMEOUT,
                       "transmission-cli (encryption required) to finish")
    tr.stop()
    assert_same_tree(content, out / CONTENT_NAME, "transmission-cli")


def test_download_from_transmission_requiring_encryption(content, tmp_path, procs, torrentfs_bin):
    host = VethHost("e2", subnet=12)
    procs.add_cleanup(host.close)
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    port = 51413
    tr = transmission(procs, host, tmp_path, torrent, content.parent, port, "transmission-seed")
    tr.wait_for_output(lambda text: "Seeding" in text, SEED_CHECK_TIMEOUT,
                       "transmission-cli to check its data and seed")
    wait_tcp(host.remote_addr, port)
    out = tmp_path / "out"
    dl = download(procs, torrentfs_bin, tmp_path, torrent, out, peers=[f"{host.remote_addr}:{port}"])
    wait_ok(dl, TRANSFER_TIMEOUT, "torrentfs download from transmission requiring encryption")
    assert_same_tree(content, out / CONTENT_NAME, "torrentfs download")


def test_garbage_handshakes_are_dropped(content, tmp_path, procs, torrentfs_bin):
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    seed_proc, port = seed(procs, torrentfs_bin, tmp_path, torrent, content.parent)
    for size in (96 + 600, 96 + 513 + 20, 4000):
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                # Not 19 + "BitTorrent protocol": taken as an MSE public key and padding.
                junk = bytes([0x20]) + os.urandom(size - 1)
                try:
                    s.sendall(junk)
                    s.settimeout(5)
                    while s.recv(4096):
                        pass  # our Yb and PadB, then the close
                except ConnectionResetError:
                    pass
    assert seed_proc.poll() is None, seed_proc.tail()
    out = tmp_path / "out"
    dl = download(procs, torrentfs_bin, tmp_path, torrent, out, peers=[f"127.0.0.1:{port}"],
                  encryption="require")
    wait_ok(dl, TRANSFER_TIMEOUT, "torrentfs download after garbage handshakes")
    assert_same_tree(content, out / CONTENT_NAME, "torrentfs download")
