"""uTP (BEP 29) against transmission-cli 3.00, both ways, with TCP made impossible.

transmission refuses loopback peers, so it runs on a veth host (swarm.VethHost: its
own network namespace, joined to ours by a veth pair). Inside that namespace an
nftables table drops every TCP packet crossing the veth link, both ways, and counts
the UDP bytes that cross it: the only way the two clients can exchange pieces is
uTP, and the counters show the content's bytes went over UDP.

- transmission-cli downloads from `torrentfs seed` (it finds us through an
  opentracker reached over UDP, it dials us over uTP);
- `torrentfs download` downloads from a transmission-cli seeder (we dial it).

Each way runs with transmission's encryption "tolerated" (settings.json
``encryption`` 0: it dials with a plaintext handshake) and with its default
"preferred" (1: it dials with an MSE handshake, so this case needs MSE over our
uTP; when an MSE handshake fails, transmission retries over TCP, which is
blocked here, so no fallback can hide a failure).

Controls: before the firewall is up a TCP connection across the link succeeds and
after it a TCP connection times out (so the rule really bites); and `torrentfs
download --utp off` against the firewalled transmission seeder gets nothing within a
window: its TCP SYNs reach the link and not one TCP packet comes back (so a passing
uTP case cannot have come over TCP).

Every downloaded byte is compared with the source (sha256 of every file); every
process is bounded in time and stopped by PID; all traffic stays on the veth pair
and loopback of namespaces the tests create."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict

import pytest

from swarm import (VethHost, assert_same_tree, free_port, make_tree, start_opentracker,
                   torrentfs_create, tree_digest, write_transmission_settings)
from test_engine_swarm import start_download, wait_exit_ok
from test_utp import start_seed

CONTENT_NAME = "utp-tr-data"
# ~3 MB over three files of odd sizes, one directory deep.
CONTENT_FILES = {"t/one.bin": 2_000_003, "two.bin": 1_048_577, "tiny.txt": 5}
CONTENT_SIZE = sum(CONTENT_FILES.values())
# We download 3 MB from transmission over uTP in ~10 s; the bound only catches hangs.
TRANSFER_TIMEOUT = 60.0
# transmission 3.00 downloading from us: ~20 s here. (It parses a handshake and leaves the
# rest of its datagram unread until the next one, so our handshake goes out on its own;
# before that, it waited for our 60 s keep-alive.) The bound only catches hangs.
TR_LEECH_TIMEOUT = 60.0
SEED_CHECK_TIMEOUT = 30.0
# How long the --utp off control watches for a byte: a working pairing starts
# transferring within a second or two.
REFUSAL_WINDOW = 10.0
# A TCP connect across the firewalled link must not complete within this.
TCP_PROBE_TIMEOUT = 2.0
# transmission's peer port on its veth host (a namespace of its own: no clash).
TR_PORT = 51413
NFT_TABLE = "tfs_utp_only"

# settings.json "encryption": 0 = prefer plaintext (tolerated), 1 = prefer
# encrypted (transmission's default), 2 = require encryption.
TR_ENCRYPTION = {"tolerated": 0, "preferred": 1}
ENCRYPTION_CASES = [
    "tolerated",
    # transmission's default: an MSE handshake first (needs MSE over our uTP).
    "preferred",
]



@pytest.fixture
def content(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src" / CONTENT_NAME, CONTENT_FILES, seed=2929)


def veth_host(procs, tag: str, subnet: int) -> VethHost:
    host = VethHost(tag, subnet=subnet)
    procs.add_cleanup(host.close)
    return host


def run_in(host: VethHost, cmd, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(host.wrap(cmd), capture_output=True, text=True, timeout=timeout)


def forbid_tcp(host: VethHost) -> None:
    """In the veth host's namespace: drop every TCP packet crossing the veth link
    (in and out), count the UDP bytes crossing it. The table goes with the
    namespace."""
    dev = host.remote_if
    ruleset = (
        f"table inet {NFT_TABLE} {{\n"
        f"  chain input {{\n"
        f"    type filter hook input priority -10; policy accept;\n"
        f"    iifname \"{dev}\" meta l4proto tcp counter drop comment \"tcp_in\"\n"
        f"    iifname \"{dev}\" meta l4proto udp counter comment \"udp_in\"\n"
        f"  }}\n"
        f"  chain output {{\n"
        f"    type filter hook output priority -10; policy accept;\n"
        f"    oifname \"{dev}\" meta l4proto tcp counter drop comment \"tcp_out\"\n"
        f"    oifname \"{dev}\" meta l4proto udp counter comment \"udp_out\"\n"
        f"  }}\n"
        f"}}\n")
    proc = subprocess.run(host.wrap(["nft", "-f", "-"]), input=ruleset, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, f"nft failed: {proc.stderr}\n{ruleset}"


def nft_counters(host: VethHost) -> Dict[str, Dict[str, int]]:
    """comment -> {"packets", "bytes"} of the counters forbid_tcp installed."""
    proc = run_in(host, ["nft", "-j", "list", "table", "inet", NFT_TABLE])
    assert proc.returncode == 0, proc.stderr
    out = {}
    for item in json.loads(proc.stdout)["nftables"]:
        rule = item.get("rule")
        if not rule:
            continue
        for expr in rule["expr"]:
            if "counter" in expr:
                out[rule["comment"]] = dict(expr["counter"])
    assert set(out) == {"tcp_in", "tcp_out", "udp_in", "udp_out"}, out
    return out


def tcp_connects(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# Run inside the veth host: exit 0 if a TCP connection to argv[1]:argv[2] opens
# within argv[3] seconds, 1 if not.
TCP_PROBE = ("import socket, sys\n"
             "try:\n"
             "    socket.create_connection((sys.argv[1], int(sys.argv[2])), "
             "timeout=float(sys.argv[3])).close()\n"
             "except OSError:\n"
             "    sys.exit(1)\n")


def tcp_connects_from(host: VethHost, addr: str, port: int, timeout: float) -> bool:
    proc = run_in(host, ["/usr/bin/python3", "-c", TCP_PROBE, addr, port, timeout],
                  timeout=timeout + 20)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


def transmission(procs, host: VethHost, tmp_path: Path, torrent: Path, work: Path,
                 encryption: str, name: str):
    cfg = tmp_path / f"{name}-cfg"
    write_transmission_settings(cfg, utp_enabled=True, encryption=TR_ENCRYPTION[encryption])
    return procs.start(name, host.wrap([
        "transmission-cli", "-g", cfg, "-w", work, "-p", TR_PORT, "-M", "-B", "-D", "-U",
        torrent]))


def assert_udp_carried(counters: Dict[str, Dict[str, int]], key: str, what: str) -> None:
    assert counters[key]["bytes"] >= CONTENT_SIZE, (
        f"{what}: only {counters[key]['bytes']} UDP bytes crossed the link "
        f"({key}), the content is {CONTENT_SIZE} bytes: {counters}")


@pytest.mark.parametrize("encryption", ENCRYPTION_CASES)
def test_transmission_downloads_from_our_seed_over_utp(encryption, content, tmp_path, procs,
                                                       torrentfs_bin):
    host = veth_host(procs, f"ut{encryption[0]}", subnet=21 + ENCRYPTION_CASES.index(encryption))
    tport = free_port(host.local_addr)
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content, torrent,
                            trackers=[f"udp://{host.local_addr}:{tport}"])
    tracker = start_opentracker(procs, tmp_path, [info["infoHash"]], host=host.local_addr,
                                port=tport)
    port = free_port()
    start_seed(procs, torrentfs_bin, tmp_path, torrent, content.parent, port,
               extra=["--upnp", "off", "-v"])
    tracker.wait_registered(info["infoHash"], seeds=1)

    # Our seed is reachable over TCP from the veth host until the firewall is up.
    assert tcp_connects_from(host, host.local_addr, port, TCP_PROBE_TIMEOUT)
    forbid_tcp(host)
    assert not tcp_connects_from(host, host.local_addr, port, TCP_PROBE_TIMEOUT), \
        "TCP still crosses the veth link after forbid_tcp"

    out = tmp_path / "tr-out"
    out.mkdir()
    started = time.monotonic()
    tr = transmission(procs, host, tmp_path, torrent, out, encryption, "transmission-leech")
    # transmission-cli never exits by itself: wait until it says it seeds.
    tr.wait_for_output(lambda text: "Seeding" in text, TR_LEECH_TIMEOUT,
                       f"transmission-cli (encryption {encryption}) to finish over uTP")
    elapsed = time.monotonic() - started
    counters = nft_counters(host)
    tr.stop()
    assert_same_tree(content, out / CONTENT_NAME, f"transmission-cli over uTP ({encryption})")
    assert_udp_carried(counters, "udp_in", "transmission leeching from us")
    print(f"transmission ({encryption}) downloaded {CONTENT_SIZE} bytes from us over uTP "
          f"in {elapsed:.2f} s; nft: {counters}")


def start_transmission_seed(procs, host: VethHost, tmp_path: Path, torrent: Path,
                            content: Path, encryption: str):
    tr = transmission(procs, host, tmp_path, torrent, content.parent, encryption,
                      "transmission-seed")
    tr.wait_for_output(lambda text: "Seeding" in text, SEED_CHECK_TIMEOUT,
                       "transmission-cli to check its data and seed")
    return tr


def tfs_download(procs, torrentfs_bin, tmp_path, torrent, out, host, utp: str):
    return start_download(procs, torrentfs_bin, tmp_path, torrent, out,
                          peers=[f"{host.remote_addr}:{TR_PORT}"], verbose="-vv",
                          extra=["--utp", utp, "--lsd", "off", "--dht", "off"])


@pytest.mark.parametrize("encryption", ENCRYPTION_CASES)
def test_download_from_transmission_seed_over_utp(encryption, content, tmp_path, procs,
                                                  torrentfs_bin):
    host = veth_host(procs, f"dt{encryption[0]}", subnet=23 + ENCRYPTION_CASES.index(encryption))
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    start_transmission_seed(procs, host, tmp_path, torrent, content, encryption)

    # transmission's TCP port answers across the link until the firewall is up.
    assert tcp_connects(host.remote_addr, TR_PORT, TCP_PROBE_TIMEOUT)
    forbid_tcp(host)
    assert not tcp_connects(host.remote_addr, TR_PORT, TCP_PROBE_TIMEOUT), \
        "TCP still crosses the veth link after forbid_tcp"

    out = tmp_path / "out"
    started = time.monotonic()
    dl = tfs_download(procs, torrentfs_bin, tmp_path, torrent, out, host, "on")
    wait_exit_ok(dl, TRANSFER_TIMEOUT,
                 f"torrentfs download over uTP from transmission (encryption {encryption})")
    elapsed = time.monotonic() - started
    assert_same_tree(content, out / CONTENT_NAME, f"torrentfs download over uTP ({encryption})")
    counters = nft_counters(host)
    assert_udp_carried(counters, "udp_out", "us leeching from transmission")
    print(f"torrentfs downloaded {CONTENT_SIZE} bytes from transmission ({encryption}) over "
          f"uTP in {elapsed:.2f} s; nft: {counters}")


def test_without_utp_nothing_crosses_the_firewall(content, tmp_path, procs, torrentfs_bin):
    """The control: the same setup with our uTP off gets nothing within
    REFUSAL_WINDOW (no TCP packet comes back), so the uTP cases above cannot have
    been carried by TCP."""
    host = veth_host(procs, "dtx", subnet=25)
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content, torrent)
    start_transmission_seed(procs, host, tmp_path, torrent, content, "tolerated")
    forbid_tcp(host)
    out = tmp_path / "out"
    dl = tfs_download(procs, torrentfs_bin, tmp_path, torrent, out, host, "off")
    rc = dl.wait(REFUSAL_WINDOW)
    assert rc is None, f"download --utp off ended ({rc}) behind a firewall dropping TCP\n{dl.tail()}"
    want, got = tree_digest(content), tree_digest(out / CONTENT_NAME)
    arrived = [k for k, v in want.items() if got.get(k) == v]
    assert not arrived, f"files arrived without uTP: {arrived}"
    counters = nft_counters(host)
    # Our TCP SYNs reached transmission's side of the link and were dropped there, and
    # not one TCP packet came back (no SYN-ACK, so no connection, so no byte).
    assert counters["tcp_in"]["packets"] > 0, f"our TCP dials never reached the link: {counters}"
    assert counters["tcp_out"]["packets"] == 0, f"transmission answered over TCP: {counters}"
    assert counters["udp_out"]["bytes"] < 16_384, f"UDP carried data without uTP: {counters}"
