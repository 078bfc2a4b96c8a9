"""The mainline DHT against libtorrent: a private DHT of python3-libtorrent
nodes on 127.0.0.x addresses (``lt_dht.py``), local addresses allowed on their
side, meshed by hand; torrents created v1-only by ``torrentfs create``. No
tracker, LSD, PEX hint or ``x.pe``: the only way to meet is the DHT.

- A mount given only ``magnet:?xt=urn:btih:HASH`` (one DHT node as its router)
  finds a libtorrent seeder, gets the metadata and reads every file right;
  ``torrentfs download`` of the bare magnet too.
- Reverse: a torrentfs seed announces itself; a libtorrent leecher that knows
  the info hash and one DHT node, torrentfs's own, finds the seed and
  completes (so libtorrent's lookups work through our node's answers), and
  its announce_peer with our token is stored (our get_peers returns it).
- A restart with the saved table (same ``--state``) and a dead router reaches
  the DHT and downloads again.
- Hostile KRPC at a running torrentfs: malformed, oversized and flooding
  datagrams; the process stays up with bounded memory, answers no bigger than
  allowed, and still answers a well-behaved node.

Every process is bounded in time and stopped by PID."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from mounts import Mount
from swarm import LT_PYTHON, assert_same_tree, free_port, json_lines, make_tree, torrentfs_create

LT_DHT = Path(__file__).with_name("lt_dht.py")
FILES = {"a.bin": 2_000_003, "sub/b.txt": 4_321}
# Bounds that catch hangs only: on loopback the whole exchange takes well under a second.
FIND_TIMEOUT = 30.0
READY_TIMEOUT = 20.0


@pytest.fixture
def content(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src" / "dht", FILES, seed=51)


def bare_magnet(info: dict) -> str:
    return f"magnet:?xt=urn:btih:{info['infoHash']}"


class LtDHT:
    """``lt_dht.py`` as a process of the test."""

    def __init__(self, procs, name: str, *args):
        self.proc = procs.start(name, [LT_PYTHON, LT_DHT, *[str(a) for a in args]])

    def events(self):
        return json_lines(self.proc.stdout())

    def wait_event(self, kind: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events():
                if e.get("event") == kind:
                    return e
            assert self.proc.poll() is None, f"lt_dht.py exited\n{self.proc.tail()}"
            time.sleep(0.05)
        raise AssertionError(f"no {kind!r} from lt_dht.py in {timeout}s\n{self.proc.tail()}")


def seeding_dht(procs, tmp_path: Path, content: Path, bin_path: Path, first: str, nodes: int = 4):
    """A mesh of ``nodes`` libtorrent nodes from address ``first`` on, and a
    libtorrent seeder of ``content`` on the next address, announcing to it."""
    torrent = tmp_path / "dht.torrent"
    info = torrentfs_create(bin_path, content, torrent)
    a, b, c, d = first.split(".")
    rig = LtDHT(procs, "lt-dht", "--nodes", nodes, "--first-address", first, "--port", free_port(),
                "--seed", torrent, "--save", content.parent, "--extra-address", f"{a}.{b}.{c}.{int(d) + nodes}")
    ready = rig.wait_event("ready", READY_TIMEOUT)
    rig.wait_event("seeding", READY_TIMEOUT)
    return info, rig, ready["nodes"]


def test_mount_bare_magnet_through_dht(content, tmp_path, procs, torrentfs_bin):
    info, rig, nodes = seeding_dht(procs, tmp_path, content, torrentfs_bin, "127.0.0.20")
    mount = Mount(procs, torrentfs_bin, tmp_path / "mnt", tmp_path / "data",
                  opts=["dht=on", f"dht_router={nodes[0]}", "lsd=off"])
    started = time.monotonic()
    mount.add(bare_magnet(info))
    mount.wait_folder("dht", timeout=FIND_TIMEOUT)
    elapsed = time.monotonic() - started
    assert_same_tree(content, mount.path("dht"), "mount of a bare magnet found through the DHT")
    t = mount.torrent(info["infoHash"])
    assert t["knownPeersBySource"].get("dht", 0) >= 1, t["knownPeersBySource"]
    status = mount.status()
    assert status["dht"]["nodes"] >= 1, status.get("dht")
    assert any(p["ip"].startswith("127.0.0.") for p in rig.events() if p.get("event") == "peer")
    print(f"DHT: bare magnet to metadata through the mount in {elapsed:.2f}s")
    mount.terminate()


def test_download_bare_magnet_through_dht(content, tmp_path, procs, torrentfs_bin):
    info, _, nodes = seeding_dht(procs, tmp_path, content, torrentfs_bin, "127.0.0.30")
    out = tmp_path / "out"
    state = tmp_path / "state"
    started = time.monotonic()
    dl = procs.start("tfs-dht-dl", [torrentfs_bin, "download", bare_magnet(info), "-o", out, "--state", state,
                                    "--dht-router", nodes[0], "--lsd", "off", "--natpmp", "off", "-vv"])
    rc = dl.wait(FIND_TIMEOUT)
    assert rc == 0, f"download through the DHT did not finish (rc {rc})\n{dl.tail()}"
    print(f"DHT: bare magnet download in {time.monotonic() - started:.2f}s")
    assert_same_tree(content, out / "dht", "download of a bare magnet found through the DHT")
    assert (state / "dht.dat").stat().st_size > 26, "the routing table was not saved"

    # A restart with the saved table and a router that does not exist: the saved nodes suffice.
    out2 = tmp_path / "out2"
    dl2 = procs.start("tfs-dht-dl2", [torrentfs_bin, "download", bare_magnet(info), "-o", out2, "--state", state,
                                      "--dht-router", "127.0.0.254:9", "--lsd", "off", "--natpmp", "off", "-vv"])
    rc = dl2.wait(FIND_TIMEOUT)
    assert rc == 0, f"restart with the saved table did not finish (rc {rc})\n{dl2.tail()}"
    assert_same_tree(content, out2 / "dht", "download after a restart with the saved DHT table")


def test_libtorrent_finds_torrentfs_seed_through_our_node(content, tmp_path, procs, torrentfs_bin, lt):
    torrent = tmp_path / "dht.torrent"
    info = torrentfs_create(torrentfs_bin, content, torrent)
    port = free_port()
    lt_port = free_port()
    # The mesh first (torrentfs's router), then the seed, then a leecher knowing only torrentfs.
    mesh = LtDHT(procs, "lt-dht-mesh", "--nodes", 4, "--first-address", "127.0.0.40", "--port", lt_port,
                 "--contact", f"127.0.0.1:{port}")
    nodes = mesh.wait_event("ready", READY_TIMEOUT)["nodes"]
    seed = procs.start("tfs-dht-seed", [torrentfs_bin, "seed", torrent, "--data", content.parent, "--port", port,
                                        "--state", tmp_path / "seed-state", "--dht-router", nodes[0],
                                        "--lsd", "off", "--natpmp", "off", "-vv"])
    seed.wait_for_output(lambda text: "data verified" in text, READY_TIMEOUT, "the seed's data check", stream="stderr")
    save = tmp_path / "lt-out"
    save.mkdir()
    started = time.monotonic()
    leech = LtDHT(procs, "lt-dht-leech", "--nodes", 0, "--port", lt_port, "--leech", bare_magnet(info),
                  "--save", save, "--extra-address", "127.0.0.49", "--leech-contact", f"127.0.0.1:{port}",
                  "--no-utp")
    done = leech.wait_event("finished", FIND_TIMEOUT)
    print(f"DHT: libtorrent leecher through torrentfs's node finished {done['elapsed']:.2f}s after adding "
          f"({time.monotonic() - started:.2f}s with its start)")
    assert_same_tree(content, save / "dht", "libtorrent leecher that found the torrentfs seed through the DHT")
    peers = [e for e in leech.events() if e.get("event") == "peer"]
    assert any(e["port"] == port for e in peers), peers

    # libtorrent announced itself to our node with the token we gave it: a get_peers to
    # torrentfs now returns the leecher (address of the query, implied port: its DHT port).
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.62", 0))
    sock.settimeout(0.5)
    query = lt.bencode({b"t": b"gp", b"y": b"q", b"q": b"get_peers",
                        b"a": {b"id": os.urandom(20), b"info_hash": bytes.fromhex(info["infoHash"])}})
    values = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not values:
        sock.sendto(query, ("127.0.0.1", port))
        try:
            answer = lt.bdecode(sock.recvfrom(65536)[0])
        except socket.timeout:
            continue
        values = answer[b"r"].get(b"values", [])
        if not values:
            time.sleep(0.2)
    announced = {(socket.inet_ntoa(v[:4]), int.from_bytes(v[4:6], "big")) for v in values}
    assert ("127.0.0.49", lt_port) in announced, f"libtorrent's announce_peer not stored: {announced}"


def krpc_ping(tid: bytes, node_id: bytes) -> bytes:
    return b"d1:ad2:id20:" + node_id + b"e1:q4:ping1:t" + str(len(tid)).encode() + b":" + tid + b"1:y1:qe"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_hostile_krpc(tmp_path, procs, torrentfs_bin):
    port = free_port()
    proc = procs.start("tfs-dht-hostile", [torrentfs_bin, "serve", "--data", tmp_path / "data", "--port", port,
                                           "--http", f"127.0.0.1:{free_port()}", "--state", tmp_path / "state",
                                           "--dht-router", "127.0.0.254:9", "--lsd", "off", "--natpmp", "off"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.60", 0))
    sock.settimeout(0.5)
    target = ("127.0.0.1", port)
    node = os.urandom(20)

    def ask(datagram: bytes):
        sock.sendto(datagram, target)
        try:
            return sock.recvfrom(65536)[0]
        except socket.timeout:
            return None

    deadline = time.monotonic() + READY_TIMEOUT
    answer = None
    while answer is None and time.monotonic() < deadline:
        answer = ask(krpc_ping(b"aa", node))
    assert answer is not None and b"1:y1:r" in answer, f"no answer to a ping\n{proc.tail()}"
    baseline = rss_kib(proc.pid)

    junk = [b"", b"d", b"de", b"d1:t2:aa1:y1:qe", b"i1e", b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
            b"d1:ad2:id20:" + node + b"e1:q9:find_node1:t2:aa1:y1:qe",  # no target
            b"l" * 5000, b"d1:x" + b"70000:" + b"x" * 60000 + b"e",
            b"d1:ad2:id20:" + node + b"6:target20:" + node + b"e1:q9:find_node1:t2:aa1:y1:qe" + b"x" * 3000]
    sock.settimeout(0.2)
    for datagram in junk:
        sock.sendto(datagram, target)
    replies = []
    try:
        while True:
            replies.append(sock.recvfrom(65536)[0])
    except socket.timeout:
        pass
    assert replies == [], f"malformed datagrams were answered: {replies[:3]}"

    # A flood from one address: answers stop at the rate limit, none larger than 8x its query.
    flooder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flooder.bind(("127.0.0.61", 0))
    flooder.settimeout(0.3)
    queries = [b"d1:ad2:id20:" + node + b"9:info_hash20:" + os.urandom(20) + b"e1:q9:get_peers1:t2:" + bytes([i % 256, i // 256])
               + b"1:y1:qe" for i in range(20000)]
    for q in queries:
        flooder.sendto(q, target)
    answers = []
    try:
        while True:
            answers.append(flooder.recvfrom(65536)[0])
    except socket.timeout:
        pass
    assert 0 < len(answers) <= 200, f"{len(answers)} answers to a flood of {len(queries)} queries"
    assert max(len(a) for a in answers) <= 8 * len(queries[0])
    assert proc.poll() is None, f"torrentfs died\n{proc.tail()}"
    # Still answering others, memory bounded.
    sock.settimeout(1.0)
    assert ask(krpc_ping(b"zz", os.urandom(20))) is not None
    grown = rss_kib(proc.pid) - baseline
    assert grown < 64 * 1024, f"RSS grew by {grown} KiB under the flood"
