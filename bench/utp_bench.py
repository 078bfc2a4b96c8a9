#!/usr/bin/python3
"""`make bench` (uTP part): 256 MiB over loopback, in a fresh network namespace.

- torrentfs → torrentfs over uTP (`torrentfs seed` and `torrentfs download`, both
  `--utp on`, the seed's TCP port refused by an nftables rule so that uTP carries it)
  vs the same pair with `--utp off` (TCP);
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
import os, shutil, statistics, subprocess, tempfile, time

from benchcommon import (free_port, isolate, lt_leech as lt_leecher, lt_seed as lt_seeder, refuse_tcp, start, stop,
                         timed, torrentfs_binary, wait_port, write_random)

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SIZE = int(os.environ.get("BENCH_UTP_SIZE", str(256 << 20)))
TIMEOUT = float(os.environ.get("BENCH_UTP_TIMEOUT", "180"))
BIN = torrentfs_binary()


def tfs_seed(work, torrent, src, port, utp):
    state = tempfile.mkdtemp(dir=work)
    proc = start([BIN, "seed", torrent, "--data", src, "--port", str(port), "--state", state,
                  "--lsd", "off", "--dht", "off", "--natpmp", "off", "--upnp", "off", "--utp", utp])
    wait_port(port)
    time.sleep(1.0)  # the data check of seed
    return proc


def tfs_download(work, torrent, port, utp):
    out = tempfile.mkdtemp(dir=work)
    state = tempfile.mkdtemp(dir=work)
    result = timed([BIN, "download", torrent, "-o", out, "--state", state, "--lsd", "off", "--dht", "off",
                    "--utp", utp, "--quiet", "--peer", f"127.0.0.1:{port}"], TIMEOUT)
    shutil.rmtree(out, ignore_errors=True)
    return result


def lt_leech(work, torrent, port, buf):
    """A libtorrent uTP-only leecher (socket buffers `buf`, 0: the kernel's default)."""
    seconds, finished, _ = lt_leecher(work, torrent, [f"127.0.0.1:{port}"], TIMEOUT, transport="utp", buffer=buf)
    return seconds, finished


def lt_seed(src, torrent, port):
    return lt_seeder(src, torrent, port, transport="utp")


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
            if utp == "on":
                refuse_tcp(port)
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
