"""`torrentfs serve` with real players and hostile clients (issue 12), fed by a real
libtorrent seeder; complements test_serve.py.

- ffprobe and `ffmpeg -ss` over the HTTP URL decode the same frames as from the original
  file: an mp4 whose moov atom is at the end (the player must seek there first) and an mkv
  (cues at the end), read while the torrent downloads from a rate-limited seeder (cold) and
  again once every piece is verified;
- a slow client (64 KiB/s) of a 64 MiB file: the server's RSS stays under a stated bound
  while a fast client downloads the whole file, correctly and within a time bound, and the
  slow one keeps getting correct bytes;
- clients that disconnect, mid-body or while their first read waits, several times: their
  reads are cancelled and their readers closed (the download stops instead of fetching
  their readahead windows), the server stays up with bounded RSS, and the next requests are
  answered correctly;
- what test_serve.py leaves out of the issue's list of malformed and hostile requests:
  request lines, oversized headers, bad `Range` values, more traversal encodings, unknown
  and malformed hashes, multiple and overlapping ranges, If-Range with a date or a weak tag,
  HEAD with ranges, 416 details, the Host rule (--http-host, IPv6 literals, look-alike
  names), the playlist's URLs, pipelined requests. A request the parser refuses gets 400 and
  its connection is closed (not held open); after each case the server still answers.

Runs in the session's private network namespace; every process is stopped by PID."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from swarm import LtPeer, make_tree, torrentfs_create
from test_serve import Served

MIB = 1 << 20
# Bound on one ffmpeg/ffprobe/curl run (a stalled stream fails the test instead of hanging it).
TOOL_TIMEOUT = 90
SEED_CHECK_TIMEOUT = 60.0


def seeder(procs, parent: Path, torrent: Path, **kw) -> LtPeer:
    """A libtorrent seeder of the data under ``parent`` (hash-checked before it is used)."""
    peer = LtPeer(procs, "lt-seed", parent, torrent=torrent, **kw)
    peer.wait_listening()
    peer.wait_seeding(SEED_CHECK_TIMEOUT)
    return peer


def progress(served: Served) -> float:
    response, body = served.request("GET", "/", {"Accept": "application/json"})
    assert response.status == 200
    return json.loads(body)[0]["progress"]


def run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, timeout=TOOL_TIMEOUT, **kw)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stderr.decode(errors='replace')[-2000:]}"
    return proc


# ---------------------------------------------------------------------------
# Players: ffprobe and ffmpeg -ss over HTTP
# ---------------------------------------------------------------------------

MEDIA_SECONDS = 24
SEEKS = (13.3, 21.0)   # seconds: the middle, and near the end
SEEK_FRAMES = 12


def make_media(root: Path) -> None:
    """A ~6.5 MB H.264/AAC mp4 (ffmpeg writes the moov atom after the media data unless asked
    for +faststart) and the same streams remuxed into an mkv. Noise keeps the video from
    compressing to nothing, so the file spans many pieces."""
    root.mkdir(parents=True)
    run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", MEDIA_SECONDS, "-vf", "noise=alls=30:allf=t+u", "-c:v", "libx264", "-preset", "ultrafast",
         "-g", "50", "-b:v", "2M", "-maxrate", "2M", "-bufsize", "2M", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "128k", root / "clip.mp4"])
    run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", root / "clip.mp4", "-c", "copy",
         root / "clip.mkv"])


def top_level_boxes(path: Path) -> list:
    data = path.read_bytes()
    boxes, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        boxes.append(kind.decode())
        at += size if size else len(data)
    return boxes


def ffprobe(target) -> dict:
    """The streams and the container as ffprobe sees them, without the input's name."""
    out = run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", target]).stdout
    info = json.loads(out)
    info["format"].pop("filename")
    return info


def frames(target, at: float) -> str:
    """framemd5 of SEEK_FRAMES video frames (and the audio decoded alongside) from `at` seconds."""
    out = run(["ffmpeg", "-hide_banner", "-v", "error", "-ss", at, "-i", target, "-frames:v", SEEK_FRAMES,
               "-f", "framemd5", "-"]).stdout.decode()
    video = [line for line in out.splitlines() if line.startswith("0,")]
    assert len(video) == SEEK_FRAMES, out
    return out


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """(parent, root) with root = parent/Media holding clip.mp4 and clip.mkv, and what
    ffprobe and ffmpeg make of the original files."""
    parent = tmp_path_factory.mktemp("media-src")
    root = parent / "Media"
    make_media(root)
    assert top_level_boxes(root / "clip.mp4")[-1] == "moov", top_level_boxes(root / "clip.mp4")
    reference = {name: {"probe": ffprobe(root / name), "frames": {t: frames(root / name, t) for t in SEEKS}}
                 for name in ("clip.mp4", "clip.mkv")}
    return parent, root, reference


def test_players_decode_the_same_frames_cold_and_verified(media, tmp_path, procs, torrentfs_bin):
    parent, root, reference = media
    torrent = tmp_path / "media.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent, piece_length="64K")
    hexhash = info["infoHash"]
    # 4 MB/s: the files (13 MB) take seconds to come in, so the players' reads wait for pieces.
    lt = seeder(procs, parent, torrent, upload_limit=4_000_000)
    served = Served(procs, torrentfs_bin, tmp_path, lt.port, torrent)
    base = f"http://127.0.0.1:{served.port}/t/{hexhash}/"
    assert progress(served) == 0.0, "serve fetched data before any client asked"

    def check(phase, seen):
        for name, want in reference.items():
            assert ffprobe(base + name) == want["probe"], f"{phase}: ffprobe of {name} over HTTP differs"
            seen.append(progress(served))
            for at, expected in want["frames"].items():
                assert frames(base + name, at) == expected, f"{phase}: frames of {name} from {at} s differ"

    cold = []
    check("cold", cold)
    # The players read while the torrent was still coming in (not after it had all arrived).
    assert cold[0] < 1.0, f"everything was there after the first ffprobe ({cold}): nothing was read cold"
    # Everything, then the same again from verified pieces only.
    for name in reference:
        body = run(["curl", "-sS", "--fail", base + name]).stdout
        assert hashlib.sha256(body).digest() == hashlib.sha256((root / name).read_bytes()).digest(), name
    assert progress(served) == 1.0
    check("verified", [])


# ---------------------------------------------------------------------------
# Slow and vanishing clients
# ---------------------------------------------------------------------------

BIG_SIZE = 64 * MIB
# RSS growth of the serve process allowed over its level before the clients come (measured:
# ~12 MiB with the debug build). A slow client must cost about one chunk and the socket's
# queued output (~1.25 MiB), not the file; the rest of the allowance is the engine's own
# download buffers while a fast client pulls all 64 MiB. Buffering the slow client's body
# would cost the whole 64 MiB file.
RSS_GROWTH_BOUND_KIB = 32 * 1024
SLOW_RATE = 64 << 10          # bytes/s
SLOW_SECONDS = 12.0
# Seconds for the fast client's 64 MiB, cold, while the slow one reads (measured: under 1 s
# with the debug build; a loop held up by the slow client would never finish).
FAST_DOWNLOAD_BOUND = 30.0


@pytest.fixture(scope="module")
def big(tmp_path_factory, torrentfs_bin):
    """(parent, path, torrent, info hash) of a 64 MiB single-file torrent (256 KiB pieces)."""
    parent = tmp_path_factory.mktemp("big-src")
    path = make_tree(parent, {"big.bin": BIG_SIZE}, seed=4242) / "big.bin"
    torrent = parent.parent / "big.torrent"
    info = torrentfs_create(torrentfs_bin, path, torrent, piece_length="256K")
    return parent, path, torrent, info["infoHash"]


class RssWatch:
    """Samples the serve process's VmRSS every 50 ms in a thread; `peak` is the largest."""

    def __init__(self, served: Served):
        self.served, self.peak, self.stop = served, served.rss_kib(), threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self):
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, self.served.rss_kib())

    def close(self) -> int:
        self.stop.set()
        self.thread.join()
        return self.peak


class SlowClient:
    """GET of the whole file, read at SLOW_RATE (16 KiB every 250 ms) into a small receive
    buffer; every byte is checked against the source as it arrives."""

    def __init__(self, served: Served, path: str, source: Path):
        self.sock = socket.create_connection(("127.0.0.1", served.port), timeout=30)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        self.source = source.open("rb")
        self.received, self.error, self.stop = 0, None, threading.Event()
        self.started, self.seconds = time.monotonic(), None
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                head += self.sock.recv(4096)
            head, body = head.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 200 "), head
            self.check(body)
            step = SLOW_RATE // 4
            while not self.stop.is_set():
                chunk = self.sock.recv(step)
                if not chunk:
                    raise AssertionError(f"the server closed the slow client's connection after {self.received} bytes")
                self.check(chunk)
                time.sleep(0.25)
        except Exception as e:  # reported by the test
            self.error = e

    def check(self, chunk: bytes):
        want = self.source.read(len(chunk))
        assert chunk == want, f"slow client: wrong bytes at offset {self.received}"
        self.received += len(chunk)

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.seconds = time.monotonic() - self.started
        self.sock.close()
        self.source.close()


def test_slow_client_keeps_memory_bounded_and_others_unaffected(big, tmp_path, procs, torrentfs_bin):
    parent, source, torrent, hexhash = big
    lt = seeder(procs, parent, torrent)
    served = Served(procs, torrentfs_bin, tmp_path, lt.port, torrent)
    path = f"/t/{hexhash}/big.bin"
    assert served.request("GET", "/")[0].status == 200
    before = served.rss_kib()
    watch = RssWatch(served)
    slow = SlowClient(served, path, source)
    try:
        time.sleep(1.0)
        # A fast client meanwhile: the whole file, cold, with curl.
        started = time.monotonic()
        run(["curl", "-sS", "--fail", "-o", tmp_path / "fast.bin", f"http://127.0.0.1:{served.port}{path}"])
        took = time.monotonic() - started
        assert took < FAST_DOWNLOAD_BOUND, f"the fast client took {took:.1f} s next to a slow one"
        fast = hashlib.sha256((tmp_path / "fast.bin").read_bytes()).digest()
        assert fast == hashlib.sha256(source.read_bytes()).digest(), "the fast client got wrong bytes"
        # And again from verified pieces: a second fast client is not held up either.
        again = time.monotonic()
        response, body = served.request("GET", path, {"Range": f"bytes={BIG_SIZE // 2}-"})
        assert response.status == 206 and body == source.read_bytes()[BIG_SIZE // 2:]
        assert time.monotonic() - again < FAST_DOWNLOAD_BOUND / 2
        while time.monotonic() - started < SLOW_SECONDS:
            assert slow.error is None, slow.error
            time.sleep(0.25)
    finally:
        peak = watch.close()
        slow.close()
    assert slow.error is None, slow.error
    # It got bytes all along (its pace, not starved), and far from the whole file.
    assert SLOW_RATE * slow.seconds * 0.5 < slow.received < BIG_SIZE // 2, (slow.received, slow.seconds)
    grown = peak - before
    assert grown < RSS_GROWTH_BOUND_KIB, f"RSS grew {grown} KiB (before {before} KiB, peak {peak} KiB)"
    assert served.proc.poll() is None


# Clients that vanish, each at its own offset 4 MiB apart. Each response's reader fetches a 2 MiB
# window ahead of its first read (ReaderOptions.initialWindow): if a vanished client's reader
# were not closed, its window would stay wanted and be fetched, 16 x 2 MiB = half the file.
# Closed, the download stops at what was already asked for (~0.2 of the file measured).
DISCONNECTS = 16


def test_disconnecting_clients_cancel_their_reads(big, tmp_path, procs, torrentfs_bin):
    parent, source, torrent, hexhash = big
    data = source.read_bytes()
    # 4 MB/s: the whole file would take 16 s, so a download that goes on is seen.
    lt = seeder(procs, parent, torrent, upload_limit=4_000_000)
    served = Served(procs, torrentfs_bin, tmp_path, lt.port, torrent)
    path = f"/t/{hexhash}/big.bin"
    before = served.rss_kib()
    watch = RssWatch(served)
    try:
        for i in range(DISCONNECTS):
            offset = i * (BIG_SIZE // DISCONNECTS)
            with socket.create_connection(("127.0.0.1", served.port), timeout=30) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes={offset}-\r\n\r\n".encode())
                # The response head comes before any of the body: the read has started.
                got = b""
                while b"\r\n\r\n" not in got:
                    chunk = s.recv(65536)
                    assert chunk, f"closed after {len(got)} bytes"
                    got += chunk
                assert got.startswith(b"HTTP/1.1 206 "), got[:100]
                # Every other client reads some of the body first; the others vanish while
                # their first read still waits for its piece.
                while i % 2 and len(got.split(b"\r\n\r\n", 1)[1]) < 100_000:
                    chunk = s.recv(65536)
                    assert chunk, f"closed after {len(got)} bytes"
                    got += chunk
                body = got.split(b"\r\n\r\n", 1)[1]
                assert body == data[offset:offset + len(body)]
                # A reset, not a polite close, like a player that is killed.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The reads were cancelled and their readahead released: the download stops (pieces
        # already asked of the seeder still come in first), well short of the ghosts' windows.
        deadline = time.monotonic() + 30
        last = progress(served)
        while True:
            time.sleep(2.0)
            now = progress(served)
            if now == last:
                break
            assert time.monotonic() < deadline, f"the download went on after every client left ({now:.2f})"
            last = now
        assert last < 0.45, f"{last:.2f} of the file fetched for clients that read 100 KB or nothing each"
        assert served.proc.poll() is None
        # The next requests are answered, correctly.
        response, body = served.request("GET", path, {"Range": f"bytes={BIG_SIZE - 3 * MIB}-{BIG_SIZE - MIB - 1}"})
        assert response.status == 206 and body == data[BIG_SIZE - 3 * MIB:BIG_SIZE - MIB]
        response, body = served.request("HEAD", path)
        assert response.status == 200 and int(response.getheader("Content-Length")) == BIG_SIZE
    finally:
        peak = watch.close()
    grown = peak - before
    assert grown < RSS_GROWTH_BOUND_KIB, f"RSS grew {grown} KiB (before {before} KiB, peak {peak} KiB)"


# ---------------------------------------------------------------------------
# Malformed and hostile requests
# ---------------------------------------------------------------------------

KIT = {"clip.mp4": 600_011, "music/my song.flac": 9_999, "notes.txt": 100}
SECRET = b"not-in-any-torrent-7f3a"


@pytest.fixture
def kit(tmp_path, procs, torrentfs_bin):
    """A served multi-file torrent `Kit` whose data is all verified, with --http-host media.lan;
    a secret file sits next to the server's data and state directories."""
    root = make_tree(tmp_path / "src" / "Kit", KIT, seed=31)
    torrent = tmp_path / "kit.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent)
    lt = seeder(procs, tmp_path / "src", torrent)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    served = Served(procs, torrentfs_bin, tmp_path, lt.port, torrent, extra=["--http-host", "media.lan"])
    for name in KIT:
        body = served.request("GET", f"/t/{info['infoHash']}/{name.replace(' ', '%20')}")[1]
        assert body == (root / name).read_bytes(), name
    return served, info["infoHash"], root


def raw(served: Served, request: bytes, wait: float = 10.0) -> bytes:
    """Sends bytes as they are and returns everything the server sends until it closes the
    connection (a server that keeps it open past `wait` seconds fails the test)."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=wait) as s:
        s.sendall(request)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except socket.timeout:
            raise AssertionError(f"connection still open {wait} s after {request[:60]!r}; got {out[:200]!r}")
        except ConnectionResetError:
            pass
    return out


def still_serving(served: Served, hexhash: str, root: Path) -> None:
    assert served.proc.poll() is None, "the server exited"
    response, body = served.request("GET", f"/t/{hexhash}/notes.txt")
    assert response.status == 200 and body == (root / "notes.txt").read_bytes()


def test_malformed_request_lines_and_oversized_headers(kit):
    """Each gets 400 and the connection is closed (not held open); the server keeps serving."""
    served, hexhash, root = kit
    host = b"Host: 127.0.0.1\r\n"
    cases = {
        "HTTP/0.9 style, no version": b"GET /\r\n\r\n",
        "extra token": b"GET / HTTP/1.1 extra\r\n" + host + b"\r\n",
        "binary garbage": b"\x00\x01\x02\xff garbage\r\n\r\n",
        "unknown version": b"GET / HTTP/9.9\r\n" + host + b"\r\n",
        "header without colon": b"GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
        "space in the target": f"GET /t/{hexhash}/my song.flac HTTP/1.1\r\n".encode() + host + b"\r\n",
        "bare LF line ends": b"GET / HTTP/1.1\nHost: 127.0.0.1\n\n",
        "Content-Length and chunked (smuggling)":
            b"GET / HTTP/1.1\r\n" + host + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "100 KiB header": b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * (100 << 10) + b"\r\n\r\n",
        "100 KiB request line": b"GET /" + b"a" * (100 << 10) + b" HTTP/1.1\r\n" + host + b"\r\n",
        "many headers, 128 KiB": b"GET / HTTP/1.1\r\n" + host
            + b"".join(b"X-H%05d: %s\r\n" % (i, b"v" * 100) for i in range(1200)) + b"\r\n",
    }
    for what, request in cases.items():
        reply = raw(served, request)
        assert re.match(rb"HTTP/1\.[01] 4\d\d ", reply), (what, reply[:200])
        assert reply.count(b"HTTP/1.") == 1, (what, reply[:300])
    # A target longer than the route allows (8 KiB) but within the parser's limit: 400 too.
    reply = raw(served, b"GET /t/" + b"a" * 9000 + b" HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    # A good request, then a bad one on the same connection: the first is answered in full,
    # then 400, then the connection is closed.
    reply = raw(served, f"GET /t/{hexhash}/notes.txt HTTP/1.1\r\n".encode() + host + b"\r\nBAD LINE\r\n\r\n")
    first, rest = reply.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 200 ") and rest[:100] == (root / "notes.txt").read_bytes()
    assert rest[100:].startswith(b"HTTP/1.1 400 "), rest[100:200]
    still_serving(served, hexhash, root)


def test_bad_range_values_get_the_whole_file(kit):
    """A `Range` that does not parse (or has too many parts) is ignored: 200, all of it."""
    served, hexhash, root = kit
    source = (root / "clip.mp4").read_bytes()
    path = f"/t/{hexhash}/clip.mp4"
    too_many = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(17))
    for header in ["bytes=abc", "bytes=5-3", "bytes=--5", "bytes=1-2-3", "items=0-5", "bytes=", "bytes=-",
                   "bytes=0x10-0x20", "bytes=+1-2", "bytes=99999999999999999999999-", "bytes=0-5,,", "0-5",
                   too_many]:
        response, body = served.request("GET", path, {"Range": header})
        assert response.status == 200 and body == source, (header, response.status, len(body))
        assert response.getheader("Content-Range") is None and int(response.getheader("Content-Length")) == len(source)
    still_serving(served, hexhash, root)


def test_ranges_416_if_range_and_head(kit):
    served, hexhash, root = kit
    source = (root / "clip.mp4").read_bytes()
    size = len(source)
    path = f"/t/{hexhash}/clip.mp4"
    # 416 details: the size in Content-Range; a zero-length suffix; every part past the end.
    for header in [f"bytes={size}-", "bytes=-0", f"bytes={size}-{size + 10},{size + 100}-"]:
        for method in ("GET", "HEAD"):
            response, body = served.request(method, path, {"Range": header})
            assert response.status == 416 and body == b"", (header, method)
            assert response.getheader("Content-Range") == f"bytes */{size}"
    # A range past the end is cut to the file; one unsatisfiable part among good ones is dropped.
    response, body = served.request("GET", path, {"Range": f"bytes={size - 10}-{size + 1000}"})
    assert response.status == 206 and body == source[-10:]
    assert response.getheader("Content-Range") == f"bytes {size - 10}-{size - 1}/{size}"
    response, body = served.request("GET", path, {"Range": f"bytes=0-9,{size + 5}-"})
    assert response.status == 206 and body == source[:10]
    assert response.getheader("Content-Range") == f"bytes 0-9/{size}"
    # Several ranges, out of order, two of them overlapping: those two are merged (RFC 9110
    # §14.2), in the place of the first; parts otherwise in the order asked, each right.
    response, body = served.request("GET", path, {"Range": "bytes=500-599,0-9,5-14"})
    assert response.status == 206 and int(response.getheader("Content-Length")) == len(body)
    boundary = response.getheader("Content-Type").split("boundary=")[1]
    parts = [p for p in body.split(f"--{boundary}".encode()) if p.strip(b"-\r\n")]
    got = [(re.search(rb"Content-Range: bytes (\d+)-(\d+)/(\d+)", p).groups(), p.split(b"\r\n\r\n", 1)[1][:-2])
           for p in parts]
    assert got == [((b"500", b"599", str(size).encode()), source[500:600]),
                   ((b"0", b"14", str(size).encode()), source[0:15])]
    # 16 times the whole file (an amplification if sent as asked): one range, the file once.
    response, body = served.request("GET", path, {"Range": "bytes=" + ",".join(["0-"] * 16)})
    assert response.status == 206 and body == source
    assert response.getheader("Content-Range") == f"bytes 0-{size - 1}/{size}"
    response, body = served.request("GET", path, {"Range": "bytes=" + ",".join(f"-{size}" for _ in range(16))})
    assert response.status == 206 and len(body) == size
    # A multipart HEAD announces the length its GET sends (the boundary has one length).
    for _ in range(40):
        head = served.request("HEAD", path, {"Range": "bytes=0-9,20-29"})[0]
        get, body = served.request("GET", path, {"Range": "bytes=0-9,20-29"})
        assert int(head.getheader("Content-Length")) == int(get.getheader("Content-Length")) == len(body)
    # HEAD: the GET's headers (Content-Length of the range or of the multipart body), no body.
    response, body = served.request("HEAD", path, {"Range": "bytes=10-19"})
    assert response.status == 206 and body == b"" and response.getheader("Content-Length") == "10"
    assert response.getheader("Content-Range") == f"bytes 10-19/{size}"
    response, body = served.request("HEAD", path, {"Range": "bytes=0-9,20-29"})
    assert response.status == 206 and body == b""
    assert response.getheader("Content-Type").startswith("multipart/byteranges; boundary=")
    assert int(response.getheader("Content-Length")) > 20
    for route in ["/", f"/t/{hexhash}/", f"/t/{hexhash}.m3u"]:
        head, _ = served.request("HEAD", route)
        get, body = served.request("GET", route)
        assert head.status == 200 and int(head.getheader("Content-Length")) == len(body), route
    # If-Range: a date or a weak tag never matches our strong tag: the whole file.
    etag = served.request("HEAD", path)[0].getheader("ETag")
    for validator in ["Wed, 21 Oct 2015 07:28:00 GMT", f"W/{etag}", etag.strip('"')]:
        response, body = served.request("GET", path, {"Range": "bytes=0-9", "If-Range": validator})
        assert response.status == 200 and body == source, validator
    # If-Range alone (no Range) is the whole file, with our tag.
    response, body = served.request("GET", path, {"If-Range": etag})
    assert response.status == 200 and body == source
    still_serving(served, hexhash, root)


def test_traversal_and_unknown_hashes(kit):
    """Nothing outside the torrent's own files answers, however the path is spelled."""
    served, hexhash, root = kit
    h = hexhash
    bad_path = [
        f"/t/{h}/..%5c..%5csecret.txt", f"/t/{h}/%c0%ae%c0%ae/secret.txt", f"/t/{h}/%2E%2E/%2E%2E/secret.txt",
        f"/t/{h}/.", f"/t/{h}/%2e", f"/t/{h}//notes.txt", f"/t/{h}/music/", f"/t/{h}/notes.txt/",
        f"/t/{h}/%zz", f"/t/{h}/notes.txt%00",
    ]
    not_found = [
        f"/t/{h}/%252e%252e/%252e%252e/secret.txt",   # decoded once: a name, not a step up
        f"/t/{h}/Kit/notes.txt",                      # the top folder is not part of the path
        f"/t/{h}/music", f"/t/{h}/secret.txt", "/secret.txt", "/../secret.txt", "/%2e%2e/secret.txt",
        f"/t/../{h}/notes.txt", f"/t/{h[:-1]}/notes.txt", f"/t/{h}0/notes.txt", f"/t/{'g' * 40}/notes.txt",
        f"/t/{'0' * 40}/", f"/t/{'0' * 40}.m3u", f"/t/{'0' * 40}/notes.txt", f"/t/{h}", f"/t/{h}.txt", "/t/",
    ]
    for path in bad_path + not_found:
        for method in ("GET", "HEAD"):
            reply = raw(served, f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            want = b"400" if path in bad_path else b"404"
            assert reply[9:12] == want, (method, path, reply[:120])
            assert SECRET not in reply
    # The info hash in upper case is the same torrent.
    response, body = served.request("GET", f"/t/{h.upper()}/notes.txt")
    assert response.status == 200 and body == (root / "notes.txt").read_bytes()
    still_serving(served, hexhash, root)


def test_host_rule_methods_playlist_and_pipelining(kit):
    served, hexhash, root = kit
    port = served.port
    # Names: localhost and --http-host ones (any case, any port, a trailing dot); IP literals.
    for host in ["localhost", f"LocalHost:{port}", "localhost.", "media.lan", f"MEDIA.LAN:{port}",
                 f"127.0.0.1:{port}", "10.9.8.7", f"[::1]:{port}", "[::ffff:127.0.0.1]"]:
        assert served.request("GET", "/", host=host)[0].status == 200, host
    # Every other name is refused, on every route, including names made to look local.
    for host in ["localhost.evil.example", "evil.localhost", "127.0.0.1.nip.io", f"media.lan.evil.example:{port}",
                 "evil@127.0.0.1", "2130706433", "0x7f.1", "127.1", "media", "lan"]:
        for path in ["/", f"/t/{hexhash}/", f"/t/{hexhash}/notes.txt", f"/t/{hexhash}.m3u"]:
            response, body = served.request("GET", path, host=host)
            assert response.status == 403 and (root / "notes.txt").read_bytes() not in body, (host, path)
    # No Host in HTTP/1.1, or two of them: 400 (RFC 9112); HTTP/1.0 without one: refused.
    reply = raw(served, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert reply[9:12] == b"400", reply[:100]
    reply = raw(served, b"GET / HTTP/1.0\r\n\r\n")
    assert reply[9:12] == b"403", reply[:100]
    reply = raw(served, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n"
                        f"Connection: close\r\n\r\n".encode())
    assert reply[9:12] == b"400", reply[:100]
    # Absolute-form targets (RFC 9112 §3.2.2): accepted, their authority under the same rule.
    for target, host, want in [(f"http://127.0.0.1:{port}/t/{hexhash}/notes.txt", f"127.0.0.1:{port}", b"200"),
                               (f"HTTP://media.lan/t/{hexhash}/notes.txt", "media.lan", b"200"),
                               (f"http://evil.example/t/{hexhash}/notes.txt", "127.0.0.1", b"403"),
                               (f"http://127.0.0.1/t/{hexhash}/notes.txt", "evil.example", b"403"),
                               (f"http://x@127.0.0.1/t/{hexhash}/notes.txt", "127.0.0.1", b"400"),
                               (f"http://127.0.0.1/t/{hexhash}/%2e%2e/secret.txt", "127.0.0.1", b"400")]:
        reply = raw(served, f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        assert reply[9:12] == want, (target, host, reply[:100])
        if want == b"200":
            assert reply.endswith((root / "notes.txt").read_bytes())
    reply = raw(served, f"GET http://localhost:{port}/t/{hexhash}.m3u HTTP/1.1\r\nHost: localhost:{port}\r\n"
                        f"Connection: close\r\n\r\n".encode())
    assert f"http://localhost:{port}/t/{hexhash}/clip.mp4".encode() in reply, reply[:300]
    # A Host that is no host (an unbracketed colon list) is refused too.
    assert served.request("GET", "/", host="1.2.3.4:5:6")[0].status == 403
    # A client that half-closes after its request still gets the answer, then the close.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET /t/{hexhash}/notes.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith((root / "notes.txt").read_bytes()), out[:200]
    # Other methods: 405 with Allow.
    for method in ["PUT", "OPTIONS", "TRACE", "PATCH", "PROPFIND"]:
        response, _ = served.request(method, f"/t/{hexhash}/notes.txt")
        assert response.status == 405 and response.getheader("Allow") == "GET, HEAD", method
    # The playlist: media files only, in torrent order, absolute URLs on the request's Host,
    # each segment percent-encoded.
    for host in ["media.lan", f"localhost:{port}", f"[::1]:{port}"]:
        response, body = served.request("GET", f"/t/{hexhash}.m3u", host=host)
        assert response.status == 200 and response.getheader("Content-Type") == "audio/mpegurl"
        lines = body.decode().splitlines()
        assert lines[0] == "#EXTM3U"
        assert [l for l in lines if not l.startswith("#")] == [
            f"http://{host}/t/{hexhash}/clip.mp4", f"http://{host}/t/{hexhash}/music/my%20song.flac"]
    # Pipelined requests on one connection: answered in order, each complete.
    host = b"Host: 127.0.0.1\r\n"
    reply = raw(served, f"GET /t/{hexhash}/notes.txt HTTP/1.1\r\n".encode() + host + b"\r\n"
                + f"HEAD /t/{hexhash}/clip.mp4 HTTP/1.1\r\n".encode() + host + b"\r\n"
                + f"GET /t/{hexhash}/clip.mp4 HTTP/1.1\r\n".encode() + host
                + b"Range: bytes=-5\r\nConnection: close\r\n\r\n")
    notes, clip = (root / "notes.txt").read_bytes(), (root / "clip.mp4").read_bytes()
    first, rest = reply.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 200 ") and rest.startswith(notes)
    second, rest = rest[len(notes):].split(b"\r\n\r\n", 1)
    assert second.startswith(b"HTTP/1.1 200 ") and f"Content-Length: {len(clip)}".encode() in second
    third, rest = rest.split(b"\r\n\r\n", 1)
    assert third.startswith(b"HTTP/1.1 206 ") and rest == clip[-5:]
    still_serving(served, hexhash, root)


# The server's defaults (TorrentHTTPServer.headerTimeout, .maxConnections; docs/http.md).
HEADER_TIMEOUT = 10.0
MAX_CONNECTIONS = 512


def test_idle_connections_are_closed_and_capped(kit):
    """Connections that send nothing or stall mid-headers are closed at the header timeout;
    beyond the cap, connections get 503 and are closed; a refused upload gets its 403 at once.
    The server keeps serving throughout (the slow-reader tests show readers are not idle)."""
    served, hexhash, root = kit
    port = served.port
    started = time.monotonic()
    stalled = socket.create_connection(("127.0.0.1", port), timeout=HEADER_TIMEOUT + 5)
    stalled.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    held = [socket.create_connection(("127.0.0.1", port), timeout=HEADER_TIMEOUT + 5)
            for _ in range(MAX_CONNECTIONS + 8)]
    try:
        # The first connections fill the cap (with `stalled`): the last ones are refused.
        refused = []
        for s in held[-8:]:
            s.settimeout(3)
            try:
                refused.append(s.recv(200))
            except (socket.timeout, ConnectionResetError) as error:
                refused.append(repr(error).encode())
        assert all(r.startswith(b"HTTP/1.1 503 ") for r in refused), refused
        # A refused upload: 403 before any of its body is sent, then the connection closes.
        for s in held[1:-8]:
            s.close()
        deadline = time.monotonic() + 3
        while True:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as post:
                post.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 16000000\r\n\r\n")
                reply = post.recv(200)
            if not reply.startswith(b"HTTP/1.1 503 ") or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # the closed connections are not all counted out yet
        assert reply.startswith(b"HTTP/1.1 403 "), reply
        # The first connection and `stalled` are closed at the header timeout.
        for s in (stalled, held[0]):
            s.settimeout(HEADER_TIMEOUT + 5)
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
        took = time.monotonic() - started
        assert HEADER_TIMEOUT - 1 < took < HEADER_TIMEOUT + 4, took
    finally:
        stalled.close()
        for s in held:
            s.close()
    still_serving(served, hexhash, root)
