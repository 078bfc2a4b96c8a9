"""Message stream encryption over uTP, in the session's loopback-only network namespace.

- libtorrent with uTP only (TCP off both ways) and RC4 forced: torrentfs downloads from
  it (we dial over uTP and are the MSE initiator) and it downloads from `torrentfs seed`
  (it dials over uTP, we are the responder); libtorrent's own peer list says the
  connection was uTP and RC4;
- two torrentfs instances with ``--encryption require``, the seed's TCP port refused by a
  firewall rule in this namespace, so the connection can only be encrypted uTP;
- ``--encryption require`` refuses a plaintext-only uTP peer.

Every downloaded byte is checked against the source; every process is bounded in time
and stopped by PID."""

from __future__ import annotations

import socket
import subprocess
from contextlib import contextmanager

import pytest

from swarm import LtPeer, assert_same_tree, torrentfs_create
from test_engine_encryption import (CONTENT_NAME, SLOW_RATE, TRANSFER_TIMEOUT, assert_require_refuses,  # noqa: F401
                                    content, download, lt_seeder, our_peers, seed, wait_ok)


@contextmanager
def tcp_refused(port: int):
    """TCP to 127.0.0.1:`port` answered with a reset (nftables, this namespace only)."""
    table = f"tfs_refuse_{port}"
    rules = (f"table inet {table} {{\n chain input {{\n  type filter hook input priority 0;\n"
             f"  tcp dport {port} reject with tcp reset\n }}\n}}\n")
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, timeout=10)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], check=False, timeout=10)


@pytest.mark.parametrize("ours", [None, "require"])
def test_download_from_utp_only_libtorrent_forcing_rc4(ours, content, tmp_path, procs, torrentfs_bin):
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    seeder = lt_seeder(procs, content, torrent, encryption="forced", enc_level="rc4", transport="utp",
                       upload_limit=SLOW_RATE)
    out = tmp_path / "out"
    dl = download(procs, torrentfs_bin, tmp_path, torrent, out, peers=[f"127.0.0.1:{seeder.port}"],
                  encryption=ours)
    wait_ok(dl, TRANSFER_TIMEOUT, "torrentfs download from a uTP-only, RC4-forcing libtorrent")
    assert_same_tree(content, out / CONTENT_NAME, "torrentfs download")
    seeder.proc.stop()
    peers = our_peers(seeder)
    assert peers and all(p["utp"] and p["rc4"] for p in peers), peers


@pytest.mark.parametrize("ours", [None, "require"])
def test_utp_only_libtorrent_forcing_rc4_downloads_from_us(ours, content, tmp_path, procs, torrentfs_bin):
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    _, port = seed(procs, torrentfs_bin, tmp_path, torrent, content.parent, encryption=ours)
    save = tmp_path / "lt-out"
    leecher = LtPeer(procs, "lt-leech", save, torrent=torrent, connect=[f"127.0.0.1:{port}"],
                     encryption="forced", enc_level="rc4", transport="utp", download_limit=SLOW_RATE)
    leecher.wait_seeding(TRANSFER_TIMEOUT)
    leecher.proc.stop()
    assert_same_tree(content, save / CONTENT_NAME, "libtorrent leecher")
    peers = our_peers(leecher)
    assert peers and all(p["utp"] and p["rc4"] for p in peers), peers


def test_two_instances_require_encryption_over_utp(content, tmp_path, procs, torrentfs_bin):
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    seed_proc, port = seed(procs, torrentfs_bin, tmp_path, torrent, content.parent, encryption="require")
    with tcp_refused(port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
        out = tmp_path / "out"
        dl = download(procs, torrentfs_bin, tmp_path, torrent, out, peers=[f"127.0.0.1:{port}"],
                      encryption="require")
        wait_ok(dl, TRANSFER_TIMEOUT, "torrentfs download from torrentfs over uTP, RC4 required")
    assert_same_tree(content, out / CONTENT_NAME, "torrentfs download")
    assert seed_proc.poll() is None, seed_proc.tail()


def test_require_refuses_a_plaintext_utp_seeder(content, tmp_path, procs, torrentfs_bin):
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    seeder = lt_seeder(procs, content, torrent, encryption="disabled", transport="utp")
    assert_require_refuses(procs, torrentfs_bin, tmp_path, torrent, seeder)
    # The default, prefer: the encrypted try fails, the plaintext one follows (over uTP again).
    dl = download(procs, torrentfs_bin, tmp_path, torrent, tmp_path / "out",
                  peers=[f"127.0.0.1:{seeder.port}"], name="prefer")
    wait_ok(dl, TRANSFER_TIMEOUT, "torrentfs download (prefer) from a plaintext-only uTP libtorrent")
    assert_same_tree(content, tmp_path / "out" / CONTENT_NAME, "torrentfs download (prefer)")
    seeder.proc.stop()
    assert all(p["utp"] for p in our_peers(seeder)), our_peers(seeder)
