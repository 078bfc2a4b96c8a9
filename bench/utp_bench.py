#!/usr/bin/python3
"""`make bench` (uTP part): 256 MiB over loopback, in a fresh network namespace.

- torrentfs → torrentfs over uTP (`torrentfs seed` and `torrentfs download`, both
  `--utp on`: the download dials uTP first) vs the same pair with `--utp off` (TCP);
- torrentfs downloading from a stock libtorrent uTP-only seeder vs a libtorrent
  uTP-only leecher with 4 MiB socket buffers from the same seeder;
- a stock libtorrent uTP-only leecher downloading from `torrentfs seed` vs from a
  stock libtorrent uTP-only seeder.

Our side runs with the default `--encryption prefer` over both transports: an encrypted
handshake, then plaintext selected (libtorrent's default too); RC4's own cost is
`mse_download_bench.py`'s. Times are wall clock from starting the downloader to its exit (process
start and the empty-directory check included). Median of BENCH_RUNS (default 3) runs,
each bounded; a run that times out counts as its bound. Prints figures and ratios;
asserts nothing."""
import os, shutil, statistics, subprocess, sys, tempfile, time

from benchcommon import free_port, isolate, write_random

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SIZE = int(os.environ.get("BENCH_UTP_SIZE", str(256 << 20)))
TIMEOUT = float(os.environ.get("BENCH_UTP_TIMEOUT", "180"))
HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", ".build/release/torrentfs"))
PY = "/usr/bin/python3"

LT = r'''
import libtorrent as lt, sys, time
role, torrent, save, port, buf = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
peers = sys.argv[6:]
settings = {'listen_interfaces': f'127.0.0.1:{port}', 'enable_dht': False, 'enable_lsd': False,
    'enable_upnp': False, 'enable_natpmp': False, 'enable_outgoing_tcp': False, 'enable_incoming_tcp': False,
    'enable_outgoing_utp': True, 'enable_incoming_utp': True,
    'allow_multiple_connections_per_ip': True, 'alert_mask': 0}
if buf:
    settings['recv_socket_buffer_size'] = buf
    settings['send_socket_buffer_size'] = buf
s = lt.session(settings)
params = {'ti': lt.torrent_info(torrent), 'save_path': save}
if role == 'seed':
    params['flags'] = lt.torrent_flags.seed_mode
h = s.add_torrent(params)
for p in peers:
    host, p = p.rsplit(':', 1); h.connect_peer((host, int(p)))
if role == 'seed':
    print("ready", flush=True)
    while True: time.sleep(3600)
# The peer is offered again every second, as a tracker or PEX would: a peer given once
# is retried only after a long back-off if a first attempt fails.
last = time.monotonic()
while not h.status().is_seeding:
    if time.monotonic() - last > 1.0:
        for p in peers:
            host, p = p.rsplit(':', 1); h.connect_peer((host, int(p)))
        last = time.monotonic()
    time.sleep(0.02)
'''


def timed(cmd, timeout=TIMEOUT):
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return timeout, False
    return time.monotonic() - start, proc.returncode == 0


def start(cmd, ready=None):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if ready:
        while ready not in (proc.stdout.readline() or ready):
            pass
    return proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_port(port):
    import socket
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)


def tfs_seed(work, torrent, src, port, utp):
    state = tempfile.mkdtemp(dir=work)
    proc = start([BIN, "seed", torrent, "--data", src, "--port", str(port), "--state", state,
                  "--lsd", "off", "--dht", "off", "--natpmp", "off", "--utp", utp])
    wait_port(port)
    time.sleep(1.0)  # the data check of seed
    return proc


def tfs_download(work, torrent, port, utp):
    out = tempfile.mkdtemp(dir=work)
    state = tempfile.mkdtemp(dir=work)
    result = timed([BIN, "download", torrent, "-o", out, "--state", state, "--lsd", "off", "--dht", "off",
                    "--utp", utp, "--quiet", "--peer", f"127.0.0.1:{port}"])
    shutil.rmtree(out, ignore_errors=True)
    return result


def lt_leech(work, torrent, port, buf):
    out = tempfile.mkdtemp(dir=work)
    result = timed([PY, "-c", LT, "leech", torrent, out, str(free_port()), str(buf), f"127.0.0.1:{port}"])
    shutil.rmtree(out, ignore_errors=True)
    return result


def lt_seed(src, torrent, port):
    return start([PY, "-c", LT, "seed", torrent, src, str(port), "0"], ready="ready")


def median_rate(label, runs):
    times = [t for t, _ in runs]
    failed = sum(1 for _, ok in runs if not ok)
    median = statistics.median(times)
    rate = SIZE / median / (1 << 20)
    note = f" ({failed} of {len(runs)} runs failed or timed out)" if failed else ""
    print(f"  {label:58s} {median:7.2f} s  {rate:8.1f} MiB/s{note}", flush=True)
    return rate


def main():
    isolate()
    work = tempfile.mkdtemp(prefix="utp-bench-")
    try:
        src = os.path.join(work, "src")
        os.makedirs(src)
        write_random(os.path.join(src, "utp.bin"), SIZE)
        torrent = os.path.join(work, "utp.torrent")
        subprocess.run([BIN, "create", os.path.join(src, "utp.bin"), "-o", torrent, "--no-date"],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"uTP bench: {SIZE >> 20} MiB over loopback, median of {RUNS}", flush=True)

        rates = {}
        for utp in ("on", "off"):
            port = free_port()
            seed = tfs_seed(work, torrent, src, port, utp)
            runs = [tfs_download(work, torrent, port, utp) for _ in range(RUNS)]
            stop(seed)
            rates[utp] = median_rate(f"torrentfs -> torrentfs, {'uTP' if utp == 'on' else 'TCP'}", runs)
        print(f"  ratio uTP/TCP: {rates['on'] / rates['off']:.2f} (target >= 0.7; >= 350 MiB/s)")

        port = free_port()
        seed = lt_seed(src, torrent, port)
        ours = median_rate("torrentfs <- stock libtorrent seeder (uTP)",
                           [tfs_download(work, torrent, port, "on") for _ in range(RUNS)])
        theirs = median_rate("libtorrent (4 MiB buffers) <- stock libtorrent seeder (uTP)",
                             [lt_leech(work, torrent, port, 4 << 20) for _ in range(RUNS)])
        stop(seed)
        print(f"  ratio: {ours / theirs:.2f} (target >= 1.0)")

        port = free_port()
        seed = tfs_seed(work, torrent, src, port, "on")
        from_us = median_rate("stock libtorrent leecher <- torrentfs seed (uTP)",
                              [lt_leech(work, torrent, port, 0) for _ in range(RUNS)])
        stop(seed)
        port = free_port()
        seed = lt_seed(src, torrent, port)
        from_lt = median_rate("stock libtorrent leecher <- stock libtorrent seeder (uTP)",
                              [lt_leech(work, torrent, port, 0) for _ in range(RUNS)])
        stop(seed)
        print(f"  ratio: {from_us / from_lt:.2f} (target >= 5)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
