"""The engine against real clients, in real swarms, on a loopback-only network
(conftest.py moves the session into its own network namespace).

- torrentfs downloads from a libtorrent seeder found through opentracker
  (HTTP and UDP) or through a magnet's `x.pe` alone (metadata by ut_metadata);
- torrentfs seeds to libtorrent (magnet + an explicit connect: metadata from
  us), aria2 (tracker; .torrent and magnet) and transmission (on a veth host,
  since transmission refuses loopback peers);
- PEX: a peer known only through PEX is found and used, in both directions
  (torrentfs sends the PEX / torrentfs receives it);
- a libtorrent seeder with a slow uplink and three torrentfs leechers: all
  complete and the seeder uploads well under three copies, so the leechers
  traded among themselves;
- connection hygiene and shutdown: one connection per peer while its
  handshake is slow; `download` stops on SIGTERM/SIGINT.

Every downloaded byte is checked (sha256 of every file) against the source.
Every process is bounded in time and stopped by PID at the end."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from typing import List, Optional, Sequence

import pytest

from swarm import (LtPeer, ProcGroup, VethHost, assert_same_tree, free_port,
                   STARTUP_TIMEOUT, make_tree, start_opentracker, torrentfs_create,
                   wait_tcp, write_transmission_settings)

# ~4.1 MB over five files of odd sizes, two directories deep.
CONTENT_NAME = "swarm-data"
CONTENT_FILES = {
    "alpha/a.bin": 1_000_003,
    "b.bin": 2_345_677,
    "alpha/beta/c.dat": 16_385,
    "tiny.txt": 7,
    "d.bin": 777_777,
}
CONTENT_SIZE = sum(CONTENT_FILES.values())

# ~12.3 MB for the three-leecher swarm.
BIG_NAME = "swarm-big"
BIG_FILES = {
    "x/one.bin": 5_000_011,
    "two.bin": 4_200_007,
    "x/y/three.bin": 3_100_003,
    "four.txt": 99,
}
BIG_SIZE = sum(BIG_FILES.values())

# A 4 MB transfer between two processes on loopback takes well under a few
# seconds; these bounds only catch hangs.
TRANSFER_TIMEOUT = 60.0
SEED_CHECK_TIMEOUT = 30.0
# aria2 fetches 4 MB from a loopback seed in a few seconds; when it stalls
# (it bans a peer that drops it, by IP, and every peer here is 127.0.0.1),
# it never recovers.
ARIA2_TIMEOUT = 30.0
OUR_PEER_ID_PREFIX = "-TF"
LT_PEER_ID_PREFIX = "-LT"


class Content:
    def __init__(self, parent: Path, name: str, files: dict, seed: int):
        self.parent = parent
        self.name = name
        self.root = make_tree(parent / name, files, seed)
        self.size = sum(files.values())


@pytest.fixture
def content(tmp_path: Path) -> Content:
    return Content(tmp_path / "src", CONTENT_NAME, CONTENT_FILES, seed=20240601)


@pytest.fixture
def big_content(tmp_path: Path) -> Content:
    return Content(tmp_path / "src", BIG_NAME, BIG_FILES, seed=777)


def start_download(procs: ProcGroup, bin_path: Path, tmp_path: Path, target,
                   out: Path, *, name: str = "tfs-dl", peers: Sequence[str] = (),
                   port: int = 0, upload_limit: Optional[str] = None,
                   download_limit: Optional[str] = None, seed: bool = False,
                   verbose: str = "-v", extra: Sequence[str] = ()):
    out.mkdir(parents=True, exist_ok=True)
    state = tmp_path / f"state-{name}"
    state.mkdir(parents=True, exist_ok=True)
    cmd = [bin_path, "download", target, "-o", out, "--port", port, "--state", state, *extra]
    for p in peers:
        cmd += ["--peer", p]
    if upload_limit:
        cmd += ["--upload-limit", upload_limit]
    if download_limit:
        cmd += ["--download-limit", download_limit]
    if seed:
        cmd.append("--seed")
    if verbose:
        cmd.append(verbose)
    return procs.start(name, cmd)


def start_seed(procs: ProcGroup, bin_path: Path, tmp_path: Path, torrent: Path,
               data: Path, port: int, *, name: str = "tfs-seed", verbose: str = "-v"):
    state = tmp_path / f"state-{name}"
    state.mkdir(parents=True, exist_ok=True)
    cmd = [bin_path, "seed", torrent, "--data", data, "--port", port, "--state", state,
           "--natpmp", "off", "--upnp", "off"]
    if verbose:
        cmd.append(verbose)
    proc = procs.start(name, cmd)
    wait_tcp("127.0.0.1", port, proc=proc)
    return proc


def wait_exit_ok(proc, timeout: float, what: str) -> None:
    rc = proc.wait(timeout)
    assert rc is not None, f"{what}: still running after {timeout}s\n{proc.tail()}"
    assert rc == 0, f"{what}: exited {rc}\n{proc.tail()}"


def lt_seeder(procs: ProcGroup, content: Content, torrent: Path, **kw) -> LtPeer:
    """A libtorrent seeder of ``content`` (hash-checks the data first)."""
    seeder = LtPeer(procs, "lt-seed", content.parent, torrent=torrent, **kw)
    seeder.wait_listening()
    seeder.wait_seeding(SEED_CHECK_TIMEOUT)
    return seeder


def peers_with_prefix(peers: List[dict], prefix: str) -> List[dict]:
    return [p for p in peers if p["pid_prefix"].startswith(prefix)]


def test_network_is_isolated():
    """conftest.py moved the session into a network namespace with only
    loopback: no test can reach another machine."""
    names = sorted(name for _, name in socket.if_nameindex())
    assert names == ["lo"], names


# ---------------------------------------------------------------------------
# 2. torrentfs downloads from a libtorrent seeder
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("discovery", ["http-tracker", "udp-tracker", "magnet-x.pe"])
def test_download_from_libtorrent_seeder(discovery, content, tmp_path, procs,
                                         torrentfs_bin):
    """torrentfs finds a libtorrent seeder through opentracker (HTTP or UDP
    announce) or through the magnet's x.pe alone (then the metadata comes
    by ut_metadata), downloads everything and exits 0; we dialed the
    seeder, never the reverse."""
    torrent = tmp_path / "data.torrent"
    tracker = None
    if discovery.endswith("tracker"):
        port = free_port()
        url = (f"http://127.0.0.1:{port}/announce" if discovery == "http-tracker"
               else f"udp://127.0.0.1:{port}")
        info = torrentfs_create(torrentfs_bin, content.root, torrent, trackers=[url])
        tracker = start_opentracker(procs, tmp_path, [info["infoHash"]], port=port)
    else:
        info = torrentfs_create(torrentfs_bin, content.root, torrent)
    info_hash = info["infoHash"]

    seeder = lt_seeder(procs, content, torrent)
    if tracker is not None:
        # The seeder is on the tracker before we ask it for peers; it will
        # not announce again (opentracker's interval is ~30 min), so it can
        # only meet us if we connect to what the tracker tells us.
        reply = seeder.wait_tracker_reply()
        assert reply["url"].split(":")[0] == discovery.split("-")[0], reply
        tracker.wait_registered(info_hash, seeds=1)
        target = torrent
    else:
        # No tracker, no .torrent: the metadata comes by ut_metadata from
        # the one peer the magnet names.
        target = f"magnet:?xt=urn:btih:{info_hash}&x.pe=127.0.0.1:{seeder.port}"

    out = tmp_path / "out"
    dl = start_download(procs, torrentfs_bin, tmp_path, target, out)
    wait_exit_ok(dl, TRANSFER_TIMEOUT, f"torrentfs download ({discovery})")
    assert_same_tree(content.root, out / content.name, f"torrentfs download ({discovery})")

    # We connected to the seeder (not the other way round).
    seeder.proc.stop()
    events = seeder.events()
    incoming = [e for e in events if e.get("event") == "incoming_connection"]
    assert incoming, f"the seeder never accepted a connection\n{seeder.proc.tail()}"
    ours = peers_with_prefix(seeder.peers_ever(), OUR_PEER_ID_PREFIX)
    assert all(not p["outgoing"] for p in ours), ours
    # (opentracker lists the seeder to itself: libtorrent tries that
    # address once and drops it as a self-connection.)
    outgoing = [e for e in events if e.get("event") == "peer_connect"
                and "outgoing" in e["message"] and e["port"] != seeder.port]
    assert not outgoing, f"the seeder connected out: {outgoing}"
    uploaded = seeder.last_status()["total_payload_upload"]
    assert uploaded >= content.size, (uploaded, content.size)


# ---------------------------------------------------------------------------
# 3. torrentfs seeds to libtorrent, aria2 and transmission
# ---------------------------------------------------------------------------

def test_seed_to_libtorrent_magnet(content, tmp_path, procs, torrentfs_bin):
    """libtorrent gets only the info hash and our address: the metadata and
    every byte come from us."""
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent)
    port = free_port()
    start_seed(procs, torrentfs_bin, tmp_path, torrent, content.parent, port)

    save = tmp_path / "lt-out"
    leecher = LtPeer(procs, "lt-leech", save, magnet=f"magnet:?xt=urn:btih:{info['infoHash']}",
                     connect=[f"127.0.0.1:{port}"])
    leecher.wait_event(lambda e: e.get("event") == "metadata_received", TRANSFER_TIMEOUT,
                       "metadata (ut_metadata) from torrentfs")
    leecher.wait_seeding(TRANSFER_TIMEOUT)
    leecher.proc.stop()
    assert_same_tree(content.root, save / content.name, "libtorrent leecher")
    seen = leecher.peer_ids_seen()
    assert seen and all(p.startswith(OUR_PEER_ID_PREFIX) for p in seen), seen
    assert not any(e.get("event") == "error" for e in leecher.events()), leecher.proc.tail()


@pytest.mark.parametrize("form", ["torrent", "magnet"])
def test_seed_to_aria2(form, content, tmp_path, procs, torrentfs_bin):
    """aria2 ignores x.pe: it finds us through opentracker. With a magnet it
    also fetches the metadata from us."""
    tport = free_port()
    url = f"http://127.0.0.1:{tport}/announce"
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent, trackers=[url])
    tracker = start_opentracker(procs, tmp_path, [info["infoHash"]], port=tport)
    port = free_port()
    start_seed(procs, torrentfs_bin, tmp_path, torrent, content.parent, port, verbose="-vv")
    tracker.wait_registered(info["infoHash"], seeds=1)

    out = tmp_path / "aria2-out"
    out.mkdir()
    target = torrent if form == "torrent" else f"magnet:?xt=urn:btih:{info['infoHash']}&tr={url}"
    aria = procs.start("aria2c", [
        "aria2c", "--dir", out, "--enable-dht=false", "--enable-dht6=false",
        "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--disable-ipv6=true",
        "--seed-time=0", "--listen-port", str(free_port()), "--file-allocation=none",
        "--bt-save-metadata=false", "--summary-interval=1", "--console-log-level=notice",
        "--no-conf=true", "--bt-stop-timeout=60",
        "--log", procs.log_dir / "aria2c.log", "--log-level=info", target])
    wait_exit_ok(aria, ARIA2_TIMEOUT, f"aria2c ({form})")
    assert_same_tree(content.root, out / content.name, f"aria2c ({form})")


def test_seed_to_transmission(content, tmp_path, procs, torrentfs_bin):
    """transmission refuses loopback peers: it runs on a veth host (its own
    network namespace) and meets our seeder, listening on 0.0.0.0 here,
    through an opentracker listening on our end of the veth pair."""
    host = VethHost("h1", subnet=1)
    procs.add_cleanup(host.close)
    tport = free_port(host.local_addr)
    url = f"http://{host.local_addr}:{tport}/announce"
    torrent = tmp_path / "data.torrent"
    info = torrentfs_create(torrentfs_bin, content.root, torrent, trackers=[url])
    tracker = start_opentracker(procs, tmp_path, [info["infoHash"]],
                                host=host.local_addr, port=tport)
    port = free_port()
    start_seed(procs, torrentfs_bin, tmp_path, torrent, content.parent, port, verbose="-vv")
    wait_tcp(host.local_addr, port)
    tracker.wait_registered(info["infoHash"], seeds=1)

    cfg = tmp_path / "transmission-cfg"
    write_transmission_settings(cfg, pex_enabled=True)
    out = tmp_path / "tr-out"
    out.mkdir()
    tr = procs.start("transmission-cli", host.wrap([
        "transmission-cli", "-g", cfg, "-w", out, "-p", str(free_port()), "-M", "-B",
        "-D", "-U", torrent]))
    # transmission-cli never exits by itself: wait until it says it seeds.
    tr.wait_for_output(lambda text: "Seeding" in text, TRANSFER_TIMEOUT,
                       "transmission-cli to finish (\"Seeding\")")
    tr.stop()
    assert_same_tree(content.root, out / content.name, "transmission-cli")


# ---------------------------------------------------------------------------
# 4. PEX
# ---------------------------------------------------------------------------

# A is a leecher that can hardly download (10 KB/s): it stays connected to
# S (two seeds would drop each other) and has little B could want, so B can
# only finish within PEX_TIMEOUT (at most ~450 KB from A) by getting the
# data from S. (Not lower: libtorrent hands out download quota in big
# chunks, and at 2 KB/s even reading a handshake takes seconds. A's uplink
# is not throttled: a throttled uplink queues the PEX message behind piece
# data, and libtorrent counts the TCP overhead of its own download against
# it, which delays the message for minutes.)
PEX_A_DOWNLOAD_LIMIT = 10_000
# PEX: the first message within ~5 s of connecting (torrentfs: 5 s;
# libtorrent: on its next tick), then B fetches 4 MB from S in a second.
PEX_TIMEOUT = 45.0


def test_pex_torrentfs_tells_libtorrent(content, tmp_path, procs, torrentfs_bin):
    """S (libtorrent seeder) <- A (torrentfs, told S) <- B (libtorrent, told
    only A). S never dials out (seeding_outgoing_connections off), so B and
    S meet only if B dials S, and B can only learn S's address from A's PEX
    message. B must finish in time, which A (a leecher that can hardly
    download, so it has almost nothing) cannot allow: the data comes from S."""
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content.root, torrent)
    s = lt_seeder(procs, content, torrent, seed_outgoing=False)

    a_port = free_port()
    a = start_download(procs, torrentfs_bin, tmp_path, torrent, tmp_path / "a-out",
                       name="tfs-A", peers=[s.endpoint], port=a_port,
                       download_limit=str(PEX_A_DOWNLOAD_LIMIT), verbose="-vv")
    s.wait_event(lambda e: e.get("event") == "status"
                 and peers_with_prefix(e["peers"], OUR_PEER_ID_PREFIX),
                 STARTUP_TIMEOUT, "A connected to S")

    b_save = tmp_path / "b-out"
    b = LtPeer(procs, "lt-B", b_save, torrent=torrent, connect=[f"127.0.0.1:{a_port}"])
    b.wait_listening()
    b.wait_seeding(PEX_TIMEOUT)
    assert a.poll() is None, f"A exited early\n{a.tail()}"
    b.proc.stop()
    s.proc.stop()
    assert_same_tree(content.root, b_save / content.name, "libtorrent B")

    # B dialed S, whose address it was never given: it came in A's PEX.
    assert s.port in b.outgoing_connects(), (
        f"B never dialed S (port {s.port}); B dialed {b.outgoing_connects()}\n{b.proc.tail()}")
    assert not s.outgoing_connects(), s.outgoing_connects()
    # B's status lines, when they caught the S connection, say "from PEX".
    to_s = [p for p in b.peers_ever() if p["port"] == s.port]
    assert all(p["from_pex"] for p in to_s), to_s
    # S (libtorrent) saw another libtorrent peer: B. A is torrentfs.
    assert any(p.startswith(LT_PEER_ID_PREFIX) for p in s.peer_ids_seen()), s.peer_ids_seen()
    # A gave B little (it had little); S uploaded the rest.
    from_a = max((p["down"] for p in b.peers_ever()
                  if p["pid_prefix"].startswith(OUR_PEER_ID_PREFIX)), default=0)
    assert from_a < content.size // 4, from_a
    a_got = max((p["up"] for p in s.peers_ever()
                 if p["pid_prefix"].startswith(OUR_PEER_ID_PREFIX)), default=0)
    assert a_got < content.size // 4, f"A downloaded {a_got} bytes despite its limit"
    assert s.last_status()["total_payload_upload"] >= content.size * 3 // 4


def test_pex_libtorrent_tells_torrentfs(content, tmp_path, procs, torrentfs_bin):
    """S (libtorrent seeder, never dials out) <- A (libtorrent, told S) <- B
    (torrentfs, told only A). B finishes in time only by dialing S, which it
    can only learn from A's PEX message."""
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content.root, torrent)
    s = lt_seeder(procs, content, torrent, seed_outgoing=False)

    a = LtPeer(procs, "lt-A", tmp_path / "a-out", torrent=torrent, connect=[s.endpoint],
               download_limit=PEX_A_DOWNLOAD_LIMIT)
    a.wait_listening()
    # Fully connected (handshakes done): libtorrent leaves peers still in
    # the handshake out of its PEX messages, and its next one is a minute
    # later.
    a.wait_event(lambda e: e.get("event") == "status"
                 and any(p["port"] == s.port and p["pid_prefix"].startswith(LT_PEER_ID_PREFIX)
                         and not p["handshake"] for p in e["peers"]),
                 STARTUP_TIMEOUT, "A connected to S")

    b_out = tmp_path / "b-out"
    b = start_download(procs, torrentfs_bin, tmp_path, torrent, b_out, name="tfs-B",
                       peers=[a.endpoint], port=free_port(), verbose="-vv")
    wait_exit_ok(b, PEX_TIMEOUT, "torrentfs B (told only A)")
    assert_same_tree(content.root, b_out / content.name, "torrentfs B")
    a.proc.stop()
    s.proc.stop()
    assert not s.outgoing_connects(), s.outgoing_connects()
    # S was never told about B, and never dials out, yet a torrentfs peer
    # (B: A is libtorrent) connected to it.
    seen = s.peer_ids_seen()
    assert any(p.startswith(OUR_PEER_ID_PREFIX) for p in seen), (
        f"B never connected to S; S saw {seen}\n{s.proc.tail()}")
    # A (which could hardly download) had little to give B: the data came
    # from S.
    assert a.last_status()["total_payload_download"] < content.size // 4, a.last_status()
    a_to_b = [p["up"] for p in a.peers_ever() if p["pid_prefix"].startswith(OUR_PEER_ID_PREFIX)]
    assert max(a_to_b, default=0) < content.size // 4, a_to_b
    assert s.last_status()["total_payload_upload"] >= content.size * 3 // 4


# ---------------------------------------------------------------------------
# 5. One slow seeder, three torrentfs leechers that trade among themselves
# ---------------------------------------------------------------------------

SWARM_SEEDER_UPLOAD_LIMIT = 1_500_000  # bytes/s
SWARM_TIMEOUT = 90.0


def test_three_torrentfs_leechers_share(big_content, tmp_path, procs, torrentfs_bin):
    """A libtorrent seeder limited to 1.5 MB/s and three torrentfs leechers,
    each told the seeder and the two others: all finish with the right
    bytes, and the seeder uploads well under three copies (< 2), so the
    leechers got much of the data from each other."""
    torrent = tmp_path / "big.torrent"
    torrentfs_create(torrentfs_bin, big_content.root, torrent)
    s = lt_seeder(procs, big_content, torrent, upload_limit=SWARM_SEEDER_UPLOAD_LIMIT)

    ports = [free_port() for _ in range(3)]
    while len(set(ports)) < 3:
        ports = [free_port() for _ in range(3)]
    leechers = []
    for i, port in enumerate(ports):
        others = [f"127.0.0.1:{p}" for p in ports if p != port]
        leechers.append(start_download(
            procs, torrentfs_bin, tmp_path, torrent, tmp_path / f"out-{i}",
            name=f"tfs-L{i}", peers=[s.endpoint] + others, port=port))
    deadline = time.monotonic() + SWARM_TIMEOUT
    for i, leecher in enumerate(leechers):
        wait_exit_ok(leecher, max(1.0, deadline - time.monotonic()), f"torrentfs leecher {i}")
    for i in range(3):
        assert_same_tree(big_content.root, tmp_path / f"out-{i}" / big_content.name,
                         f"torrentfs leecher {i}")
    s.proc.stop()
    uploaded = s.last_status()["total_payload_upload"]
    # Without sharing the seeder would have uploaded three copies.
    assert uploaded < 2 * big_content.size, (
        f"seeder uploaded {uploaded} bytes = {uploaded / big_content.size:.2f} copies: "
        "the leechers did not share among themselves")


# ---------------------------------------------------------------------------
# 6. Connection hygiene and shutdown (found while writing the tests above)
# ---------------------------------------------------------------------------

# How long the silent peer watches for connections (the engine's handshake
# timeout is ~10 s: within it, one connection is enough).
SILENT_PEER_WATCH = 4.0


def test_one_connection_to_a_slow_handshaker(content, tmp_path, procs, torrentfs_bin):
    """A peer that accepts the TCP connection but is slow to answer the
    handshake gets one connection from us, not a new one on every engine
    tick while the first is still waiting. (Seen with a busy libtorrent
    leecher in the PEX test, which dropped the extras as "duplicate
    peer-id"; here a socket that accepts and stays silent.)"""
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content.root, torrent)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    accepted = []
    try:
        dl = start_download(procs, torrentfs_bin, tmp_path, torrent, tmp_path / "out",
                            peers=[f"127.0.0.1:{port}"], verbose="-vv")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not accepted and time.monotonic() < deadline and dl.poll() is None:
            try:
                accepted.append(listener.accept()[0])
            except socket.timeout:
                pass
        assert accepted, f"torrentfs never connected to --peer\n{dl.tail()}"
        watch_until = time.monotonic() + SILENT_PEER_WATCH
        while time.monotonic() < watch_until:
            try:
                accepted.append(listener.accept()[0])
            except socket.timeout:
                pass
    finally:
        for conn in accepted:
            conn.close()
        listener.close()
    assert len(accepted) == 1, (
        f"torrentfs opened {len(accepted)} connections to one peer within "
        f"{SILENT_PEER_WATCH}s while the first one was still handshaking")


# Bound on a clean shutdown after SIGTERM/SIGINT.
SHUTDOWN_TIMEOUT = 5.0


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_download_stops_on_signal(signame, content, tmp_path, procs, torrentfs_bin):
    """A download still waiting for data (its only peer is dead) shuts down
    on SIGTERM/SIGINT, by itself and promptly (the harness above relies on
    it: every process is stopped with SIGTERM first)."""
    torrent = tmp_path / "data.torrent"
    torrentfs_create(torrentfs_bin, content.root, torrent)
    dead = free_port()  # nothing listens there
    dl = start_download(procs, torrentfs_bin, tmp_path, torrent, tmp_path / "out",
                        peers=[f"127.0.0.1:{dead}"], verbose="-vv")
    dl.wait_for_output(lambda text: "listening" in text, STARTUP_TIMEOUT,
                       "the engine to start", stream="stderr")
    time.sleep(1.0)
    dl.popen.send_signal(getattr(signal, signame))
    rc = dl.wait(SHUTDOWN_TIMEOUT)
    assert rc is not None, (f"torrentfs download still running {SHUTDOWN_TIMEOUT}s after "
                            f"{signame}\n{dl.tail()}")
    assert rc >= 0, f"torrentfs download died of signal {-rc} instead of shutting down"
