"""`torrentfs serve`: the HTTP range server over the engine's streaming readers, fed by a
real libtorrent seeder, read with curl and Python's HTTP client.

- ranges (first bytes, middle, suffix, open-ended, whole, several → multipart) equal the
  source; HEAD; 416; ETag and If-Range; content types; the JSON index and the playlist;
- a slow client and a client that disconnects leave the server's memory bounded and do
  not hold up another client;
- refusals: a foreign Host (DNS rebinding), traversal in every encoding, unknown hashes,
  other methods, POST unless --allow-add, a malformed request line.

Runs in the session's private network namespace; every process is stopped by PID."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from swarm import make_tree, torrentfs_create
from test_engine_swarm import lt_seeder

SERVE_TIMEOUT = 30.0
FILES = {"Kit/clip.mp4": 6_000_011, "Kit/docs/read me.txt": 70_001, "Kit/song.flac": 999}


class Served:
    def __init__(self, procs, torrentfs_bin, tmp_path: Path, seeder_port=None, torrent=None, extra=(), data=None):
        cmd = [str(torrentfs_bin), "serve", "--http", "127.0.0.1:0", "--data", str(data or tmp_path / "serve-data"),
               "--state", str(tmp_path / "serve-state"), "--port", "0", *extra]
        if torrent is not None:
            cmd.append(str(torrent))
        if seeder_port is not None:
            cmd += ["--peer", f"127.0.0.1:{seeder_port}"]
        self.proc = procs.start("tfs-serve", cmd)
        deadline = time.monotonic() + SERVE_TIMEOUT
        while "http://" not in self.proc.stdout():
            assert self.proc.poll() is None, f"serve exited\n{self.proc.tail()}"
            assert time.monotonic() < deadline, f"serve printed no URL\n{self.proc.tail()}"
            time.sleep(0.05)
        url = next(line for line in self.proc.stdout().splitlines() if line.startswith("http://"))
        self.port = int(url.rstrip("/").rsplit(":", 1)[1])

    def request(self, method, path, headers=None, body=None, host=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=SERVE_TIMEOUT)
        all_headers = {"Host": host or f"127.0.0.1:{self.port}", **(headers or {})}
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response, data

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


@pytest.fixture
def kit(tmp_path, procs, torrentfs_bin):
    root = make_tree(tmp_path / "src" / "Kit", {k.split("/", 1)[1]: v for k, v in FILES.items()}, seed=99)
    torrent = tmp_path / "kit.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent)
    seeder = lt_seeder(procs, type("C", (), {"parent": tmp_path / "src"})(), torrent)
    served = Served(procs, torrentfs_bin, tmp_path, seeder.port, torrent)
    return served, info["infoHash"], root


def test_ranges_head_etag_and_types(kit):
    served, hexhash, root = kit
    source = (root / "clip.mp4").read_bytes()
    path = f"/t/{hexhash}/clip.mp4"
    for header, want in [("bytes=0-99", source[:100]), ("bytes=3000000-3000999", source[3_000_000:3_001_000]),
                         ("bytes=-1000", source[-1000:]), ("bytes=5999000-", source[5_999_000:])]:
        response, body = served.request("GET", path, {"Range": header})
        assert response.status == 206 and body == want, (header, response.status, len(body))
        first = len(source) - len(want) if header.startswith("bytes=-") or header.endswith("-") else int(header[6:].split("-")[0])
        assert response.getheader("Content-Range") == f"bytes {first}-{first + len(want) - 1}/{len(source)}"
        assert response.getheader("Content-Type") == "video/mp4"
    # The whole file with curl, as a player or a script would fetch it.
    out = subprocess.run(["curl", "-sS", "--fail", f"http://127.0.0.1:{served.port}{path}"], capture_output=True,
                         timeout=SERVE_TIMEOUT)
    assert out.returncode == 0 and hashlib.sha256(out.stdout).digest() == hashlib.sha256(source).digest()
    response, body = served.request("HEAD", path)
    assert response.status == 200 and body == b"" and int(response.getheader("Content-Length")) == len(source)
    assert response.getheader("Accept-Ranges") == "bytes"
    etag = response.getheader("ETag")
    assert served.request("GET", path, {"Range": f"bytes={len(source)}-"})[0].status == 416
    # If-Range: our tag honours the range, any other value gets the whole entity.
    assert served.request("GET", path, {"Range": "bytes=0-9", "If-Range": etag})[0].status == 206
    response, body = served.request("GET", path, {"Range": "bytes=0-9", "If-Range": '"other"'})
    assert response.status == 200 and len(body) == len(source)
    # Several ranges: a multipart/byteranges body whose parts are the right bytes.
    response, body = served.request("GET", path, {"Range": "bytes=0-9,100-199"})
    assert response.status == 206 and int(response.getheader("Content-Length")) == len(body)
    boundary = response.getheader("Content-Type").split("boundary=")[1]
    parts = [p for p in body.split(f"--{boundary}".encode()) if p.strip(b"-\r\n")]
    assert [p.split(b"\r\n\r\n", 1)[1][:-2] for p in parts] == [source[0:10], source[100:200]]
    # A path with a space, percent-encoded; a small text file; content types.
    response, body = served.request("GET", f"/t/{hexhash}/docs/read%20me.txt")
    assert response.status == 200 and body == (root / "docs" / "read me.txt").read_bytes()
    assert response.getheader("Content-Type").startswith("text/plain")


def test_index_tree_and_playlist(kit):
    served, hexhash, root = kit
    response, body = served.request("GET", "/", {"Accept": "application/json"})
    index = json.loads(body)
    assert response.status == 200 and [t["infoHash"] for t in index] == [hexhash]
    files = {f["path"]: f for f in index[0]["files"]}
    assert set(files) == {"clip.mp4", "docs/read me.txt", "song.flac"}
    assert files["clip.mp4"]["url"] == f"http://127.0.0.1:{served.port}/t/{hexhash}/clip.mp4"
    assert files["docs/read me.txt"]["url"].endswith("/docs/read%20me.txt")
    response, body = served.request("GET", "/")
    assert response.getheader("Content-Type").startswith("text/html") and b"Kit" in body
    response, body = served.request("GET", f"/t/{hexhash}/")
    assert response.status == 200 and b"clip.mp4" in body
    response, body = served.request("GET", f"/t/{hexhash}.m3u", host=f"localhost:{served.port}")
    assert response.getheader("Content-Type") == "audio/mpegurl"
    lines = body.decode().splitlines()
    assert lines[0] == "#EXTM3U"
    assert [l for l in lines if l.startswith("http")] == [
        f"http://localhost:{served.port}/t/{hexhash}/clip.mp4", f"http://localhost:{served.port}/t/{hexhash}/song.flac"]


def test_refusals(kit):
    served, hexhash, _ = kit
    assert served.request("GET", "/", host="evil.example")[0].status == 403
    assert served.request("GET", f"/t/{hexhash}/clip.mp4", host=f"rebind.example:{served.port}")[0].status == 403
    for path in [f"/t/{hexhash}/../../etc/passwd", f"/t/{hexhash}/%2e%2e/%2e%2e/etc/passwd",
                 f"/t/{hexhash}/..%2f..%2fetc%2fpasswd", f"/t/{hexhash}/a%00b"]:
        assert served.request("GET", path)[0].status == 400, path
    assert served.request("GET", f"/t/{'0' * 40}/clip.mp4")[0].status == 404
    assert served.request("GET", f"/t/{hexhash}/nothing.bin")[0].status == 404
    assert served.request("DELETE", f"/t/{hexhash}/clip.mp4")[0].status == 405
    assert served.request("POST", "/", body=b"magnet:?xt=urn:btih:" + b"1" * 40)[0].status == 403
    # A malformed request line: 400, and the server keeps serving.
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    assert served.request("GET", f"/t/{hexhash}/song.flac")[0].status == 200


def test_slow_and_vanishing_clients_stay_bounded(kit):
    served, hexhash, root = kit
    source = (root / "clip.mp4").read_bytes()
    path = f"/t/{hexhash}/clip.mp4"
    assert served.request("GET", path)[1] == source  # everything verified: reads are from disk
    before = served.rss_kib()
    # A slow client reading 64 KiB/s, and clients that read a little and vanish.
    slow = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    slow.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            try:
                if not slow.recv(16 << 10):
                    return
            except OSError:
                return
            time.sleep(0.25)
    reader = threading.Thread(target=trickle, daemon=True)
    reader.start()
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as gone:
            gone.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            gone.recv(100_000)
    # Meanwhile another client gets the whole file at once.
    started = time.monotonic()
    assert served.request("GET", path)[1] == source
    assert time.monotonic() - started < 10
    time.sleep(1)
    grown = served.rss_kib() - before
    stop.set()
    slow.close()
    # One chunk per reader plus the socket buffers' worth, not the file per client.
    assert grown < 32 * 1024, f"RSS grew {grown} KiB with a slow and five vanished clients"
    assert served.request("GET", f"/t/{hexhash}/song.flac")[0].status == 200


def test_post_adds_when_allowed(tmp_path, procs, torrentfs_bin):
    root = make_tree(tmp_path / "src" / "Late", {"a.bin": 50_000}, seed=5)
    torrent = tmp_path / "late.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent)
    served = Served(procs, torrentfs_bin, tmp_path, extra=["--allow-add"])
    assert served.request("POST", "/", body=b"not a torrent\n")[0].status == 400
    response, _ = served.request("POST", "/", body=torrent.read_bytes())
    assert response.status == 201
    index = json.loads(served.request("GET", "/", {"Accept": "application/json"})[1])
    assert [t["infoHash"] for t in index] == [info["infoHash"]]
    assert os.path.getsize(torrent) > 0


def test_mount_serves_its_torrents_over_http(tmp_path, procs, torrentfs_bin, mounter):
    """A mount with -o http= serves what it shows; reads through both at once agree."""
    from swarm import free_port
    root = make_tree(tmp_path / "src" / "Kit", {k.split("/", 1)[1]: v for k, v in FILES.items()}, seed=99)
    torrent = tmp_path / "kit.torrent"
    info = torrentfs_create(torrentfs_bin, root, torrent)
    seeder = lt_seeder(procs, type("C", (), {"parent": tmp_path / "src"})(), torrent)
    port = free_port()
    mount = mounter("http", opts=[f"http=127.0.0.1:{port}"])
    mount.add(f"magnet:?xt=urn:btih:{info['infoHash']}&x.pe=127.0.0.1:{seeder.port}\n")
    source = (root / "clip.mp4").read_bytes()
    results = {}

    def over_http():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SERVE_TIMEOUT)
        conn.request("GET", f"/t/{info['infoHash']}/clip.mp4", headers={"Range": "bytes=1000000-"})
        response = conn.getresponse()
        results["http"] = (response.status, response.read())

    thread = threading.Thread(target=over_http)
    thread.start()
    deadline = time.monotonic() + SERVE_TIMEOUT
    path = mount.path("Kit", "clip.mp4")
    while not path.exists():
        assert time.monotonic() < deadline, "the file never appeared in the mount"
        time.sleep(0.05)
    assert path.read_bytes() == source
    thread.join(SERVE_TIMEOUT)
    assert results["http"] == (206, source[1_000_000:])
