#!/usr/bin/python3
"""MSE benchmark: the same 128 MiB download, torrentfs seed -> torrentfs download over TCP on
loopback, with RC4 forced on both sides (--encryption require) and in plaintext
(--encryption off), alternating, median of BENCH_RUNS (default 3); then the in-process
handshake and RC4 figures of bench/mse_bench.sh. Runs in a fresh network namespace.
Prints figures and the ratio (target: RC4 >= 0.8x plaintext); asserts nothing."""
import os, shutil, statistics, subprocess, sys, tempfile, time

from benchcommon import free_port, isolate, write_random

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SIZE = int(os.environ.get("BENCH_MSE_MIB", "128")) << 20
HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", ".build/release/torrentfs"))


def wait_port(port, timeout=30):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("seed did not listen")


def one_run(root, torrent, src, mode, index):
    port = free_port()
    common = ["--lsd", "off", "--dht", "off", "--utp", "off", "--encryption", mode]
    seed = subprocess.Popen([BIN, "seed", torrent, "--data", src, "--port", str(port), "--natpmp", "off",
                             "--state", os.path.join(root, f"seed-state-{mode}-{index}")] + common,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        out = os.path.join(root, f"out-{mode}-{index}")
        start = time.monotonic()
        subprocess.run([BIN, "download", torrent, "-o", out, "--peer", f"127.0.0.1:{port}", "--quiet",
                        "--state", os.path.join(root, f"dl-state-{mode}-{index}")] + common,
                       check=True, timeout=600, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = time.monotonic() - start
        shutil.rmtree(out)
        return elapsed
    finally:
        seed.terminate()
        seed.wait(timeout=30)


def main():
    isolate()
    root = tempfile.mkdtemp(prefix="mse-bench-")
    try:
        src = os.path.join(root, "src")
        os.makedirs(src)
        write_random(os.path.join(src, "payload.bin"), SIZE)
        torrent = os.path.join(root, "payload.torrent")
        subprocess.run([BIN, "create", os.path.join(src, "payload.bin"), "-o", torrent, "--no-date"],
                       check=True, stdout=subprocess.DEVNULL)
        times = {"off": [], "require": []}
        for index in range(RUNS):
            for mode in ("off", "require"):
                times[mode].append(one_run(root, torrent, src, mode, index))
        mib = SIZE / (1 << 20)
        plain = statistics.median(times["off"])
        rc4 = statistics.median(times["require"])
        print(f"torrentfs -> torrentfs, {mib:.0f} MiB, median of {RUNS}:")
        print(f"  plaintext (--encryption off):   {plain:6.2f} s  {mib / plain:7.1f} MiB/s")
        print(f"  RC4 (--encryption require):     {rc4:6.2f} s  {mib / rc4:7.1f} MiB/s")
        print(f"  RC4 / plaintext speed: {plain / rc4:.2f}x (target >= 0.8x)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    subprocess.run([os.path.join(HERE, "mse_bench.sh")], check=True)


if __name__ == "__main__":
    main()
