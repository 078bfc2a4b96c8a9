#!/usr/bin/python3
"""`make bench` (HTTP part, issue 12): `torrentfs serve` against nginx and against the mount,
in the same run, on a 256 MiB single file (1 MiB pieces).

  1. Verified data: `torrentfs serve` of a torrent whose data directory holds the file (a hard
     link to the source, checked when serve starts), and nginx (its own config in a temporary
     directory, one process, its own port on 127.0.0.1) serving the very same file, with
     sendfile on (Debian's default: the target's anchor) and, as a second reference, off
     (read() + write() through a buffer, the copy torrentfs also makes). Each is fetched whole
     with `curl -o /dev/null`, one client at a time, the servers' order reversed every run;
     twice per run: with the file in the page cache, and right after `echo 3 >
     /proc/sys/vm/drop_caches` (all then read it from the disk; skipped when that file is not
     writable).
  2. Cold streaming from one local libtorrent seeder (TCP): a fresh `torrentfs serve` given the
     magnet (x.pe) streams the file over HTTP to a GET read with 1 MiB recv_into calls; a
     fresh `torrentfs mount` given the same magnet in .add is read like `cat`, with 1 MiB
     reads. Both with empty data directories, both timed from the request (connect + GET /
     open()) to the last byte, once the metadata is in (the index lists the file / the file is
     listed), and also from the process start. Alternating who goes first. Each result is then
     checked: the file fetched again (now verified) must have the source's SHA-256.

MB/s = 10^6 bytes/s. Medians of BENCH_RUNS runs (default 3). Runs itself in a fresh network
namespace (loopback only). Prints the ratios against the targets; asserts nothing. Every
process it starts is stopped by its PID; every phase is bounded in time.

usage: bench/http_bench.py [TORRENTFS_BINARY]   (default .build/release/torrentfs; root)"""
import hashlib, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time
import urllib.request

from benchcommon import free_port, isolate, write_random
from mount_bench import abort_fuse, is_mounted, log_tail, read_ahead_kb, stop_process, unmount

RUNS = max(1, int(os.environ.get("BENCH_RUNS", "3")))
HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", ".build/release/torrentfs"))
PY = "/usr/bin/python3"
MIB = 1 << 20
SIZE = 256 * MIB
PIECE = MIB
NAME = "bench-http.bin"
START_TIMEOUT = 60        # seconds: a server up / data checked / metadata in
TRANSFER_TIMEOUT = 180    # seconds per transfer (curl --max-time, the mount read's watchdog)

SEEDER = r'''
import libtorrent as lt, sys, time
torrent, save, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = lt.session({'listen_interfaces': f'127.0.0.1:{port}', 'enable_dht': False, 'enable_lsd': False,
    'enable_upnp': False, 'enable_natpmp': False, 'enable_outgoing_utp': False, 'enable_incoming_utp': False,
    'allow_multiple_connections_per_ip': True, 'alert_mask': 0})
# A full check up front (not seed_mode, which hashes each piece on its first request).
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save})
deadline = time.monotonic() + 300
while not h.status().is_seeding:
    if time.monotonic() > deadline: print("not seeding", flush=True); sys.exit(1)
    time.sleep(0.05)
print("ready", flush=True)
while True: time.sleep(3600)
'''

NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp; proxy_temp_path {dir}/tmp; fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp; scgi_temp_path {dir}/tmp;
    sendfile {sendfile};
    tcp_nopush on;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def url_digest(url):
    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=TRANSFER_TIMEOUT) as r:
        while chunk := r.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def can_drop_caches():
    return os.access("/proc/sys/vm/drop_caches", os.W_OK)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def wait_port(port, proc, log, what):
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not listening after {START_TIMEOUT} s: {log_tail(log)}")
        time.sleep(0.01)


def curl(url):
    """One GET with curl into /dev/null: (bytes, seconds to the first byte, seconds in all)."""
    out = subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "--max-time", str(TRANSFER_TIMEOUT),
                          "-w", "%{size_download} %{time_starttransfer} %{time_total}", url],
                         capture_output=True, text=True, timeout=TRANSFER_TIMEOUT + 10)
    if out.returncode != 0:
        raise RuntimeError(f"curl {url} exited {out.returncode}: {out.stderr.strip()[-300:]}")
    size, first, total = out.stdout.split()
    if int(size) != SIZE:
        raise RuntimeError(f"curl {url} got {size} bytes, expected {SIZE}")
    return int(size), float(first), float(total)


def stream(url):
    """One GET read with 1 MiB recv_into calls (a player's pace is the network's here):
    (seconds to the first body byte, seconds to the last), both from the connect."""
    host_port, path = url.split("://", 1)[1].split("/", 1)
    host, port = host_port.rsplit(":", 1)
    buf = bytearray(MIB)
    view = memoryview(buf)
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=TRANSFER_TIMEOUT) as s:
        s.sendall(f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            n = s.recv_into(view)
            if not n:
                raise RuntimeError(f"GET {url}: closed before the response head")
            head += bytes(view[:n])
        head, body = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"GET {url}: {head[:100]!r}")
        total = len(body)
        first = time.monotonic() - start if total else None
        while total < SIZE:
            if time.monotonic() - start > TRANSFER_TIMEOUT:
                raise RuntimeError(f"GET {url}: {total} bytes after {TRANSFER_TIMEOUT} s")
            n = s.recv_into(view)
            if not n:
                break
            if first is None:
                first = time.monotonic() - start
            total += n
        end = time.monotonic() - start
    if total != SIZE:
        raise RuntimeError(f"GET {url}: {total} bytes, expected {SIZE}")
    return first, end


class Nginx:
    """nginx with a config of its own in work/TAG, on its own port, one process (no master),
    stopped by its PID."""

    def __init__(self, work, root, tag, sendfile):
        self.dir = os.path.join(work, tag)
        os.makedirs(os.path.join(self.dir, "tmp"))
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, port=self.port, root=root, sendfile="on" if sendfile else "off"))
        self.log = os.path.join(self.dir, "stderr.txt")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        try:
            wait_port(self.port, self.proc, self.log, "nginx")
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{self.port}/{NAME}"

    def stop(self):
        stop_process(self.proc, grace=5)


class Serve:
    """`torrentfs serve SOURCE` on its own port; `url` once it printed where it listens."""

    def __init__(self, work, tag, source, data, extra=()):
        self.port = free_port()
        self.data = data
        self.log = os.path.join(work, f"serve-{tag}.log")
        self.t_start = time.monotonic()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([BIN, "serve", source, "--http", f"127.0.0.1:{self.port}", "--data", data,
                                          "--state", data + ".state", "--port", "0", *extra],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_port(self.port, self.proc, self.log, "torrentfs serve")
        except BaseException:
            self.stop()
            raise

    def index(self):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/", headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def wait_for(self, predicate, what):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            torrents = self.index()
            if torrents and predicate(torrents[0]):
                return torrents[0]
            if self.proc.poll() is not None:
                raise RuntimeError(f"torrentfs serve exited with {self.proc.returncode}: {log_tail(self.log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"torrentfs serve: {what} not after {START_TIMEOUT} s: {log_tail(self.log)}")
            time.sleep(0.005)

    def stop(self):
        stop_process(self.proc, grace=5)


def fmt_rate(rate):
    return "—" if rate is None else f"{rate / 1e6:8.1f} MB/s"


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "—"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ---------------------------------------------------------------------------
# 1. Verified data: torrentfs serve vs nginx
# ---------------------------------------------------------------------------

SERVERS = ("torrentfs", "nginx", "nginx-copy")
SERVER_LABELS = {"torrentfs": "torrentfs serve", "nginx": "nginx", "nginx-copy": "nginx, sendfile off"}


def verified_case(work, src, torrent, infohash, src_digest):
    print(f"\n1. verified {SIZE // MIB} MiB file over HTTP, one curl at a time: torrentfs serve vs nginx serving the "
          f"same file (sendfile on, as Debian ships it; and, for reference, sendfile off: read() + write() copies "
          f"like ours) (median of {RUNS})", flush=True)
    data = os.path.join(work, "verified-data")
    os.makedirs(os.path.join(data, infohash))
    os.link(os.path.join(src, NAME), os.path.join(data, infohash, NAME))
    servers = []
    modes = ["warm"] + (["disk"] if can_drop_caches() else [])
    results = {mode: {server: [] for server in SERVERS} for mode in modes}
    try:
        nginx = Nginx(work, src, "nginx", sendfile=True)
        servers.append(nginx)
        copy = Nginx(work, src, "nginx-copy", sendfile=False)
        servers.append(copy)
        serve = Serve(work, "verified", torrent, data)
        servers.append(serve)
        checked = serve.wait_for(lambda t: t.get("progress") == 1, "the data checked")
        urls = {"torrentfs": checked["files"][0]["url"], "nginx": nginx.url, "nginx-copy": copy.url}
        for server, url in urls.items():
            if url_digest(url) != src_digest:
                raise RuntimeError(f"{server} served bytes that differ from the source")
        for run in range(RUNS):
            order = list(SERVERS) if run % 2 == 0 else list(reversed(SERVERS))
            for mode in modes:
                for server in order:
                    if mode == "disk":
                        drop_caches()
                    _, _, total = curl(urls[server])
                    results[mode][server].append(SIZE / total)
            print(f"  run {run + 1}: " + "; ".join(
                f"{mode} " + ", ".join(f"{server} {results[mode][server][-1] / 1e6:.0f}" for server in SERVERS)
                for mode in modes) + " MB/s", flush=True)
        with open(f"/proc/{serve.proc.pid}/status") as f:
            rss = next((int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:")), None)
        summary = {}
        for mode in modes:
            med = {server: median(results[mode][server]) for server in SERVERS}
            label = "page cache" if mode == "warm" else "after drop_caches"
            print(f"  {label:18s} " + "   ".join(f"{SERVER_LABELS[server]} {fmt_rate(med[server]).strip()}"
                                                for server in SERVERS), flush=True)
            print(f"  {'':18s} torrentfs/nginx {ratio(med['torrentfs'], med['nginx'])}   target ≥ 0.8x;   "
                  f"torrentfs/nginx with sendfile off {ratio(med['torrentfs'], med['nginx-copy'])}", flush=True)
            summary[mode] = (med["torrentfs"], med["nginx"], med["nginx-copy"])
        if "disk" not in modes:
            print("  (/proc/sys/vm/drop_caches is not writable here: the disk rows are skipped)", flush=True)
        if rss:
            print(f"  torrentfs serve peak RSS (VmHWM) {rss / MIB:.1f} MiB", flush=True)
        return summary
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(data + ".state", ignore_errors=True)


# ---------------------------------------------------------------------------
# 2. Cold: HTTP vs the mount, from the same seeder
# ---------------------------------------------------------------------------

def magnet(infohash, port):
    return f"magnet:?xt=urn:btih:{infohash}&dn={NAME}&x.pe=127.0.0.1:{port}"


def cold_http(work, infohash, seeder_port, src_digest, index):
    data = os.path.join(work, f"cold-http-{index}")
    os.makedirs(data)
    serve = None
    try:
        serve = Serve(work, f"cold-{index}", magnet(infohash, seeder_port), data)
        listed = serve.wait_for(lambda t: t.get("files"), "the metadata")
        t_listed = time.monotonic()
        first, total = stream(listed["files"][0]["url"])
        t_end = time.monotonic()
        if url_digest(listed["files"][0]["url"]) != src_digest:
            raise RuntimeError("torrentfs serve: the file fetched again differs from the source")
        return {"stream": SIZE / total, "first": first, "from_start": SIZE / (t_end - serve.t_start),
                "listed": t_listed - serve.t_start}
    finally:
        if serve:
            serve.stop()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(data + ".state", ignore_errors=True)


def cold_mount(work, infohash, seeder_port, src_digest, index):
    mnt, data = os.path.join(work, f"cold-mnt-{index}"), os.path.join(work, f"cold-mnt-data-{index}")
    os.makedirs(mnt)
    os.makedirs(data)
    log_path = os.path.join(work, f"mount-{index}.log")
    t_start = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([BIN, "mount", mnt, "-o", f"data={data},port=0", "-f"], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    aborted = []

    def abort():
        aborted.append(True)
        proc.kill()
        abort_fuse(mnt)

    watchdog = threading.Timer(START_TIMEOUT + TRANSFER_TIMEOUT, abort)
    watchdog.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not is_mounted(mnt):
            if proc.poll() is not None:
                raise RuntimeError(f"torrentfs mount exited with {proc.returncode}: {log_tail(log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"torrentfs mount: not mounted after {START_TIMEOUT} s")
            time.sleep(0.002)
        with open(os.path.join(mnt, ".add"), "w") as f:
            f.write(magnet(infohash, seeder_port) + "\n")
        path = None
        while path is None:
            if proc.poll() is not None or aborted:
                raise RuntimeError(f"torrentfs mount died before the file was listed: {log_tail(log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"torrentfs mount: the file not listed after {START_TIMEOUT} s")
            try:
                for entry in os.listdir(mnt):
                    candidate = os.path.join(mnt, entry, NAME)
                    if not entry.startswith(".") and os.path.isfile(candidate):
                        path = candidate
            except OSError:
                pass
            time.sleep(0.002)
        t_listed = time.monotonic()
        buf = bytearray(MIB)
        view, total = memoryview(buf), 0
        t_open = time.monotonic()
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(view):
                if total == 0:
                    first = time.monotonic() - t_open
                total += n
        t_end = time.monotonic()
        if total != SIZE:
            raise RuntimeError(f"read {total} bytes through the mount, expected {SIZE}")
        if digest(path) != src_digest:
            raise RuntimeError("the file read again through the mount differs from the source")
        return {"stream": SIZE / (t_end - t_open), "first": first, "from_start": SIZE / (t_end - t_start),
                "listed": t_listed - t_start, "read_ahead_kb": read_ahead_kb(mnt)}
    finally:
        unmount(mnt)
        watchdog.cancel()
        stop_process(proc, natural=10, grace=5)
        if is_mounted(mnt):
            abort_fuse(mnt)
            subprocess.run(["umount", "-l", mnt], stderr=subprocess.DEVNULL)
        shutil.rmtree(data, ignore_errors=True)
        if aborted:
            raise RuntimeError(f"the mount run took over {START_TIMEOUT + TRANSFER_TIMEOUT} s (daemon killed)")


def cold_case(work, src, torrent, infohash, src_digest):
    print(f"\n2. cold streaming of the {SIZE // MIB} MiB file from one local libtorrent seeder (TCP): torrentfs serve "
          f"+ a GET read with 1 MiB recv_into vs torrentfs mount + 1 MiB reads, fresh data directories "
          f"(median of {RUNS})", flush=True)
    port = free_port()
    seeder = subprocess.Popen([PY, "-c", SEEDER, torrent, src, str(port)], stdout=subprocess.PIPE)
    try:
        if seeder.stdout.readline().strip() != b"ready":
            raise RuntimeError("the libtorrent seeder did not come up")
        runs = {"http": [], "mount": []}
        failed = {}
        for run in range(RUNS):
            order = ["http", "mount"] if run % 2 == 0 else ["mount", "http"]
            for way in order:
                if way in failed:
                    continue
                try:
                    fn = cold_http if way == "http" else cold_mount
                    runs[way].append(fn(work, infohash, port, src_digest, run))
                except (RuntimeError, OSError) as error:
                    failed[way] = f"{type(error).__name__}: {error}"
                    print(f"  {way} run {run + 1}: failed: {failed[way]}", flush=True)
            print(f"  run {run + 1}: " + ", ".join(
                f"{w} {runs[w][-1]['stream'] / 1e6:.0f} MB/s (first data {runs[w][-1]['first'] * 1000:.0f} ms)"
                for w in ("http", "mount") if len(runs[w]) == run + 1), flush=True)
        med = {w: {k: median([r[k] for r in rs]) for k in ("stream", "first", "from_start", "listed")}
               for w, rs in runs.items() if rs}
        h, m = med.get("http"), med.get("mount")
        print(f"  {'median':34s} {'HTTP':>13s} {'mount':>13s}   HTTP/mount", flush=True)
        for key, text in (("stream", "request/open → last byte"), ("from_start", "process start → last byte")):
            hv, mv = h and h[key], m and m[key]
            print(f"  {text:34s} {fmt_rate(hv):>13s} {fmt_rate(mv):>13s}   {ratio(hv, mv):>6s}"
                  + ("   target ≥ 0.9x" if key == "stream" else ""), flush=True)
        for key, text in (("first", "first data (first recv / 1 MiB read)"), ("listed", "start → metadata (file listed)")):
            hv, mv = h and h[key], m and m[key]
            print(f"  {text:34s} {(f'{hv * 1000:.0f} ms' if hv is not None else '—'):>13s} "
                  f"{(f'{mv * 1000:.0f} ms' if mv is not None else '—'):>13s}", flush=True)
        if runs["mount"]:
            print(f"  mount read_ahead_kb {runs['mount'][-1]['read_ahead_kb']}", flush=True)
        for way, error in failed.items():
            print(f"  {way}: FAILED — {error}", flush=True)
        return (h and h["stream"], m and m["stream"])
    finally:
        stop_process(seeder)
        if seeder.stdout:
            seeder.stdout.close()


def interrupted(signum, frame):
    raise KeyboardInterrupt


def main():
    if os.geteuid() != 0:
        sys.exit("bench: http_bench.py needs root (network namespace, FUSE, drop_caches)")
    if not os.path.exists(BIN):
        sys.exit(f"bench: {BIN} does not exist (make release)")
    for tool in ("nginx", "curl"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is not installed (make deps)")
    isolate()
    signal.signal(signal.SIGTERM, interrupted)
    began = time.monotonic()
    work = tempfile.mkdtemp(prefix="tfs-http-bench-")
    summary = {}
    try:
        src = os.path.join(work, "src")
        os.makedirs(src)
        write_random(os.path.join(src, NAME), SIZE)
        src_digest = digest(os.path.join(src, NAME))
        torrent = os.path.join(work, NAME + ".torrent")
        created = subprocess.run([BIN, "create", os.path.join(src, NAME), "-o", torrent, "--piece-length", str(PIECE),
                                  "--no-date", "--json"], check=True, capture_output=True, text=True)
        infohash = json.loads(created.stdout)["infoHash"]
        nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
        print(f"HTTP bench: torrentfs {BIN}; {nginx_version}; runs {RUNS}; private network namespace; "
              f"{SIZE // MIB} MiB file, {PIECE // MIB} MiB pieces; MB/s = 10^6 bytes/s", flush=True)
        try:
            summary["verified"] = verified_case(work, src, torrent, infohash, src_digest)
        except (RuntimeError, OSError) as error:
            print(f"  verified case failed: {type(error).__name__}: {error}", flush=True)
        try:
            summary["cold"] = cold_case(work, src, torrent, infohash, src_digest)
        except (RuntimeError, OSError) as error:
            print(f"  cold case failed: {type(error).__name__}: {error}", flush=True)
        print("\nsummary (ratios from the same run; targets from issue 12, not asserted)", flush=True)
        for mode, (t, n, c) in (summary.get("verified") or {}).items():
            label = "page cache" if mode == "warm" else "after drop_caches"
            print(f"  verified, {label:18s} torrentfs serve / nginx   {ratio(t, n):>6s}   target ≥ 0.8x   "
                  f"(/ nginx with sendfile off {ratio(t, c)})", flush=True)
        h, m = summary.get("cold") or (None, None)
        print(f"  cold streaming, HTTP / mount (same seeder)    {ratio(h, m):>6s}   target ≥ 0.9x", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        print(f"\nHTTP bench took {time.monotonic() - began:.0f} s", flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("bench: interrupted (processes and temporary files cleaned up)")
