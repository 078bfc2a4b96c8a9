#!/usr/bin/python3
"""`make bench` (download part): full downloads from local libtorrent seeders over TCP,
torrentfs vs a python3-libtorrent leecher vs aria2c, median of N runs, with peak RSS.
Runs itself inside a fresh network namespace (loopback only) so nothing leaves the machine.
Prints ratios; asserts nothing."""
import hashlib, os, shutil, statistics, subprocess, sys, tempfile, time

from benchcommon import free_port, isolate, write_random

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", ".build/release/torrentfs"))
PY = "/usr/bin/python3"

SEEDER = r'''
import libtorrent as lt, sys, time
torrent, save, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = lt.session({'listen_interfaces': f'127.0.0.1:{port}', 'enable_dht': False, 'enable_lsd': False,
    'enable_upnp': False, 'enable_natpmp': False, 'enable_outgoing_utp': False, 'enable_incoming_utp': False,
    'allow_multiple_connections_per_ip': True, 'alert_mask': 0})
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save, 'flags': lt.torrent_flags.seed_mode})
print("ready", flush=True)
while True: time.sleep(3600)
'''

LEECHER = r'''
import libtorrent as lt, sys, time
torrent, save = sys.argv[1], sys.argv[2]
peers = sys.argv[3:]
s = lt.session({'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
    'enable_upnp': False, 'enable_natpmp': False, 'enable_outgoing_utp': False, 'enable_incoming_utp': False,
    'allow_multiple_connections_per_ip': True, 'alert_mask': 0})
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save})
for p in peers:
    host, port = p.rsplit(':', 1); h.connect_peer((host, int(port)))
while not h.status().is_seeding: time.sleep(0.02)
'''


def make_content(root, name, files, piece):
    src = os.path.join(root, "src")
    os.makedirs(src, exist_ok=True)
    if len(files) == 1:
        path = os.path.join(src, name)
        write_random(path, files[0])
    else:
        path = os.path.join(src, name)
        os.makedirs(path)
        for i, size in enumerate(files):
            write_random(os.path.join(path, f"file{i:02d}.bin"), size)
    torrent = os.path.join(root, name + ".torrent")
    subprocess.run([BIN, "create", path, "-o", torrent, "--piece-length", str(piece), "--no-date"],
                   check=True, stdout=subprocess.DEVNULL)
    return src, torrent


def run_timed(cmd, timeout=600):
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            elapsed = time.monotonic() - start
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"{cmd[0]} failed: {proc.stderr.read().decode(errors='replace')[-500:]}")
            return elapsed, usage.ru_maxrss * 1024
        if time.monotonic() > deadline:
            proc.kill(); proc.wait()
            raise RuntimeError(f"{cmd[0]} timed out")
        time.sleep(0.005)


def opentracker(root, infohash):
    """Debian's opentracker (whitelist build): it chroots to its root dir and drops to
    nobody, so the whitelist path is inside the chroot and readable by nobody."""
    port = free_port()
    trackroot = os.path.join(root, "opentracker")
    os.makedirs(trackroot)
    os.chmod(trackroot, 0o755)
    with open(os.path.join(trackroot, "whitelist.txt"), "w") as f:
        f.write(infohash + "\n")
    os.chmod(os.path.join(trackroot, "whitelist.txt"), 0o644)
    conf = os.path.join(trackroot, "opentracker.conf")
    with open(conf, "w") as f:
        f.write(f"listen.tcp_udp 127.0.0.1:{port}\naccess.whitelist /whitelist.txt\n"
                f"tracker.rootdir {trackroot}\ntracker.user nobody\n")
    proc = subprocess.Popen(["opentracker", "-f", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:  # ready once it answers announces for our hash (the whitelist loads asynchronously;
        try:         # a `stopped` announce is answered before that, so probe with `started`, then leave)
            if b"failure reason" not in announce(port, infohash, 1, event="started"):
                announce(port, infohash, 1, event="stopped")
                return proc, port
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("opentracker did not come up")
        time.sleep(0.05)


def bench_case(label, files, piece, seeders):
    root = tempfile.mkdtemp(prefix="tfs-bench-")
    procs = []
    try:
        name = "bench-" + label.replace(" ", "-")
        src, torrent = make_content(root, name, files, piece)
        total = sum(files)
        info = subprocess.run([BIN, "info", torrent, "--json"], check=True, capture_output=True, text=True).stdout
        infohash = __import__("json").loads(info)["infoHash"]
        ports = []
        for _ in range(seeders):
            port = free_port()
            p = subprocess.Popen([PY, "-c", SEEDER, torrent, src, str(port)], stdout=subprocess.PIPE)
            p.stdout.readline()
            procs.append(p)
            ports.append(port)
        peers = [f"127.0.0.1:{p}" for p in ports]
        tracker, tport = opentracker(root, infohash)
        procs.append(tracker)
        # Seeders announce to the tracker for aria2's sake (aria2 ignores x.pe and has no add-peer).
        for port in ports:
            announce(tport, infohash, port)
        # aria2 needs the tracker in the torrent; make a copy that names it.
        aria_torrent = os.path.join(root, "aria.torrent")
        subprocess.run([BIN, "create", os.path.join(src, name), "-o", aria_torrent, "--piece-length", str(piece),
                        "--no-date", "--tracker", f"http://127.0.0.1:{tport}/announce"], check=True,
                       stdout=subprocess.DEVNULL)
        results = {}
        clients = {
            "torrentfs": lambda out: [BIN, "download", torrent, "-o", out, "--quiet", "--state", out + ".state"]
                + sum((["--peer", p] for p in peers), []),
            "libtorrent": lambda out: [PY, "-c", LEECHER, torrent, out] + peers,
            "aria2c": lambda out: ["aria2c", "-d", out, "--enable-dht=false", "--enable-dht6=false",
                                   "--bt-enable-lpd=false", "--seed-time=0", "--console-log-level=error",
                                   "--summary-interval=0", "--file-allocation=none", "--check-integrity=false",
                                   "--bt-tracker-connect-timeout=5", "--disable-ipv6=true", aria_torrent],
        }
        print(f"\n{label}: {total / 1e6:.0f} MB, {piece // 1024} KiB pieces, {seeders} seeder(s), median of {RUNS}",
              flush=True)
        for client, make in clients.items():
            times, rss = [], []
            try:
                for run in range(RUNS):
                    out = os.path.join(root, f"out-{client}-{run}")
                    os.makedirs(out)
                    elapsed, peak = run_timed(make(out), timeout=180)
                    times.append(elapsed)
                    rss.append(peak)
                    check(src, out)
                    shutil.rmtree(out)
                    shutil.rmtree(out + ".state", ignore_errors=True)
            except RuntimeError as error:
                print(f"  {client:11s} failed: {error}", flush=True)
                continue
            results[client] = (statistics.median(times), max(rss))
            t, r = results[client]
            print(f"  {client:11s} {total / t / 1e6:8.1f} MB/s  {t:6.2f} s  peak RSS {r / 2**20:6.1f} MiB", flush=True)
        ours = results.get("torrentfs")
        for other in ("libtorrent", "aria2c"):
            o = results.get(other)
            if ours and o:
                print(f"  torrentfs/{other}: throughput {o[0] / ours[0]:.2f}x, RSS {ours[1] / o[1]:.2f}x", flush=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(root, ignore_errors=True)


def announce(port, infohash, peer_port, event="completed"):
    import urllib.request, urllib.parse
    q = "info_hash=" + urllib.parse.quote(bytes.fromhex(infohash)) + "&peer_id=" + urllib.parse.quote(os.urandom(20)) \
        + f"&port={peer_port}&uploaded=0&downloaded=0&left=0&event={event}&compact=1"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/announce?{q}", timeout=5) as response:
        return response.read()


def check(src, out):
    for dirpath, _, names in os.walk(src):
        for n in names:
            a = os.path.join(dirpath, n)
            b = os.path.join(out, os.path.relpath(a, src))
            if digest(a) != digest(b):
                raise RuntimeError(f"bench: {b} differs from the source")


def digest(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


if __name__ == "__main__":
    isolate()
    mib = 1 << 20
    bench_case("single file", [256 * mib], 1 * mib, 1)
    bench_case("20 files", [7_500_000 + i * 1234 for i in range(20)], 256 * 1024, 1)
    bench_case("single file 4 seeders", [256 * mib], 1 * mib, 4)
