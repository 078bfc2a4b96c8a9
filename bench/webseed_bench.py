#!/usr/bin/python3
"""`make bench` (web seed part, issue 11): a 256 MiB single-file torrent whose only source
is a web seed (nginx, started here with its own config, on loopback), downloaded by
torrentfs and by a python3-libtorrent leecher, against `curl` of the same file (the
physical limit); and the first byte of random-offset reads through the mount. Median of N
runs. Runs itself in a fresh network namespace (loopback only). Prints ratios; asserts
nothing."""
import json, os, random, shutil, statistics, subprocess, sys, tempfile, time

from benchcommon import free_port, isolate, write_random

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", ".build/release/torrentfs"))
SIZE = 256 << 20
PIECE = 1 << 20

NGINX_CONF = """user root; worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{ access_log off; sendfile on; client_body_temp_path {d}/b; proxy_temp_path {d}/p;
  fastcgi_temp_path {d}/f; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
  server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }} }}
"""

LEECHER = r'''
import libtorrent as lt, sys, time
torrent, save = sys.argv[1], sys.argv[2]
s = lt.session({'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
    'enable_upnp': False, 'enable_natpmp': False, 'alert_mask': 0})
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save})
while not h.status().is_seeding: time.sleep(0.01)
'''


def timed(cmd, timeout=300):
    start = time.monotonic()
    subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def mount_first_bytes(root, torrent):
    """Seconds from a read at a random offset of a cold file to its 64 KiB, through a mount."""
    mnt, data = os.path.join(root, "mnt"), os.path.join(root, "mdata")
    os.makedirs(mnt)
    proc = subprocess.Popen([BIN, "mount", mnt, "-f", "-o", f"data={data},port=0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mnt):
            if time.monotonic() > deadline:
                raise RuntimeError("the mount did not come up")
            time.sleep(0.02)
        with open(os.path.join(mnt, ".add"), "wb") as f:
            f.write(open(torrent, "rb").read())
        path = os.path.join(mnt, "film.bin", "film.bin")  # a single-file torrent's folder holds it
        while not os.path.exists(path):
            time.sleep(0.01)
        rng = random.Random(11)
        times = []
        for _ in range(5):
            offset = rng.randrange(SIZE - 65536)
            with open(path, "rb") as f:
                f.seek(offset)
                start = time.monotonic()
                f.read(65536)
                times.append(time.monotonic() - start)
        return times
    finally:
        subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
        proc.terminate()
        proc.wait(10)


def main():
    isolate()
    root = tempfile.mkdtemp(prefix="tfs-webseed-bench-")
    nginx = None
    try:
        www = os.path.join(root, "www")
        os.makedirs(www)
        write_random(os.path.join(www, "film.bin"), SIZE)
        port = free_port()
        conf = os.path.join(root, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=root, port=port, root=www))
        nginx = subprocess.Popen(["nginx", "-c", conf, "-p", root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/film.bin"
        deadline = time.monotonic() + 10
        while subprocess.run(["curl", "-sf", "-o", "/dev/null", "-r", "0-0", url]).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not come up")
            time.sleep(0.05)
        torrent = os.path.join(root, "film.torrent")
        subprocess.run([BIN, "create", os.path.join(www, "film.bin"), "-o", torrent, "--piece-length", str(PIECE),
                        "--web-seed", url, "--no-date"], check=True, stdout=subprocess.DEVNULL)
        print(f"\nweb seed only: {SIZE >> 20} MiB from nginx on loopback, median of {RUNS}", flush=True)
        results = {}
        clients = {
            "curl": lambda out: ["curl", "-sf", "-o", os.path.join(out, "film.bin"), url],
            "torrentfs": lambda out: [BIN, "download", torrent, "-o", out, "--quiet", "--state", out + ".state",
                                      "--port", "0"],
            "libtorrent": lambda out: ["/usr/bin/python3", "-c", LEECHER, torrent, out],
        }
        for name, make in clients.items():
            times = []
            try:
                for run in range(RUNS):
                    out = os.path.join(root, f"out-{name}-{run}")
                    os.makedirs(out)
                    times.append(timed(make(out)))
                    if os.path.getsize(os.path.join(out, "film.bin")) != SIZE:
                        raise RuntimeError("incomplete download")
                    shutil.rmtree(out)
                    shutil.rmtree(out + ".state", ignore_errors=True)
            except (RuntimeError, subprocess.SubprocessError) as error:
                print(f"  {name:10s} failed: {error}", flush=True)
                continue
            results[name] = statistics.median(times)
            print(f"  {name:10s} {SIZE / results[name] / 1e6:8.1f} MB/s  {results[name]:6.2f} s", flush=True)
        ours = results.get("torrentfs")
        if ours and "libtorrent" in results:
            print(f"  torrentfs time / libtorrent time: {ours / results['libtorrent']:.2f} (target <= 1)", flush=True)
        if ours and "curl" in results:
            print(f"  torrentfs throughput / curl: {results['curl'] / ours:.2f}x (target >= 0.8)", flush=True)
        try:
            firsts = mount_first_bytes(root, torrent)
            print(f"  mount, 64 KiB at a random cold offset: median {statistics.median(firsts) * 1000:.0f} ms, "
                  f"max {max(firsts) * 1000:.0f} ms (target <= 200 ms)", flush=True)
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            print(f"  mount first byte failed: {error}", flush=True)
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait(10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
