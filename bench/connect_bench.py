#!/usr/bin/python3
"""Time to connect from a magnet (issue: <= 0.5 s on loopback, vs libtorrent's in the same
run), in a fresh network namespace, to two libtorrent 2.0.8 seeders of a 4 MiB torrent:
- a uTP-only one (TCP off both ways),
- a require-encryption one (TCP and uTP, in/out policies forced, RC4 only).

The downloader gets `magnet:?xt=urn:btih:…&x.pe=127.0.0.1:PORT` and nothing else:
`torrentfs download` with its defaults (uTP on, --encryption prefer), a stock libtorrent
leecher (uTP and TCP, pe_enabled) and, for the encrypted seeder, a libtorrent leecher that
forces RC4 too. The seeder (fresh for every run, bench/lt_bench_peer.py --events) reports on
CLOCK_MONOTONIC its first incoming connection and the moment its first peer is past the
BitTorrent handshake (polled every 2 ms); times are from starting the downloader process
(its start-up included), and the download's end (metadata, then 4 MiB, verified) is the
downloader's exit. Median of BENCH_RUNS (default 3); a connection not made within 20 s
counts as 20 s. Prints figures and ratios (libtorrent's time / ours: above 1, we connect
sooner); asserts nothing."""
import os, shutil, statistics, subprocess, tempfile, time

from benchcommon import (LT_PYTHON, free_port, isolate, lt_peer, make_payload, read_line, start, stop,
                         timed, torrentfs_binary)

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
BOUND = 20.0
BIN = torrentfs_binary()


def one_run(work, src, torrent, info_hash, seeder, downloader):
    port = free_port()
    seed, _ = start(lt_peer("seed", src, torrent=torrent, port=port, events=True, **seeder), ready="ready")
    magnet = f"magnet:?xt=urn:btih:{info_hash}&x.pe=127.0.0.1:{port}"
    out = tempfile.mkdtemp(dir=work)
    if downloader == "torrentfs":
        cmd = [BIN, "download", magnet, "-o", out, "--state", tempfile.mkdtemp(dir=work), "--lsd", "off",
               "--dht", "off", "--quiet"]
    else:
        cmd = lt_peer("leech", out, magnet=magnet, port=free_port(),
                      encryption="rc4" if downloader == "libtorrent-rc4" else "default", transport="both")
    begin = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        times = {}
        for event in ("incoming", "handshake"):
            line = read_line(seed, event, max(0.0, begin + BOUND - time.monotonic()))
            if line is not None:
                times[event] = float(line.split()[1]) - begin
        try:
            proc.wait(timeout=max(0.1, begin + BOUND + 10 - time.monotonic()))
            times["done"] = time.monotonic() - begin if proc.returncode == 0 else None
        except subprocess.TimeoutExpired:
            times["done"] = None
        return times
    finally:
        stop(proc)
        stop(seed)
        shutil.rmtree(out, ignore_errors=True)


def summary(label, runs):
    def med(key):
        values = [r.get(key) for r in runs]
        missing = sum(1 for v in values if v is None)
        return statistics.median(BOUND if v is None else v for v in values), missing
    handshake, missed = med("handshake")
    incoming, _ = med("incoming")
    done, unfinished = med("done")
    note = f"  ({missed} of {len(runs)} never connected within {BOUND:.0f} s)" if missed else ""
    note += f"  ({unfinished} of {len(runs)} did not finish)" if unfinished else ""
    print(f"  {label:44s} connected {handshake:6.3f} s  (first SYN/accept {incoming:6.3f} s)  "
          f"downloaded {done:6.2f} s{note}", flush=True)
    return handshake


def main():
    isolate()
    work = tempfile.mkdtemp(prefix="connect-bench-")
    try:
        src, torrent, info_hash = make_payload(BIN, work, "connect.bin", 4 << 20)
        print(f"time to connect from a magnet (x.pe) on loopback, median of {RUNS} (target <= 0.5 s):", flush=True)
        cases = [
            ("uTP-only libtorrent seeder", {"transport": "utp"}, ["torrentfs", "libtorrent"]),
            ("require-encryption libtorrent seeder (TCP and uTP)", {"encryption": "rc4", "transport": "both"},
             ["torrentfs", "libtorrent", "libtorrent-rc4"]),
        ]
        for name, seeder, downloaders in cases:
            print(f" {name}:", flush=True)
            runs = {d: [] for d in downloaders}
            for _ in range(RUNS):
                for d in downloaders:
                    runs[d].append(one_run(work, src, torrent, info_hash, seeder, d))
            labels = {"torrentfs": "torrentfs download (defaults)", "libtorrent": "libtorrent leecher (stock)",
                      "libtorrent-rc4": "libtorrent leecher (RC4 forced too)"}
            medians = {d: summary(labels[d], runs[d]) for d in downloaders}
            for d in downloaders[1:]:
                bound = "at least " if medians[d] >= BOUND else ""
                print(f"  {labels[d]}'s time to connect / torrentfs's: {bound}{medians[d] / medians['torrentfs']:.1f}x",
                      flush=True)
        startup = statistics.median(timed([LT_PYTHON, "-c", "import libtorrent; libtorrent.session"], 30)[0]
                                    for _ in range(3))
        print(f" (the libtorrent figures include Python's start and `import libtorrent`: {startup:.3f} s alone)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
