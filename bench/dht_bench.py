#!/usr/bin/python3
"""`make bench` (DHT part, issue 11): a private DHT of 30 python3-libtorrent nodes on
127.0.0.x (Tests/interop/lt_dht.py) with a libtorrent seeder announcing a 256 KiB
single-piece torrent there and nowhere else. Timed from writing a bare
`magnet:?xt=urn:btih:HASH` to `.add` of a fresh mount (one DHT node as its router):
the first DHT peer in `.status`, and the first verified byte read through the mount; then
the same after a restart with the saved table and the router down (a dead address);
against a libtorrent leecher in the same DHT (magnet added after its bootstrap: lookup →
metadata → the piece; TCP only, its fastest on loopback). Medians of N runs. Runs itself in a fresh network namespace
(loopback only). Prints figures and ratios; asserts nothing."""
import json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

from benchcommon import free_port, isolate, write_random

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
NODES = 30
HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", ".build/release/torrentfs"))
LT_DHT = os.path.join(HERE, "..", "Tests", "interop", "lt_dht.py")
SIZE = 256 << 10


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.002)


def events(path):
    out = []
    for line in open(path, encoding="utf-8", errors="replace"):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def mount_run(root, magnet, router, name):
    """Seconds from .add to the first DHT peer in .status and to the first byte read."""
    mnt, data = os.path.join(root, "mnt"), os.path.join(root, "mdata")
    os.makedirs(mnt, exist_ok=True)
    # A fresh torrent each time, the DHT table (state/dht.dat) kept.
    for sub in ("torrents", "data"):
        shutil.rmtree(os.path.join(data, sub), ignore_errors=True)
    log = open(os.path.join(root, f"{name}.log"), "wb")
    proc = subprocess.Popen([BIN, "mount", mnt, "-f", "-o",
                             f"data={data},port=0,dht_router={router},lsd=off,natpmp=off"],
                            stdout=log, stderr=log)
    try:
        wait(lambda: os.path.ismount(mnt), 20, "the mount")
        wait(lambda: json.load(open(os.path.join(mnt, ".status"))).get("dht") is not None, 20, "the DHT")
        started = time.monotonic()
        with open(os.path.join(mnt, ".add"), "w") as f:
            f.write(magnet)
        first_peer = None
        path = os.path.join(mnt, "dht.bin", "dht.bin")
        while not os.path.exists(path):
            if first_peer is None:
                status = json.load(open(os.path.join(mnt, ".status")))
                if any(t["knownPeersBySource"].get("dht", 0) for t in status["torrents"]):
                    first_peer = time.monotonic() - started
            if time.monotonic() - started > 30:
                raise RuntimeError("no metadata in 30 s")
            time.sleep(0.002)
        with open(path, "rb") as f:
            assert len(f.read(1)) == 1
        total = time.monotonic() - started
        return first_peer if first_peer is not None else total, total
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def libtorrent_run(root, magnet, router, port, address):
    save = os.path.join(root, "lt-" + address)
    os.makedirs(save)
    out = os.path.join(root, f"lt-{address}.out")
    proc = subprocess.Popen(["/usr/bin/python3", LT_DHT, "--nodes", "0", "--port", str(port), "--leech", magnet,
                             "--save", save, "--extra-address", address, "--leech-contact", router, "--no-utp"],
                            stdout=open(out, "wb"), stderr=subprocess.DEVNULL)
    try:
        wait(lambda: any(e.get("event") == "finished" for e in events(out)), 60, "the libtorrent leecher")
        return next(e["elapsed"] for e in events(out) if e.get("event") == "finished")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def main():
    isolate()
    root = tempfile.mkdtemp(prefix="dht-bench-")
    try:
        content = os.path.join(root, "dht.bin")
        write_random(content, SIZE)
        torrent = os.path.join(root, "dht.torrent")
        info = json.loads(subprocess.run([BIN, "create", content, "-o", torrent, "--piece-length", str(SIZE), "--json"],
                                         check=True, capture_output=True, text=True).stdout)
        magnet = f"magnet:?xt=urn:btih:{info['infoHash']}"
        port = free_port()
        rig_out = os.path.join(root, "rig.out")
        rig = subprocess.Popen(["/usr/bin/python3", LT_DHT, "--nodes", str(NODES), "--first-address", "127.0.0.20",
                                "--port", str(port), "--seed", torrent, "--save", root,
                                "--extra-address", "127.0.0.90"], stdout=open(rig_out, "wb"), stderr=subprocess.DEVNULL)
        try:
            wait(lambda: any(e.get("event") == "seeding" for e in events(rig_out)), 30, "the DHT and its seeder")
            time.sleep(2)  # the seeder's announce reaches the nodes closest to the info hash
            router = f"127.0.0.20:{port}"
            cold, warm, lt = [], [], []
            for run in range(RUNS):
                cold.append(mount_run(root, magnet, router, f"cold{run}"))
                warm.append(mount_run(root, magnet, "127.0.0.254:9", f"warm{run}"))
                lt.append(libtorrent_run(root, magnet, router, port, f"127.0.0.{100 + run}"))
                # The next cold run starts without a saved table.
                os.remove(os.path.join(root, "mdata", "state", "dht.dat"))
        finally:
            rig.send_signal(signal.SIGTERM)
            rig.wait(timeout=30)
        med = statistics.median
        peer, total = med(c[0] for c in cold), med(c[1] for c in cold)
        wpeer, wtotal = med(w[0] for w in warm), med(w[1] for w in warm)
        ltt = med(lt)
        print(f"DHT bench ({NODES} libtorrent nodes, {RUNS} runs, medians):")
        print(f"  torrentfs mount, router up:            first DHT peer {peer:.3f} s (target <= 0.3), "
              f"first byte {total:.3f} s")
        print(f"  torrentfs mount, saved table, no router: first DHT peer {wpeer:.3f} s (target <= 0.5), "
              f"first byte {wtotal:.3f} s")
        print(f"  libtorrent leecher (lookup, metadata, piece): {ltt:.3f} s")
        print(f"  torrentfs first byte / libtorrent: {total / ltt:.2f} (target <= 1)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
