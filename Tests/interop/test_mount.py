"""The FUSE mount (docs/mount-spec.md) against real peers, on a loopback-only
network (conftest.py moves the session into its own network namespace).

Every test mounts torrentfs in a temporary folder (``torrentfs mount MNT -f``
in a subprocess, so the daemon's PID is known), talks to it through the
filesystem only (``.add``, ``.status``, reads, xattrs, rmdir) and compares
every byte read with the source data:

1. cold streaming from a libtorrent seeder (whole-file sha256, random reads),
   and a small file of a large torrent fetches little of the rest;
2. four readers at once, while another read is blocked on a piece no peer
   has: the others, ``ls`` and ``.status`` are not held up; removing the
   torrent fails the blocked read with EIO;
3. ``.add`` in every accepted form, its errors (EINVAL, mount stays healthy,
   ``addErrors``), merging, one folder per torrent;
4. unmount while a read is blocked, and SIGINT to a blocked reader;
5. remount without peers: verified data is served, unverified data is not;
6. a hostile peer serving corrupt blocks: readers get only correct bytes;
7. rmdir (with and without ``remove_data``), read-only semantics, modes,
   sizes, xattrs, the ``mount.torrentfs`` helper form, SIGTERM, remount.

Every wait is bounded; every mount is unmounted at the end (``fusermount3
-u``, then lazily); every process is stopped by PID."""

from __future__ import annotations

import base64
import errno
import functools
import hashlib
import http.server
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import pytest

from hostile import HostilePeer, TorrentFile
from mounts import (EXIT_TIMEOUT, FS_TIMEOUT, METADATA_TIMEOUT, MOUNT_TIMEOUT, bounded, force_unmount,
                    in_mount_table, is_mount_point, wait_until)
from swarm import LT_PYTHON, LtPeer, ProcGroup, json_lines, make_tree

# ---------------------------------------------------------------------------
# Bounds (seconds). Loopback transfers of a few MB take well under a second or
# two; these catch hangs, except QUICK, which is the promise being tested.
# ---------------------------------------------------------------------------

# "Within a second or two": ls/.status/other reads next to a blocked read.
QUICK = 2.0
# Reading a few MB through the mount from a loopback seeder.
TRANSFER_TIMEOUT = 60.0
# libtorrent's hash check of the seeded data.
SEED_CHECK_TIMEOUT = 30.0
# A blocked reader's error after an unmount, a removal, or SIGINT.
ERROR_WITHIN = 5.0
# Each of the four concurrent readers of test 2 (up to 14 MB from loopback).
CONCURRENT_READ_WITHIN = 10.0
# How long a read must stay blocked to count as blocked.
BLOCKED_FOR = 1.5
# `-o read_timeout=` used where a read of missing data must fail.
READ_TIMEOUT = 2

# ---------------------------------------------------------------------------
# Content (made once per module)
# ---------------------------------------------------------------------------

# A single-file torrent for streaming: 92 pieces of 64 KiB.
STREAM_NAME = "stream.bin"
STREAM_SIZE = 6_000_037
STREAM_PIECE = "64K"
# A ~37 MB multi-file torrent with a small file in it: 142 pieces of 256 KiB.
BIG_NAME = "big"
BIG_FILES = {
    "a.bin": 14_000_011,
    "b.bin": 12_000_007,
    "small.txt": 100_003,
    "sub/c.bin": 8_000_009,
    "sub/d.bin": 3_000_017,
    "tiny.txt": 1_234,
}
BIG_PIECE = "256K"
BIG_PIECE_BYTES = 256 * 1024
# Two more torrents that are only ever added, never downloaded.
EXTRA_NAME = "extra"
EXTRA_FILES = {"one.txt": 5_000, "deep/two.bin": 70_001, "deep/er/three.dat": 123}
LONE_NAME = "lone.txt"
LONE_SIZE = 33_333

# In test 2, the partial seeder's copy of b.bin has this range zeroed, so the
# pieces over it fail its check and no peer has them.
HOLE_OFFSET = 8 << 20
HOLE_LENGTH = 512 << 10


class Item:
    """One torrent of the corpus: its .torrent, its source data, its files."""

    def __init__(self, parent: Path, name: str, torrent: Path, files: Dict[str, int]):
        self.parent = parent
        self.name = name
        self.torrent = torrent
        self.files = files  # path inside the torrent folder -> size
        self.t = TorrentFile(torrent, parent)
        self.single = self.t.files[0][0] == parent / name and len(self.t.files) == 1
        self.size = sum(files.values())

    @property
    def hex(self) -> str:
        return self.t.info_hash_hex

    @property
    def base32(self) -> str:
        return base64.b32encode(self.t.info_hash).decode()

    def source(self, rel: str) -> Path:
        return self.parent / self.name if self.single else self.parent / self.name / rel

    def source_bytes(self, rel: str) -> bytes:
        return self.source(rel).read_bytes()

    def magnet(self, peers: Sequence[int] = (), dn: bool = True) -> str:
        m = f"magnet:?xt=urn:btih:{self.hex}"
        if dn:
            m += f"&dn={self.name}"
        return m + "".join(f"&x.pe=127.0.0.1:{p}" for p in peers)

    def offset_of(self, rel: str) -> int:
        """Byte offset of a file inside the torrent."""
        pos = 0
        for path, size in self.t.files:
            if path == self.source(rel):
                return pos
            pos += size
        raise KeyError(rel)


class Corpus:
    def __init__(self, root: Path, bin_path: Path):
        src = root / "src"
        src.mkdir(parents=True)
        make_tree(src, {STREAM_NAME: STREAM_SIZE}, seed=101)
        make_tree(src / BIG_NAME, BIG_FILES, seed=202)
        make_tree(src / EXTRA_NAME, EXTRA_FILES, seed=303)
        make_tree(src, {LONE_NAME: LONE_SIZE}, seed=404)
        self.src = src
        torrents = root / "torrents"
        torrents.mkdir()

        def create(name: str, piece: Optional[str]) -> Path:
            out = torrents / f"{name}.torrent"
            cmd = [str(bin_path), "create", str(src / name), "-o", str(out), "--no-date"]
            if piece:
                cmd += ["--piece-length", piece]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
            return out

        self.stream = Item(src, STREAM_NAME, create(STREAM_NAME, STREAM_PIECE),
                           {STREAM_NAME: STREAM_SIZE})
        self.big = Item(src, BIG_NAME, create(BIG_NAME, BIG_PIECE), dict(BIG_FILES))
        self.extra = Item(src, EXTRA_NAME, create(EXTRA_NAME, None), dict(EXTRA_FILES))
        self.lone = Item(src, LONE_NAME, create(LONE_NAME, None), {LONE_NAME: LONE_SIZE})
        assert self.big.t.piece_length == BIG_PIECE_BYTES


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, torrentfs_bin) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("mount-corpus"), torrentfs_bin)


# ---------------------------------------------------------------------------
# Helpers: bounded calls, mount table, reads
# ---------------------------------------------------------------------------

def timed(fn: Callable, timeout: float, what: str):
    """(result, seconds) of a bounded call."""
    start = time.monotonic()
    value = bounded(fn, timeout, what)
    return value, time.monotonic() - start


def daemon_pids(mnt: Path) -> List[int]:
    """PIDs of torrentfs daemons serving ``mnt`` (background mode, where the
    PID is not printed): the processes whose argv is `… mount MNT -f …` for
    this test's own temporary mount point."""
    target = str(mnt)
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if "mount" in argv and "-f" in argv and target in argv:
            out.append(int(entry))
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (not reaped yet) has exited.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pread_all(path: Path, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        out = bytearray()
        while len(out) < length:
            chunk = os.pread(fd, length - len(out), offset + len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return h.hexdigest()
            h.update(chunk)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_sizes(root: Path) -> Dict[str, int]:
    """relative path -> st_size of every file under ``root`` (bounded by the caller)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[p.relative_to(root).as_posix()] = p.stat().st_size
    return out


def shell(script: str, *args, timeout: float = FS_TIMEOUT + 5) -> subprocess.CompletedProcess:
    """bash -c SCRIPT with positional arguments $1…, bounded."""
    return subprocess.run(["bash", "-c", script, "bash", *[str(a) for a in args]],
                          capture_output=True, text=True, timeout=timeout)


# A reader in its own process (so that a read that never returns can be
# interrupted or killed): opens PATH, prints {"event": "opened"}, preads
# LENGTH bytes at OFFSET and prints how that ended.
READER_SCRIPT = r"""
import hashlib, json, os, sys, time
path, offset, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_RDONLY)
print(json.dumps({"event": "opened"}), flush=True)
t0 = time.monotonic()
try:
    data = os.pread(fd, length, offset)
    out = {"ok": True, "len": len(data), "sha": hashlib.sha256(data).hexdigest()}
except KeyboardInterrupt:
    out = {"ok": False, "interrupted": True}
except OSError as e:
    out = {"ok": False, "errno": e.errno, "error": str(e)}
out["event"] = "done"
out["elapsed"] = time.monotonic() - t0
print(json.dumps(out), flush=True)
"""


class Reader:
    """A READER_SCRIPT process."""

    def __init__(self, procs: ProcGroup, path: Path, offset: int, length: int,
                 name: str = "reader"):
        self.proc = procs.start(name, [LT_PYTHON, "-c", READER_SCRIPT, path, offset, length])

    def events(self) -> List[dict]:
        return json_lines(self.proc.stdout())

    def result(self) -> Optional[dict]:
        done = [e for e in self.events() if e.get("event") == "done"]
        return done[0] if done else None

    def wait_opened(self, timeout: float = FS_TIMEOUT) -> None:
        wait_until(lambda: any(e.get("event") == "opened" for e in self.events())
                   or self.proc.poll() is not None, timeout, "the reader to open its file",
                   detail=self.proc.tail)
        assert any(e.get("event") == "opened" for e in self.events()), \
            f"reader could not open its file\n{self.proc.tail()}"

    def wait_result(self, timeout: float) -> Optional[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.result()
            if r is not None or self.proc.poll() is not None:
                self.proc.wait(2)
                return self.result()
            time.sleep(0.02)
        return self.result()

    def assert_blocked(self, seconds: float = BLOCKED_FOR) -> None:
        """Still reading after ``seconds`` (the read is really blocked)."""
        time.sleep(seconds)
        assert self.proc.poll() is None and self.result() is None, (
            f"the read was expected to block, but it ended: {self.result()}\n{self.proc.tail()}")


# ---------------------------------------------------------------------------
# Mounts
# ---------------------------------------------------------------------------

def lt_seed(procs: ProcGroup, item: Item, save: Optional[Path] = None, name: str = "lt-seed",
            **kw) -> LtPeer:
    """A libtorrent seeder of ``item`` (hash-checks the data first; TCP only)."""
    peer = LtPeer(procs, name, save or item.parent, torrent=item.torrent, **kw)
    peer.wait_listening()
    peer.wait_seeding(SEED_CHECK_TIMEOUT)
    return peer


def assert_same_bytes(got: bytes, want: bytes, what: str) -> None:
    if got == want:
        return
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    raise AssertionError(f"{what}: {len(got)} bytes read, {len(want)} expected; "
                         f"first difference at byte {first}")


# ---------------------------------------------------------------------------
# 1. Cold streaming from a libtorrent seeder
# ---------------------------------------------------------------------------

def test_cold_stream_random_reads_then_whole_file(corpus, procs, mounter):
    """A magnet with x.pe: the folder appears (named by dn), 20 reads at
    random offsets of a file nothing was downloaded of return the source
    bytes, then the whole file's sha256 equals the source's, and .status
    counts it all verified."""
    item = corpus.stream
    seeder = lt_seed(procs, item)
    m = mounter("stream")
    m.add(item.magnet([seeder.port]) + "\n")
    m.wait_folder(item.name)
    path = m.path(item.name, item.name)
    assert m.listdir(item.name, timeout=METADATA_TIMEOUT) == [item.name]
    st = bounded(lambda: os.stat(path), FS_TIMEOUT, "stat")
    assert st.st_size == item.size

    source = item.source_bytes(item.name)
    rng = random.Random(20240601)
    for i in range(20):
        offset = rng.randrange(item.size)
        length = min(rng.randint(1, 300_000), item.size - offset)
        got = bounded(lambda: pread_all(path, offset, length), TRANSFER_TIMEOUT,
                      f"random read #{i} ({length} bytes at {offset})")
        assert_same_bytes(got, source[offset:offset + length], f"random read #{i} at {offset}")

    digest = bounded(lambda: sha256_of(path), TRANSFER_TIMEOUT, "reading the whole file")
    assert digest == sha256_bytes(source), "whole-file sha256 differs from the source"

    def all_verified():
        t = m.torrent(item.hex)
        return t is not None and t["verifiedBytes"] == item.size
    wait_until(all_verified, FS_TIMEOUT, "verifiedBytes == size", detail=lambda: str(m.torrent(item.hex)))
    t = m.torrent(item.hex)
    assert t["totalSize"] == item.size and t["progress"] == pytest.approx(1.0)
    assert t["folder"] == item.name and t["name"] == item.name


def test_small_file_of_large_torrent_fetches_little(corpus, procs, mounter):
    """Reading a 100 KB file of a 37 MB torrent downloads that file's pieces
    (and a little around them), not the rest: our downloaded/verified bytes
    and the seeder's upload counter stay far below the torrent's size, and
    the other files' st_blocks stay near zero."""
    item = corpus.big
    seeder = lt_seed(procs, item)
    m = mounter("small")
    m.add(item.magnet([seeder.port]) + "\n")
    m.wait_folder(item.name)
    path = m.path(item.name, "small.txt")
    got = bounded(lambda: path.read_bytes(), TRANSFER_TIMEOUT, "reading small.txt")
    assert_same_bytes(got, item.source_bytes("small.txt"), "small.txt")

    time.sleep(2.0)  # let anything else in flight arrive, and lt's counter tick
    t = m.torrent(item.hex)
    assert t is not None, m.status()
    limit = 2 << 20  # the small file's pieces (<= 2 x 256 KiB) plus slack
    assert t["totalSize"] == item.size
    assert t["downloaded"] > 0, t
    assert t["downloaded"] < limit, f"read 100 KB, downloaded {t['downloaded']} of {item.size}"
    assert 100_003 <= t["verifiedBytes"] < limit, t
    uploaded = seeder.last_status().get("total_payload_upload", 0)
    assert uploaded < limit, f"the seeder uploaded {uploaded} bytes for a 100 KB read"
    small = bounded(lambda: os.stat(path), FS_TIMEOUT, "stat small.txt")
    assert small.st_blocks * 512 >= 100_003, small
    for rel in ("a.bin", "b.bin", "sub/c.bin", "sub/d.bin"):
        other = bounded(lambda: os.stat(m.path(item.name, rel)), FS_TIMEOUT, f"stat {rel}")
        assert other.st_size == BIG_FILES[rel]
        assert other.st_blocks * 512 <= 2 * BIG_PIECE_BYTES, (rel, other.st_blocks)


# ---------------------------------------------------------------------------
# 2. Concurrent readers, and a read no peer can satisfy
# ---------------------------------------------------------------------------

def test_concurrent_readers_not_held_up_by_blocked_read(corpus, procs, mounter, tmp_path):
    """A seeder lacks the pieces over 512 KiB of b.bin (its copy is zeroed
    there). A read of that range blocks; meanwhile four readers on other files
    and offsets (one on b.bin itself) all complete with the right bytes, and
    ls, stat and .status answer within QUICK seconds each. Then rmdir of the
    torrent folder fails the blocked read with EIO."""
    item = corpus.big
    partial_parent = tmp_path / "partial"
    shutil.copytree(item.parent / item.name, partial_parent / item.name)
    with open(partial_parent / item.name / "b.bin", "r+b") as f:
        f.seek(HOLE_OFFSET)
        f.write(b"\0" * HOLE_LENGTH)
    b_start = item.offset_of("b.bin")
    lost = set(range((b_start + HOLE_OFFSET) // BIG_PIECE_BYTES,
                     (b_start + HOLE_OFFSET + HOLE_LENGTH - 1) // BIG_PIECE_BYTES + 1))
    seeder = LtPeer(procs, "lt-partial", partial_parent, torrent=item.torrent)
    seeder.wait_listening()
    total = item.t.piece_count
    st = seeder.wait_event(
        lambda e: e.get("event") == "status" and "checking" not in e["state"]
        and e["num_pieces"] == total - len(lost),
        SEED_CHECK_TIMEOUT, f"the partial seeder's check ({total - len(lost)}/{total} pieces)")
    assert not st["is_seeding"]

    m = mounter("concurrent")
    m.add(item.magnet([seeder.port]) + "\n")
    m.wait_folder(item.name)
    assert m.listdir(item.name, timeout=METADATA_TIMEOUT) == ["a.bin", "b.bin", "small.txt", "sub", "tiny.txt"]

    blocked = Reader(procs, m.path(item.name, "b.bin"), HOLE_OFFSET + 128 * 1024, 64 * 1024,
                     name="blocked-reader")
    blocked.wait_opened()
    blocked.assert_blocked()

    jobs = {
        "a.bin whole": ("a.bin", 0, BIG_FILES["a.bin"]),
        "sub/c.bin 3 MB at 1 MB": ("sub/c.bin", 1_000_000, 3_000_000),
        "small.txt whole": ("small.txt", 0, BIG_FILES["small.txt"]),
        "b.bin first 2 MB": ("b.bin", 0, 2_000_000),
    }
    results: Dict[str, object] = {}

    def run(label, rel, offset, length):
        try:
            start = time.monotonic()
            data = pread_all(m.path(item.name, rel), offset, length)
            results[label] = (data, time.monotonic() - start)
        except BaseException as e:  # noqa: BLE001 - reported below
            results[label] = e

    threads = [threading.Thread(target=run, args=(label, *job), daemon=True)
               for label, job in jobs.items()]
    for th in threads:
        th.start()

    # While the four read and the fifth is blocked: the tree and .status answer.
    latencies = {}
    for label, fn in [
        ("ls root", lambda: m.listdir()),
        ("ls folder", lambda: m.listdir(item.name)),
        ("ls sub", lambda: m.listdir(item.name, "sub")),
        ("stat b.bin", lambda: os.stat(m.path(item.name, "b.bin"))),
        (".status", lambda: m.status()),
    ]:
        _, latencies[label] = timed(fn, QUICK + FS_TIMEOUT, label)
    proc = subprocess.run(["ls", "-la", str(m.mnt), str(m.path(item.name))],
                          capture_output=True, text=True, timeout=QUICK + FS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    slow = {k: round(v, 2) for k, v in latencies.items() if v > QUICK}
    assert not slow, f"held up by the blocked read: {slow}"

    deadline = time.monotonic() + TRANSFER_TIMEOUT
    for th in threads:
        th.join(max(0.0, deadline - time.monotonic()))
    unfinished = [label for label in jobs if label not in results]
    assert not unfinished, f"readers not finished after {TRANSFER_TIMEOUT}s: {unfinished}\n{m.log()}"
    for label, (rel, offset, length) in jobs.items():
        r = results[label]
        assert not isinstance(r, BaseException), f"{label}: {r!r}"
        data, took = r
        want = item.source(rel).read_bytes()[offset:offset + length]
        assert_same_bytes(data, want, label)
        # Loopback: 14 MB take a fraction of a second; a few MB or less, "at once".
        limit = QUICK if length <= 2_000_000 else CONCURRENT_READ_WITHIN
        assert took <= limit, f"{label} took {took:.2f}s next to the blocked read (limit {limit}s)"

    # A read of the same lost range on a second handle joins the wait.
    again = Reader(procs, m.path(item.name, "b.bin"), HOLE_OFFSET, 4096, name="blocked-reader-2")
    again.wait_opened()
    assert blocked.result() is None and blocked.proc.poll() is None, \
        f"the read of pieces no peer has ended: {blocked.result()}"
    # .status during all that: the torrent is there, its lost pieces are not verified.
    t = m.torrent(item.hex)
    assert t["verifiedBytes"] <= item.size - HOLE_LENGTH, t

    # Removing the torrent fails the blocked reads with EIO.
    _, took = timed(lambda: os.rmdir(m.path(item.name)), FS_TIMEOUT, "rmdir of the torrent folder")
    assert took < QUICK, f"rmdir took {took:.2f}s"
    for reader in (blocked, again):
        r = reader.wait_result(ERROR_WITHIN)
        assert r is not None, f"blocked read still waiting {ERROR_WITHIN}s after rmdir\n{reader.proc.tail()}"
        assert not r["ok"] and r.get("errno") == errno.EIO, f"blocked read after rmdir: {r}"
    assert item.name not in m.folders()


# ---------------------------------------------------------------------------
# 3. .add
# ---------------------------------------------------------------------------

def test_add_info_hashes_merge_and_one_folder(corpus, procs, mounter):
    """`echo HEX > .add` (no peers: a folder named by the hex), then
    `echo MAGNET-with-x.pe >> .add` merges the peer in: the metadata arrives,
    the folder takes the torrent's name (still one folder) and reads work.
    A 32-char base32 hash, then two lines in one write (a magnet with dn and
    an upper-case hex), then the .torrent of the base32 one (twice): one folder
    per torrent, renamed once the metadata is known."""
    item = corpus.stream
    seeder = lt_seed(procs, item)
    m = mounter("hashes")
    add = m.path(".add")

    proc = shell('echo "$1" > "$2"', item.hex, add)
    assert proc.returncode == 0, f"echo HEX > .add failed: {proc.stderr}"
    m.wait_folder(item.hex, timeout=FS_TIMEOUT)
    t = m.torrent(item.hex)
    assert t is not None and t["folder"] == item.hex, m.status()

    proc = shell('echo "$1" >> "$2"', item.magnet([seeder.port], dn=False), add)
    assert proc.returncode == 0, f"echo MAGNET >> .add failed: {proc.stderr}"
    m.wait_folder(item.name, gone=[item.hex])
    assert m.folders() == [item.name]
    got = bounded(lambda: m.path(item.name, item.name).read_bytes(), TRANSFER_TIMEOUT, "reading")
    assert_same_bytes(got, item.source_bytes(item.name), "file of the merged torrent")
    assert [x["infoHash"] for x in m.status()["torrents"]] == [item.hex]

    big, extra, lone = corpus.big, corpus.extra, corpus.lone
    proc = shell('echo "$1" > "$2"', big.base32, add)
    assert proc.returncode == 0, f"echo BASE32 > .add failed: {proc.stderr}"
    m.wait_folder(big.hex, timeout=FS_TIMEOUT)

    m.add(f"{extra.magnet()}\n{lone.hex.upper()}\n")
    m.wait_folder(extra.name, timeout=FS_TIMEOUT)
    m.wait_folder(lone.hex, timeout=FS_TIMEOUT)

    for attempt in (1, 2):
        proc = subprocess.run(["cp", str(big.torrent), str(add)], capture_output=True, text=True,
                              timeout=FS_TIMEOUT + 5)
        assert proc.returncode == 0, f"cp big.torrent .add (#{attempt}): {proc.stderr}"
        m.wait_folder(big.name, timeout=FS_TIMEOUT, gone=[big.hex])
    assert sorted(m.folders()) == sorted([item.name, big.name, extra.name, lone.hex])
    hashes = sorted(x["infoHash"] for x in m.status()["torrents"])
    assert hashes == sorted([item.hex, big.hex, extra.hex, lone.hex])
    sizes = bounded(lambda: tree_sizes(m.path(big.name)), FS_TIMEOUT, "walking big")
    assert sizes == BIG_FILES


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


def test_add_torrent_bytes_url_path_and_cli(corpus, mounter, run_torrentfs, tmp_path):
    """The bytes of a .torrent (cp), an http URL of one (served on
    127.0.0.1), the absolute path of one: each appears as a folder with its
    files at their exact sizes, with no peer at all. Adding one again (by
    another form) leaves one folder. `torrentfs add` and `torrentfs status`
    work on the mount."""
    m = mounter("sources")
    big, extra, lone, stream = corpus.big, corpus.extra, corpus.lone, corpus.stream

    proc = subprocess.run(["cp", str(extra.torrent), str(m.path(".add"))], capture_output=True,
                          text=True, timeout=FS_TIMEOUT + 5)
    assert proc.returncode == 0, f"cp extra.torrent .add: {proc.stderr}"
    m.wait_folder(extra.name, timeout=FS_TIMEOUT)

    served = tmp_path / "www"
    served.mkdir()
    shutil.copy(big.torrent, served / "big.torrent")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served)))
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/big.torrent"
        proc = shell('echo "$1" > "$2"', url, m.path(".add"), timeout=30)
        assert proc.returncode == 0, f"echo URL > .add: {proc.stderr}"
        m.wait_folder(big.name, timeout=FS_TIMEOUT)
        # A URL that is not there: refused, nothing added.
        with pytest.raises(OSError) as e:
            m.add(f"http://127.0.0.1:{server.server_address[1]}/missing.torrent\n")
        assert e.value.errno == errno.EINVAL
    finally:
        server.shutdown()
        server.server_close()

    m.add(f"{lone.torrent}\n")
    m.wait_folder(lone.name, timeout=FS_TIMEOUT)

    # Again, by other forms: still one folder each.
    m.add(big.hex + "\n")
    m.add(str(extra.torrent) + "\n")
    m.add(lone.torrent.read_bytes())
    time.sleep(0.5)
    assert sorted(m.folders()) == sorted([big.name, extra.name, lone.name])

    for item in (big, extra, lone):
        sizes = bounded(lambda: tree_sizes(m.path(item.name)), FS_TIMEOUT, f"walking {item.name}")
        assert sizes == item.files, item.name
    t = m.torrent(big.hex)
    assert t["totalSize"] == big.size and t["name"] == big.name and t["verifiedBytes"] == 0

    # The CLI wrappers.
    proc = run_torrentfs("add", m.mnt, stream.torrent, timeout=30)
    assert proc.returncode == 0, proc.stderr
    m.wait_folder(stream.name, timeout=FS_TIMEOUT)
    proc = run_torrentfs("status", m.mnt, "--json", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert sorted(x["infoHash"] for x in json.loads(proc.stdout)["torrents"]) == \
        sorted([big.hex, extra.hex, lone.hex, stream.hex])
    proc = run_torrentfs("add", m.mnt, "not a torrent", timeout=30)
    assert proc.returncode != 0


def test_add_rejects_bad_input_and_stays_healthy(corpus, mounter, tmp_path):
    """Garbage (text and binary), a truncated .torrent, bad magnets, a good
    line next to a bad one: the write or the close fails with EINVAL (`cp` and
    `echo` exit non-zero), nothing is added, .status lists a reason per
    refusal, and the mount keeps working."""
    m = mounter("bad")
    add = m.path(".add")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(random.Random(5).randbytes(5000))
    truncated = tmp_path / "truncated.torrent"
    raw = corpus.big.torrent.read_bytes()
    truncated.write_bytes(raw[: len(raw) // 2])
    bad_magnets = ["magnet:?xt=urn:btih:XYZ-not-a-hash", "magnet:?dn=no-xt-at-all",
                   "magnet:?xt=urn:btih:" + "0" * 39]
    refusals = 0

    # Through the shell tools.
    for f in (garbage, truncated):
        proc = subprocess.run(["cp", str(f), str(add)], capture_output=True, text=True,
                              timeout=FS_TIMEOUT + 5)
        assert proc.returncode != 0, f"cp {f.name} .add succeeded"
        assert "Invalid argument" in proc.stderr, proc.stderr
        refusals += 1
    for line in ["hello world, not a torrent", *bad_magnets]:
        proc = shell('echo "$1" > "$2"', line, add)
        assert proc.returncode != 0, f"echo {line!r} > .add succeeded"
        assert "Invalid argument" in proc.stderr, proc.stderr
        refusals += 1
    proc = shell('echo "$1" >> "$2"', "relative/path.torrent", add)
    assert proc.returncode != 0, "echo relative path >> .add succeeded"
    refusals += 1

    # errno itself, at the write (text) or at the close (a truncated .torrent).
    for payload in [b"garbage\n", truncated.read_bytes(), garbage.read_bytes(),
                    f"{corpus.lone.hex}\nnot-a-hash\n".encode(),
                    f"{corpus.extra.magnet()}\n{bad_magnets[0]}\n".encode()]:
        with pytest.raises(OSError) as e:
            m.add(payload)
        assert e.value.errno == errno.EINVAL, (payload[:40], e.value)
        refusals += 1

    # Healthy: nothing added, the root lists, .status parses and says why.
    assert m.folders() == [], "a refused write added something"
    proc = subprocess.run(["ls", "-la", str(m.mnt)], capture_output=True, text=True,
                          timeout=FS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    doc = m.status()
    assert doc["torrents"] == []
    errors = doc["addErrors"]
    assert len(errors) >= min(refusals, 20), f"{refusals} refusals, addErrors: {errors}"
    for e in errors:
        assert e["error"] and e["input"] is not None and e["time"], e
    assert any("bencoded" in e["input"] or ".torrent" in e["error"] for e in errors), errors
    assert any("magnet" in e["error"] for e in errors), errors
    # And still accepts good input.
    m.add(corpus.lone.torrent.read_bytes())
    m.wait_folder(corpus.lone.name, timeout=FS_TIMEOUT)


# ---------------------------------------------------------------------------
# 4. Unmount while a read is blocked; SIGINT to a blocked reader
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["no-peer", "peer-stopped"])
def test_lazy_unmount_fails_blocked_read_and_daemon_exits(case, corpus, procs, mounter):
    """A read waits for pieces nobody will send (a .torrent with no peer, or a
    torrent whose only peer was stopped). `fusermount3 -u` refuses (EBUSY,
    a file is open); `fusermount3 -uz` detaches it: the reader gets EIO within
    seconds, the daemon exits 0, and no mount is left behind."""
    item = corpus.stream
    m = mounter("unmount")
    path = m.path(item.name, item.name)
    if case == "no-peer":
        m.add(item.torrent.read_bytes())
        m.wait_folder(item.name, timeout=FS_TIMEOUT)
        offset = 0
    else:
        seeder = lt_seed(procs, item)
        m.add(item.magnet([seeder.port]) + "\n")
        m.wait_folder(item.name)
        head = bounded(lambda: pread_all(path, 0, 65536), TRANSFER_TIMEOUT, "reading the head")
        assert_same_bytes(head, item.source_bytes(item.name)[:65536], "head")
        seeder.proc.stop()
        offset = item.size - 100_000  # far beyond any readahead of the head
    reader = Reader(procs, path, offset, 65536)
    reader.wait_opened()
    reader.assert_blocked()

    proc = subprocess.run(["fusermount3", "-u", str(m.mnt)], capture_output=True, text=True,
                          timeout=15)
    assert proc.returncode != 0 and in_mount_table(m.mnt), "plain unmount with an open file succeeded?"
    start = time.monotonic()
    proc = subprocess.run(["fusermount3", "-uz", str(m.mnt)], capture_output=True, text=True,
                          timeout=15)
    assert proc.returncode == 0, proc.stderr
    r = reader.wait_result(ERROR_WITHIN)
    assert r is not None, f"reader still blocked {ERROR_WITHIN}s after the unmount\n{m.log()}"
    assert not r["ok"], f"the blocked read returned data after the unmount: {r}"
    rc = m.proc.wait(EXIT_TIMEOUT)
    assert rc is not None, f"daemon still running {EXIT_TIMEOUT}s after the unmount\n{m.log()}"
    assert rc == 0, f"daemon exited {rc}\n{m.log()}"
    assert not pid_alive(m.pid)
    took = time.monotonic() - start
    assert not is_mount_point(m.mnt) and not in_mount_table(m.mnt)
    assert took < EXIT_TIMEOUT
    # The spec: unmount -> EIO (not ECONNABORTED from an aborted connection).
    assert r.get("errno") == errno.EIO, (
        f"blocked read after unmount failed with {errno.errorcode.get(r.get('errno'))}, "
        f"not EIO: {r}")


@pytest.mark.parametrize("reader_kind", ["cat", "python"])
def test_sigint_ends_blocked_reader(reader_kind, corpus, procs, mounter):
    """Ctrl-C in a reader blocked on missing pieces: `cat` (default SIGINT
    disposition) dies at once; a python reader (which handles SIGINT, like
    most players and tools that clean up on Ctrl-C) gets EINTR from the read
    and so a KeyboardInterrupt, promptly. The mount stays healthy."""
    item = corpus.stream
    m = mounter("sigint")
    m.add(item.torrent.read_bytes())
    m.wait_folder(item.name, timeout=FS_TIMEOUT)
    path = m.path(item.name, item.name)
    if reader_kind == "cat":
        proc = procs.start("cat-reader", ["cat", path])
        time.sleep(BLOCKED_FOR)
        assert proc.poll() is None, f"cat ended without data: {proc.tail()}"
        start = time.monotonic()
        proc.popen.send_signal(signal.SIGINT)
        rc = proc.wait(ERROR_WITHIN)
        assert rc is not None, f"cat still blocked {ERROR_WITHIN}s after SIGINT"
        assert rc == -signal.SIGINT, rc
    else:
        reader = Reader(procs, path, 1_000_000, 65536)
        reader.wait_opened()
        reader.assert_blocked()
        start = time.monotonic()
        reader.proc.popen.send_signal(signal.SIGINT)
        r = reader.wait_result(ERROR_WITHIN)
        assert r is not None, (f"python reader still blocked {ERROR_WITHIN}s after SIGINT "
                               f"(kernel stack: {_stack(reader.proc.pid)})")
        assert not r["ok"] and (r.get("interrupted") or r.get("errno") == errno.EINTR), r
    assert time.monotonic() - start < ERROR_WITHIN
    _, took = timed(lambda: m.status(), FS_TIMEOUT, ".status after the interrupt")
    assert took < QUICK
    assert m.listdir(item.name) == [item.name]


def _stack(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stack").read_text().replace("\n", " | ")
    except OSError as e:
        return str(e)


# ---------------------------------------------------------------------------
# 5. Remount after the seeder is gone
# ---------------------------------------------------------------------------

def test_remount_serves_verified_data_only(corpus, procs, mounter):
    """Read two files in full from a seeder, stop the seeder and the daemon
    (SIGTERM: clean unmount), mount the same data folder again: the folder is
    back, the two files read back with the right sha256 without any peer,
    and a read of a range never downloaded fails with EIO after read_timeout
    instead of returning bytes."""
    item = corpus.big
    seeder = lt_seed(procs, item)
    opts = [f"read_timeout={READ_TIMEOUT}"]
    m = mounter("remount", opts)
    m.add(item.magnet([seeder.port]) + "\n")
    m.wait_folder(item.name)
    fetched = ["small.txt", "sub/d.bin"]
    for rel in fetched:
        digest = bounded(lambda: sha256_of(m.path(item.name, rel)), TRANSFER_TIMEOUT, f"reading {rel}")
        assert digest == sha256_bytes(item.source_bytes(rel)), rel
    verified_before = m.torrent(item.hex)["verifiedBytes"]
    assert verified_before >= sum(BIG_FILES[r] for r in fetched)
    seeder.proc.stop()
    m.terminate()

    m2 = mounter("remount", opts, data=m.data, mnt=m.mnt)
    m2.wait_folder(item.name, timeout=FS_TIMEOUT)
    t = m2.torrent(item.hex)
    assert t is not None and t["peers"] == [], t
    wait_until(lambda: m2.torrent(item.hex)["verifiedBytes"] == verified_before, FS_TIMEOUT,
               "the verified bytes of before the remount", detail=lambda: str(m2.torrent(item.hex)))
    for rel in fetched:
        digest = bounded(lambda: sha256_of(m2.path(item.name, rel)), FS_TIMEOUT, f"re-reading {rel}")
        assert digest == sha256_bytes(item.source_bytes(rel)), f"{rel} after the remount"

    offset = BIG_FILES["a.bin"] // 2
    start = time.monotonic()
    with pytest.raises(OSError) as e:
        bounded(lambda: pread_all(m2.path(item.name, "a.bin"), offset, 4096),
                READ_TIMEOUT + 10, "a read of data never downloaded")
    took = time.monotonic() - start
    assert e.value.errno == errno.EIO, e.value
    assert READ_TIMEOUT - 0.5 <= took <= READ_TIMEOUT + 5, f"EIO after {took:.1f}s"
    # The mount is fine afterwards.
    assert m2.torrent(item.hex)["verifiedBytes"] == verified_before


# ---------------------------------------------------------------------------
# 6. A hostile peer
# ---------------------------------------------------------------------------

def test_hostile_peer_corrupt_blocks_never_reach_readers(corpus, procs, mounter):
    """A peer that flips a byte of every block it sends, next to an honest
    libtorrent seeder (rate limited so the hostile one gets its share): reads
    at random offsets and the whole file return only the source bytes; the
    mount saw hash failures (the hostile peer was used)."""
    item = corpus.stream
    hostile = HostilePeer(item.t, "corrupt").start()
    procs.add_cleanup(hostile.stop)
    honest = lt_seed(procs, item, upload_limit=1 << 20)
    m = mounter("hostile")
    m.add(item.magnet([hostile.port, honest.port]) + "\n")
    m.wait_folder(item.name)
    path = m.path(item.name, item.name)
    source = item.source_bytes(item.name)
    rng = random.Random(666)
    for i in range(10):
        offset = rng.randrange(item.size)
        length = min(rng.randint(1, 200_000), item.size - offset)
        got = bounded(lambda: pread_all(path, offset, length), TRANSFER_TIMEOUT, f"read #{i}")
        assert_same_bytes(got, source[offset:offset + length], f"read #{i} at {offset}")
    digest = bounded(lambda: sha256_of(path), TRANSFER_TIMEOUT, "reading the whole file")
    assert digest == sha256_bytes(source), "whole file differs from the source"
    served = sum(c.blocks_served for c in hostile.connections)
    assert served > 0, f"the hostile peer was never asked for data\n{hostile.summary()}"
    t = m.torrent(item.hex)
    assert t["hashFailures"] >= 1 or t["bannedPeers"] >= 1, t


# ---------------------------------------------------------------------------
# 7. rmdir, read-only tree, xattrs, mount helper, SIGTERM and remount
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("remove_data", [False, True], ids=["keep-data", "remove_data"])
def test_rmdir_removes_torrent(remove_data, corpus, procs, mounter):
    """rmdir of a torrent folder: the folder and its .status entry go away,
    it does not come back on remount; its data folder DATA/data/HEX is
    deleted with `-o remove_data` and kept without."""
    item = corpus.stream
    seeder = lt_seed(procs, item)
    opts = ["remove_data"] if remove_data else []
    m = mounter("rmdir", opts)
    m.add(item.torrent.read_bytes())
    m.add(item.magnet([seeder.port]) + "\n")
    m.wait_folder(item.name, timeout=FS_TIMEOUT)
    digest = bounded(lambda: sha256_of(m.path(item.name, item.name)), TRANSFER_TIMEOUT, "reading")
    assert digest == sha256_bytes(item.source_bytes(item.name))
    data_dir = m.data / "data" / item.hex
    assert data_dir.is_dir(), f"no data folder {data_dir}"
    other = corpus.lone
    m.add(other.torrent.read_bytes())
    m.wait_folder(other.name, timeout=FS_TIMEOUT)

    bounded(lambda: os.rmdir(m.path(item.name)), FS_TIMEOUT, "rmdir")
    assert m.folders() == [other.name]
    assert [t["infoHash"] for t in m.status()["torrents"]] == [other.hex]
    assert not (m.data / "torrents" / f"{item.hex}.torrent").exists()
    if remove_data:
        wait_until(lambda: not data_dir.exists(), FS_TIMEOUT, f"{data_dir} deleted")
    else:
        time.sleep(0.5)
        assert data_dir.is_dir() and (data_dir / item.name).stat().st_size > 0, \
            "rmdir without remove_data deleted the data"
    # rmdir of something that is not a torrent folder.
    with pytest.raises(OSError) as e:
        bounded(lambda: os.rmdir(m.path("no such folder")), FS_TIMEOUT, "rmdir missing")
    assert e.value.errno == errno.ENOENT

    m.terminate()
    m2 = mounter("rmdir", opts, data=m.data, mnt=m.mnt)
    m2.wait_folder(other.name, timeout=FS_TIMEOUT)
    assert m2.folders() == [other.name]


def test_read_only_tree_modes_and_sizes(corpus, mounter):
    """Folders 0555, files 0444, .add 0644, .status 0444, exact st_size;
    writing, creating, mkdir, unlink, rename, truncate, chmod, symlink, link
    inside the mount fail with EROFS (EACCES for opening a file to write)."""
    item = corpus.big
    m = mounter("ro")
    m.add(item.torrent.read_bytes())
    m.wait_folder(item.name, timeout=FS_TIMEOUT)
    folder = m.path(item.name)

    def modes():
        out = {}
        for dirpath, dirs, files in os.walk(folder):
            for name in dirs + files:
                p = Path(dirpath) / name
                st = os.lstat(p)
                out[p.relative_to(folder).as_posix()] = (stat.S_ISDIR(st.st_mode),
                                                         stat.S_IMODE(st.st_mode), st.st_size)
        st = os.lstat(folder)
        out["."] = (stat.S_ISDIR(st.st_mode), stat.S_IMODE(st.st_mode), None)
        return out

    got = bounded(modes, FS_TIMEOUT, "walking the tree")
    for rel, (is_dir, mode, size) in got.items():
        if is_dir:
            assert mode == 0o555, (rel, oct(mode))
        else:
            assert mode == 0o444, (rel, oct(mode))
            assert size == BIG_FILES[rel], (rel, size)
    assert sorted(k for k, v in got.items() if not v[0]) == sorted(BIG_FILES)
    def mode(p: Path) -> int:
        return bounded(lambda: os.stat(p).st_mode, FS_TIMEOUT, f"stat {p.name}")
    assert stat.S_IMODE(mode(m.path(".add"))) == 0o644 and stat.S_ISREG(mode(m.path(".add")))
    assert stat.S_IMODE(mode(m.path(".status"))) == 0o444 and stat.S_ISREG(mode(m.path(".status")))
    assert stat.S_ISDIR(mode(m.mnt))

    f = folder / "a.bin"
    refused = {errno.EROFS, errno.EACCES}
    attempts: Dict[str, Callable[[], object]] = {
        "open a file for writing": lambda: os.open(f, os.O_WRONLY),
        "open a file read-write": lambda: os.open(f, os.O_RDWR),
        "open .status for writing": lambda: os.open(m.path(".status"), os.O_WRONLY),
        "create a file in a torrent folder": lambda: os.open(folder / "new.txt", os.O_WRONLY | os.O_CREAT, 0o644),
        "create a file in the root": lambda: os.open(m.path("new.txt"), os.O_WRONLY | os.O_CREAT, 0o644),
        "mkdir in a torrent folder": lambda: os.mkdir(folder / "newdir"),
        "mkdir in the root": lambda: os.mkdir(m.path("newdir")),
        "unlink a file": lambda: os.unlink(f),
        "unlink .status": lambda: os.unlink(m.path(".status")),
        "rename a file": lambda: os.rename(f, folder / "renamed.bin"),
        "rename a torrent folder": lambda: os.rename(folder, m.path("renamed")),
        "rmdir a subfolder": lambda: os.rmdir(folder / "sub"),
        "truncate a file": lambda: os.truncate(f, 0),
        "chmod a file": lambda: os.chmod(f, 0o644),
        "symlink in a folder": lambda: os.symlink("a.bin", folder / "link"),
        "hard link": lambda: os.link(f, folder / "hard"),
        "setxattr": lambda: os.setxattr(f, "user.test", b"x"),
    }
    outcomes = {}
    for what, fn in attempts.items():
        try:
            r = bounded(fn, FS_TIMEOUT, what)
            if isinstance(r, int):
                os.close(r)
            outcomes[what] = "succeeded"
        except OSError as e:
            outcomes[what] = e.errno
    wrong = {w: (o if o == "succeeded" else errno.errorcode.get(o, o)) for w, o in outcomes.items()
             if o not in refused and not (w == "setxattr" and o in (errno.EPERM, errno.ENOTSUP))}
    assert not wrong, f"not refused with EROFS/EACCES: {wrong}"
    # Nothing changed.
    assert bounded(lambda: tree_sizes(folder), FS_TIMEOUT, "walking again") == BIG_FILES
    assert m.folders() == [item.name]


def test_xattrs_on_folders_and_files(corpus, procs, mounter):
    """user.torrentfs.{progress,infohash,magnet,peers} on the torrent folder,
    a subfolder and files: the info hash, a magnet of it, the connected peer
    count, and the verified fraction (1.0000 for a file read in full, below
    that for the folder, 0.0000 for a file not read)."""
    item = corpus.big
    seeder = lt_seed(procs, item)
    m = mounter("xattr")
    m.add(item.magnet([seeder.port]) + "\n")
    m.wait_folder(item.name)
    folder = m.path(item.name)
    small = folder / "small.txt"
    data = bounded(lambda: small.read_bytes(), TRANSFER_TIMEOUT, "reading small.txt")
    assert_same_bytes(data, item.source_bytes("small.txt"), "small.txt")
    names = {"user.torrentfs.progress", "user.torrentfs.infohash", "user.torrentfs.magnet",
             "user.torrentfs.peers"}

    def xattr(p: Path, name: str) -> str:
        return bounded(lambda: os.getxattr(p, name), FS_TIMEOUT, f"getxattr {name}").decode()

    for p in (folder, folder / "sub", small, folder / "sub" / "c.bin"):
        listed = set(bounded(lambda: os.listxattr(p), FS_TIMEOUT, "listxattr"))
        assert names <= listed, (p, listed)
        assert xattr(p, "user.torrentfs.infohash") == item.hex
        magnet = xattr(p, "user.torrentfs.magnet")
        assert magnet.startswith("magnet:?") and f"urn:btih:{item.hex}" in magnet.lower(), magnet
    wait_until(lambda: int(xattr(folder, "user.torrentfs.peers")) >= 1, FS_TIMEOUT,
               "user.torrentfs.peers >= 1")
    assert int(xattr(small, "user.torrentfs.peers")) >= 1
    assert xattr(small, "user.torrentfs.progress") == "1.0000"
    folder_progress = float(xattr(folder, "user.torrentfs.progress"))
    assert 0 < folder_progress < 0.1, folder_progress
    assert xattr(folder / "sub" / "d.bin", "user.torrentfs.progress") == "0.0000"
    with pytest.raises(OSError) as e:
        bounded(lambda: os.getxattr(small, "user.torrentfs.nope"), FS_TIMEOUT, "getxattr unknown")
    assert e.value.errno == errno.ENODATA

    seeder.proc.stop()
    wait_until(lambda: xattr(folder, "user.torrentfs.peers") == "0", FS_TIMEOUT,
               "user.torrentfs.peers == 0 once the seeder is gone")


def test_mount_helper_symlink_background_and_remount(corpus, mounter, procs, tmp_path, torrentfs_bin):
    """A symlink named mount.torrentfs, called as mount(8) does
    (`mount.torrentfs torrentfs MNT -o data=DIR,port=0`), returns once the
    mount is live; the daemon logs to DATA/torrentfs.log; `fusermount3 -u`
    ends the daemon. `torrentfs mount` (background) again: every torrent is
    back."""
    link_dir = tmp_path / "sbin"
    link_dir.mkdir()
    helper = link_dir / "mount.torrentfs"
    helper.symlink_to(torrentfs_bin)
    mnt, data = tmp_path / "helper" / "mnt", tmp_path / "helper" / "data"
    mnt.mkdir(parents=True)

    def cleanup():
        force_unmount(mnt)
        for pid in daemon_pids(mnt):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    procs.add_cleanup(cleanup)

    def mount_background(cmd):
        start = time.monotonic()
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                              timeout=MOUNT_TIMEOUT + 10)
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}: {proc.stderr}"
        assert time.monotonic() - start < MOUNT_TIMEOUT
        # Live when the command returns: no polling.
        assert is_mount_point(mnt) and in_mount_table(mnt), f"{mnt} not mounted after {cmd}"
        pids = daemon_pids(mnt)
        assert len(pids) == 1, f"daemons for {mnt}: {pids}"
        return pids[0]

    pid = mount_background([helper, "torrentfs", mnt, "-o", f"data={data},port=0"])
    added = [corpus.big, corpus.extra, corpus.lone]
    for item in added:
        proc = subprocess.run(["cp", str(item.torrent), str(mnt / ".add")], capture_output=True,
                              text=True, timeout=FS_TIMEOUT + 5)
        assert proc.returncode == 0, proc.stderr
    magnet_only = corpus.stream  # no peer: stays a magnet named by its dn
    bounded(lambda: (mnt / ".add").write_text(magnet_only.magnet() + "\n"), FS_TIMEOUT, "add magnet")
    want = sorted([i.name for i in added] + [magnet_only.name])
    listing = lambda: sorted(n for n in os.listdir(mnt) if n not in (".add", ".status"))  # noqa: E731
    assert bounded(listing, FS_TIMEOUT, "ls") == want
    log = data / "torrentfs.log"
    assert log.is_file() and "mounted" in log.read_text(errors="replace"), "no DATA/torrentfs.log"

    proc = subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True, text=True, timeout=15)
    assert proc.returncode == 0, proc.stderr
    wait_until(lambda: not pid_alive(pid), EXIT_TIMEOUT, "the daemon's exit after fusermount3 -u",
               detail=lambda: log.read_text(errors="replace")[-3000:])
    assert not in_mount_table(mnt)

    pid = mount_background([torrentfs_bin, "mount", mnt, "-o", f"data={data},port=0"])
    assert bounded(listing, FS_TIMEOUT, "ls after the remount") == want
    doc = json.loads(bounded(lambda: (mnt / ".status").read_bytes(), FS_TIMEOUT, ".status"))
    assert sorted(t["infoHash"] for t in doc["torrents"]) == \
        sorted(i.hex for i in added + [magnet_only])
    sizes = bounded(lambda: tree_sizes(mnt / corpus.big.name), FS_TIMEOUT, "walking big")
    assert sizes == BIG_FILES
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(pid), EXIT_TIMEOUT, "the daemon's exit after SIGTERM")
    assert not in_mount_table(mnt)


def test_sigterm_unmounts_cleanly_and_remount_restores_all(corpus, procs, mounter):
    """SIGTERM to the foreground daemon (with a folder open by a shell-like
    reader of the root) unmounts and exits 0 within seconds; a remount brings
    back every torrent: one added as .torrent, one whose metadata came from a
    peer (now a .torrent too), and one magnet that never got metadata."""
    stream, big, extra = corpus.stream, corpus.big, corpus.extra
    seeder = lt_seed(procs, stream)
    m = mounter("persist")
    m.add(big.torrent.read_bytes())
    m.add(stream.magnet([seeder.port]) + "\n")
    m.add(extra.magnet(dn=False) + "\n")
    m.wait_folder(stream.name)
    m.wait_folder(big.name, timeout=FS_TIMEOUT)
    m.wait_folder(extra.hex, timeout=FS_TIMEOUT)
    digest = sha256_bytes(stream.source_bytes(stream.name))
    got = bounded(lambda: sha256_of(m.path(stream.name, stream.name)), TRANSFER_TIMEOUT, "reading")
    assert got == digest
    before = sorted(m.folders())
    hold = bounded(lambda: os.open(m.path(big.name), os.O_RDONLY | os.O_DIRECTORY), FS_TIMEOUT,
                   "opening a folder")
    try:
        start = time.monotonic()
        m.terminate()
        assert time.monotonic() - start < EXIT_TIMEOUT
    finally:
        try:
            os.close(hold)
        except OSError:
            pass
    assert not is_mount_point(m.mnt)
    seeder.proc.stop()

    m2 = mounter("persist", data=m.data, mnt=m.mnt)
    wait_until(lambda: sorted(m2.folders()) == before, FS_TIMEOUT, "every folder back",
               detail=lambda: f"{m2.folders()} != {before}")
    hashes = sorted(t["infoHash"] for t in m2.status()["torrents"])
    assert hashes == sorted([stream.hex, big.hex, extra.hex])
    got = bounded(lambda: sha256_of(m2.path(stream.name, stream.name)), FS_TIMEOUT,
                  "re-reading the file without peers")
    assert got == digest, "the file read after the remount differs"
    m2.terminate()
