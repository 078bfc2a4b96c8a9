#!/usr/bin/python3
"""`make bench` (mount part): the torrentfs mount against btfs (Debian package, libtorrent
based) on the same local libtorrent seeder over TCP, next to the FUSE ceiling measured by a
trivial in-memory filesystem (bench/memfs.c) in the same run.

Two torrents: a 256 MiB single file (1 MiB pieces) and 20 files of ~7.5 MB (256 KiB pieces).
For each client and run, three fresh mounts with empty data directories, each given a magnet
with the seeder as x.pe peer:
  1. time to metadata (process start until the files are listed), first byte at offset 0,
     cold sequential read of everything with 1 MiB reads, then two warm re-reads of the now
     fully verified data: one after `echo 3 > /proc/sys/vm/drop_caches` (no page cache
     anywhere: the filesystem and its backing files both read again), one after dropping only
     the mount's own page cache (POSIX_FADV_DONTNEED; the backing files stay cached);
  2. first byte at 10 random offsets (4 KiB reads, seeded RNG, median latency);
  3. four concurrent readers (4 files, or 4 quarters of the single file), wall time and MB/s.
Peak RSS = the daemon's VmHWM read before each unmount (max over mounts). The FUSE ceiling
(memfs: in-memory file, max_read 1 MiB, read_ahead_kb 1024, keep_cache) stays mounted for the
whole run and is read again right after every warm re-read, so each re-read is set against a
ceiling measured under the same load (this 2-core machine is often busy with builds).

Medians of BENCH_RUNS runs (default 3; 1 for a quick run). Runs itself inside a fresh network
namespace (loopback only) so nothing leaves the machine. Prints the ratios; asserts nothing.
If the torrentfs part fails, that is reported and the btfs and memfs figures still print.

usage: bench/mount_bench.py [TORRENTFS_BINARY]   (default .build/release/torrentfs; root)"""
import os, random, re, shutil, signal, statistics, subprocess, sys, tempfile, threading, time
import urllib.parse

from benchcommon import free_port, isolate, write_random

RUNS = max(1, int(os.environ.get("BENCH_RUNS", "3")))
HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", ".build/release/torrentfs"))
PY = "/usr/bin/python3"
MIB = 1 << 20
CHUNK = MIB                # every throughput read is a 1 MiB read
PROBE = 4096               # first-byte reads
RANDOM_READS = 10
RNG_SEED = 20240601
MEMFS_SIZE = 1024 * MIB
MEMFS_READS = 5
METADATA_TIMEOUT = 90      # seconds, per mount
READ_TIMEOUT = 240         # seconds, per measured phase (a stalled client is killed, not waited on)
MEMFS = None               # the mounted Memfs, for ceiling samples

SEEDER = r'''
import libtorrent as lt, sys, time
torrent, save, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = lt.session({'listen_interfaces': f'127.0.0.1:{port}', 'enable_dht': False, 'enable_lsd': False,
    'enable_upnp': False, 'enable_natpmp': False, 'enable_outgoing_utp': False, 'enable_incoming_utp': False,
    'allow_multiple_connections_per_ip': True, 'alert_mask': 0})
# A full check up front rather than seed_mode: seed_mode hashes each piece on its first request,
# which would slow down whichever client happens to ask first.
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save})
deadline = time.monotonic() + 300
while not h.status().is_seeding:
    if time.monotonic() > deadline: print("not seeding", flush=True); sys.exit(1)
    time.sleep(0.05)
print("ready", flush=True)
while True: time.sleep(3600)
'''


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def drop_file_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_whole(paths, buf):
    """Reads the files one after the other with 1 MiB reads; returns the bytes read."""
    total = 0
    view = memoryview(buf)
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while n := f.readinto(view):
                total += n
    return total


def mount_device(mnt):
    """'major:minor' of what is mounted at mnt, from /proc/self/mountinfo, or None. Never
    touches the mount itself, so a hung FUSE daemon cannot block the benchmark here."""
    mnt = os.path.realpath(mnt)
    device = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                point = re.sub(r"\\([0-7]{3})", lambda x: chr(int(x.group(1), 8)), fields[4])
                if point == mnt:
                    device = fields[2]  # the last (topmost) mount at that point wins
    except OSError:
        pass
    return device


def is_mounted(mnt):
    return mount_device(mnt) is not None


def bdi_read_ahead(mnt):
    return f"/sys/class/bdi/{mount_device(mnt)}/read_ahead_kb"


def read_ahead_kb(mnt):
    try:
        with open(bdi_read_ahead(mnt)) as f:
            return int(f.read())
    except OSError:
        return None


def abort_fuse(mnt):
    """Aborts the FUSE connection of mnt: every request waiting on it fails with ENOTCONN."""
    device = mount_device(mnt)
    if device:
        try:
            with open(f"/sys/fs/fuse/connections/{device.split(':')[1]}/abort", "w") as f:
                f.write("1\n")
        except OSError:
            pass


def proc_status(pid, field):
    """A kB field of /proc/PID/status (VmHWM, RssAnon…) in bytes, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def stop_process(proc, natural=0, grace=10):
    """Stops one process we started, by its PID: lets it exit by itself for `natural` seconds
    (a FUSE daemon after its unmount), then SIGTERM, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.wait(natural)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def quiet(cmd, timeout=30):
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return None


def unmount(mnt):
    """fusermount3 -u, then umount -l as the fallback."""
    if not is_mounted(mnt):
        return
    if quiet(["fusermount3", "-u", mnt]) != 0 and is_mounted(mnt):
        quiet(["umount", "-l", mnt])


def log_tail(path, n=600):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace").strip().replace("\n", " | ")
    except OSError:
        return ""


class Watchdog:
    """Bounds a phase that blocks on the mount: when time is up, the daemon is killed (its
    pending FUSE requests then fail with ENOTCONN, freeing the reader) and the phase fails."""

    def __init__(self, mount, seconds, what):
        self.mount, self.seconds, self.what, self.fired = mount, seconds, what, False
        self.timer = threading.Timer(seconds, self.fire)
        self.timer.daemon = True

    def fire(self):
        self.fired = True
        self.mount.abort()

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, kind, value, tb):
        self.timer.cancel()
        if self.fired:
            raise RuntimeError(f"{self.what} took over {self.seconds} s (daemon killed)")
        return False


class Torrent:
    def __init__(self, root, label, name, sizes, piece):
        self.label, self.name, self.sizes, self.piece = label, name, sizes, piece
        self.total = sum(sizes)
        src = os.path.join(root, "src")
        os.makedirs(src)
        self.src = src
        if len(sizes) == 1:
            target = os.path.join(src, name)
            write_random(target, sizes[0])
            self.rel = [name]
        else:
            target = os.path.join(src, name)
            os.makedirs(target)
            self.rel = []
            for i, size in enumerate(sizes):
                write_random(os.path.join(target, f"file{i:02d}.bin"), size)
                self.rel.append(f"{name}/file{i:02d}.bin")
        self.torrent = os.path.join(root, name + ".torrent")
        # mktorrent, not torrentfs create: the btfs and memfs parts must not depend on our binary.
        subprocess.run(["mktorrent", "-d", "-l", str(piece.bit_length() - 1), "-o", self.torrent, target],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import libtorrent as lt
        self.infohash = str(lt.torrent_info(self.torrent).info_hashes().v1)

    def magnet(self, seeder_port):
        return (f"magnet:?xt=urn:btih:{self.infohash}&dn={urllib.parse.quote(self.name)}"
                f"&x.pe=127.0.0.1:{seeder_port}")

    def source(self, i):
        return os.path.join(self.src, self.rel[i])

    def warm_source(self):
        """Keeps the seeder's files in the page cache (drop_caches evicts them), so every cold
        run meets the same seeder."""
        buf = bytearray(CHUNK)
        read_whole([self.source(i) for i in range(len(self.rel))], buf)

    def locate(self, global_offset):
        for i, size in enumerate(self.sizes):
            if global_offset < size:
                return i, global_offset
            global_offset -= size
        raise ValueError("offset past the end")


class Mount:
    """A fresh mount of one torrent (given as a magnet) with an empty data directory."""
    client = "?"

    def __init__(self, work, torrent, seeder_port, index):
        self.torrent, self.seeder_port = torrent, seeder_port
        self.mnt = os.path.join(work, f"mnt-{self.client}-{index}")
        self.data = os.path.join(work, f"data-{self.client}-{index}")
        self.log = os.path.join(work, f"log-{self.client}-{index}.txt")
        os.makedirs(self.mnt)
        os.makedirs(self.data)
        self.proc = None
        self.paths = None
        self.peak = None
        self.anon = None
        self.t_start = None

    def command(self):
        raise NotImplementedError

    def start(self):
        self.t_start = time.monotonic()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def alive_or_fail(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.client} exited with {self.proc.returncode}: {log_tail(self.log)}")

    def wait_live(self, timeout=30):
        deadline = time.monotonic() + timeout
        while not is_mounted(self.mnt):
            self.alive_or_fail()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.client}: not mounted after {timeout} s: {log_tail(self.log)}")
            time.sleep(0.002)

    def find_files(self):
        """The torrent's files in the mount, in torrent order, or None while not listed yet.
        Accepts the tree at the mount root (btfs) or inside a per-torrent folder (torrentfs),
        with or without the multi-file torrent's top directory."""
        entries = [e for e in os.listdir(self.mnt) if not e.startswith(".")]
        if not entries:
            return None
        bases = [self.mnt] + [os.path.join(self.mnt, e) for e in entries if os.path.isdir(os.path.join(self.mnt, e))]
        for base in bases:
            for strip in (False, True):
                rels = [r.split("/", 1)[1] if strip and "/" in r else r for r in self.torrent.rel]
                paths = [os.path.join(base, r) for r in rels]
                if all(os.path.isfile(p) for p in paths):
                    sizes = [os.path.getsize(p) for p in paths]
                    if sizes != self.torrent.sizes:
                        raise RuntimeError(f"{self.client}: file sizes {sizes[:3]}… differ from the torrent's")
                    return paths
        return None

    def wait_metadata(self):
        """Seconds from the process start until the torrent's files are listed."""
        deadline = time.monotonic() + METADATA_TIMEOUT
        with Watchdog(self, METADATA_TIMEOUT + 5, f"{self.client}: metadata"):
            while True:
                self.alive_or_fail()
                try:
                    paths = self.find_files()
                except (BlockingIOError, InterruptedError, FileNotFoundError):
                    paths = None
                if paths:
                    self.paths = paths
                    return time.monotonic() - self.t_start
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.client}: no file list after {METADATA_TIMEOUT} s: {log_tail(self.log)}")
                time.sleep(0.002)

    def record_rss(self):
        """Peak RSS (VmHWM) so far, and the anonymous part of the RSS now (RssAnon): VmHWM also
        counts file pages the daemon has mapped (libtorrent 2's storage is mmap based)."""
        if self.proc is not None and self.proc.poll() is None:
            self.peak = proc_status(self.proc.pid, "VmHWM")
            self.anon = proc_status(self.proc.pid, "RssAnon")
        return self.peak, self.anon

    def abort(self):
        """The watchdog's way out of a hung daemon: kill it by PID, abort its FUSE connection,
        detach the mount."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        abort_fuse(self.mnt)
        if is_mounted(self.mnt):
            quiet(["umount", "-l", self.mnt])

    def stop(self):
        try:
            self.record_rss()
            unmount(self.mnt)
        finally:
            stop_process(self.proc, natural=10, grace=5)
            if is_mounted(self.mnt):
                abort_fuse(self.mnt)
                quiet(["umount", "-l", self.mnt])


class BtfsMount(Mount):
    client = "btfs"

    def command(self):
        # btfs has no switch for DHT/LSD/UPnP/NAT-PMP (libtorrent's defaults, DHT routers
        # hard-coded): the private network namespace is what keeps it local. Its listen port
        # range must be a single port: with its default range (6881-6889, i.e. several listen
        # sockets) btfs 2.24 never got the metadata from the x.pe peer here.
        port = free_port()
        return ["btfs", "-f", f"--data-directory={self.data}", f"--min-port={port}", f"--max-port={port}",
                self.torrent.magnet(self.seeder_port), self.mnt]


class TorrentfsMount(Mount):
    client = "torrentfs"

    def command(self):
        return [BIN, "mount", self.mnt, "-o", f"data={self.data},port=0", "-f"]

    def start(self):
        super().start()
        self.wait_live()
        with Watchdog(self, 60, "torrentfs: writing the magnet to .add"):
            with open(os.path.join(self.mnt, ".add"), "w") as f:
                f.write(self.torrent.magnet(self.seeder_port) + "\n")


CLIENTS = {"btfs": BtfsMount, "torrentfs": TorrentfsMount}


def session_sequential(cls, work, t, port, index):
    """Fresh mount: metadata, first byte at 0, cold sequential, warm re-reads."""
    t.warm_source()
    m = cls(work, t, port, index)
    try:
        m.start()
        r = {"metadata": m.wait_metadata()}
        r["read_ahead_kb"] = read_ahead_kb(m.mnt)
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        with Watchdog(m, READ_TIMEOUT, f"{m.client}: cold sequential read"):
            start = time.monotonic()
            total = 0
            for i, p in enumerate(m.paths):
                with open(p, "rb", buffering=0) as f:
                    if i == 0:
                        first = os.pread(f.fileno(), PROBE, 0)
                        r["first_byte"] = time.monotonic() - start
                    while n := f.readinto(view):
                        total += n
            elapsed = time.monotonic() - start
        with open(t.source(0), "rb") as s:
            if first != s.read(PROBE):
                raise RuntimeError(f"{m.client}: wrong data at offset 0")
        if total != t.total:
            raise RuntimeError(f"{m.client}: read {total} bytes, expected {t.total}")
        r["cold"] = t.total / elapsed
        # The data is now fully verified (both clients only return verified pieces).
        with Watchdog(m, READ_TIMEOUT, f"{m.client}: warm re-read"):
            for p in m.paths:
                drop_file_cache(p)
            start = time.monotonic()
            total = read_whole(m.paths, buf)
            r["warm_fadvise"] = total / (time.monotonic() - start)
            drop_caches()
            start = time.monotonic()
            total = read_whole(m.paths, buf)
            r["warm"] = total / (time.monotonic() - start)
        if MEMFS is not None:
            ceiling = MEMFS.sample()
            r["warm_of_ceiling"] = r["warm"] / ceiling
            r["warm_fadvise_of_ceiling"] = r["warm_fadvise"] / ceiling
        r["rss"], r["rss_anon"] = m.record_rss()
        return r
    finally:
        m.stop()


def session_random(cls, work, t, port, index, rng):
    """Fresh mount: first byte of 4 KiB reads at random offsets."""
    t.warm_source()
    m = cls(work, t, port, index)
    try:
        m.start()
        r = {"metadata": m.wait_metadata()}
        latencies = []
        with Watchdog(m, READ_TIMEOUT, f"{m.client}: random reads"):
            for _ in range(RANDOM_READS):
                i, off = t.locate(rng.randrange(0, t.total - PROBE))
                off = min(off, t.sizes[i] - PROBE)
                start = time.monotonic()
                fd = os.open(m.paths[i], os.O_RDONLY)
                try:
                    got = os.pread(fd, PROBE, off)
                finally:
                    os.close(fd)
                latencies.append(time.monotonic() - start)
                with open(t.source(i), "rb") as s:
                    s.seek(off)
                    if got != s.read(PROBE):
                        raise RuntimeError(f"{m.client}: wrong data at {t.rel[i]}+{off}")
        r["random_first_byte"] = statistics.median(latencies)
        r["rss"], r["rss_anon"] = m.record_rss()
        return r
    finally:
        m.stop()


def session_concurrent(cls, work, t, port, index):
    """Fresh mount: four readers at once (4 files, or 4 quarters of the single file)."""
    t.warm_source()
    m = cls(work, t, port, index)
    try:
        m.start()
        r = {"metadata": m.wait_metadata()}
        if len(t.sizes) >= 4:
            step = len(t.sizes) // 4
            jobs = [(m.paths[k * step], 0, t.sizes[k * step]) for k in range(4)]
        else:
            q = t.sizes[0] // 4
            jobs = [(m.paths[0], k * q, q if k < 3 else t.sizes[0] - 3 * q) for k in range(4)]
        done = [0] * 4
        errors = []
        barrier = threading.Barrier(5)

        def reader(k, path, offset, length):
            buf = bytearray(CHUNK)
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as e:
                errors.append(e)
                barrier.wait()
                return
            try:
                barrier.wait()
                end = offset + length
                while offset < end:
                    n = os.preadv(fd, [memoryview(buf)[:min(CHUNK, end - offset)]], offset)
                    if n <= 0:
                        break
                    offset += n
                    done[k] += n
            except OSError as e:
                errors.append(e)
            finally:
                os.close(fd)

        threads = [threading.Thread(target=reader, args=(k,) + job, daemon=True) for k, job in enumerate(jobs)]
        with Watchdog(m, READ_TIMEOUT, f"{m.client}: concurrent readers"):
            for th in threads:
                th.start()
            barrier.wait()
            start = time.monotonic()
            for th in threads:
                th.join()
            elapsed = time.monotonic() - start
        if errors:
            raise RuntimeError(f"{m.client}: concurrent reader failed: {errors[0]}")
        want = sum(j[2] for j in jobs)
        if sum(done) != want:
            raise RuntimeError(f"{m.client}: concurrent readers got {sum(done)} bytes, expected {want}")
        r["concurrent_time"] = elapsed
        r["concurrent"] = want / elapsed
        r["rss"], r["rss_anon"] = m.record_rss()
        return r
    finally:
        m.stop()


def torrentfs_usable():
    if not os.path.exists(BIN):
        return f"{BIN} does not exist (make release)"
    try:
        r = subprocess.run([BIN, "mount", "--help"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`{BIN} mount --help` failed: {e}"
    usage = [line for line in (r.stdout + r.stderr).splitlines() if line.strip().upper().startswith("USAGE")]
    if r.returncode != 0 or not any("mount" in line for line in usage):
        return f"`{BIN} mount --help` shows no mount command yet: {' '.join(usage)[:120] or r.returncode}"
    return None


def fmt_time(s):
    return "—" if s is None else (f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s")


def fmt_rate(b):
    return "—" if b is None else f"{b / 1e6:.0f} MB/s"


def fmt_mib(b):
    return "—" if b is None else f"{b / MIB:.1f} MiB"


def pct(fraction):
    x = fraction * 100
    return f"{x:.1f} %" if x < 10 else f"{x:.0f} %"


class Memfs:
    """bench/memfs.c, compiled here and mounted for the whole run: sequential 1 MiB reads of
    its in-memory file are the ceiling any FUSE filesystem on this machine can reach with
    max_read 1 MiB and 1 MiB kernel readahead. Sampled once more next to every warm re-read,
    so each re-read is compared with a ceiling taken under the same machine load."""

    def __init__(self, work):
        self.mnt = os.path.join(work, "mnt-memfs")
        self.proc = None
        exe = os.path.join(work, "memfs")
        cflags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], check=True, capture_output=True,
                                text=True).stdout.split()
        subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "memfs.c")] + cflags, check=True)
        os.makedirs(self.mnt)
        log = os.path.join(work, "log-memfs.txt")
        with open(log, "wb") as lf:
            self.proc = subprocess.Popen([exe, str(MEMFS_SIZE), self.mnt], stdout=lf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not is_mounted(self.mnt):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"memfs exited with {self.proc.returncode}: {log_tail(log)}")
                if time.monotonic() > deadline:
                    raise RuntimeError("memfs did not mount")
                time.sleep(0.01)
            with open(bdi_read_ahead(self.mnt), "w") as f:
                f.write("1024\n")
            self.read_ahead_kb = read_ahead_kb(self.mnt)
            self.path = os.path.join(self.mnt, "data")
            self.buf = bytearray(CHUNK)
            read_whole([self.path], self.buf)  # warm-up (the first pass after a mount runs slower here)
        except BaseException:
            self.stop()
            raise

    def sample(self):
        """One sequential read of the whole file after drop_caches, in bytes/s."""
        drop_caches()
        start = time.monotonic()
        n = read_whole([self.path], self.buf)
        return n / (time.monotonic() - start)

    def stop(self):
        unmount(self.mnt)
        stop_process(self.proc, natural=5)
        if is_mounted(self.mnt):
            abort_fuse(self.mnt)
            quiet(["umount", "-l", self.mnt])


def median_of(results, key):
    values = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(values) if values else None


ROWS = [
    # key, label, formatter, target for the torrentfs/btfs ratio (from the issue)
    ("metadata", "time to metadata (start → files listed)", fmt_time, None),
    ("first_byte", "first byte at offset 0 (4 KiB read)", fmt_time, "≤ 0.30"),
    ("random_first_byte", f"first byte at random offsets (median of {RANDOM_READS})", fmt_time, "≤ 0.30"),
    ("cold", "cold sequential read, 1 MiB reads", fmt_rate, "≥ 5"),
    ("concurrent", "4 concurrent readers", fmt_rate, None),
    ("concurrent_time", "4 concurrent readers, wall time", fmt_time, None),
    ("warm", "warm re-read, after drop_caches", fmt_rate, "≥ 20"),
    ("warm_fadvise", "warm re-read, mount's cache dropped only", fmt_rate, None),
    ("rss", "peak RSS (VmHWM, max over mounts)", fmt_mib, "< 1"),
    ("rss_anon", "RssAnon before unmount (max over mounts)", fmt_mib, None),
]


def bench_case(work_root, label, name, sizes, piece, available):
    work = tempfile.mkdtemp(prefix="case-", dir=work_root)
    seeder = None
    try:
        t = Torrent(work, label, name, sizes, piece)
        port = free_port()
        seeder = subprocess.Popen([PY, "-c", SEEDER, t.torrent, t.src, str(port)], stdout=subprocess.PIPE)
        if seeder.stdout.readline().strip() != b"ready":
            raise RuntimeError("the libtorrent seeder did not come up")
        print(f"\n{label}: {t.total / 1e6:.0f} MB in {len(sizes)} file(s), {piece // 1024} KiB pieces, "
              f"median of {RUNS} run(s)", flush=True)
        results = {c: [] for c in available}
        failed = {}
        index = 0
        disk = []
        for run in range(RUNS):
            # Reference for the drop_caches re-reads: the same amount of data read from this disk
            # with no FUSE in between (the source files, after drop_caches).
            drop_caches()
            start = time.monotonic()
            disk.append(read_whole([t.source(i) for i in range(len(t.rel))], bytearray(CHUNK))
                        / (time.monotonic() - start))
            for client in available:
                if client in failed:
                    continue
                cls = CLIENTS[client]
                try:
                    r = {}
                    metas, rss = [], []
                    for session in ("sequential", "random", "concurrent"):
                        index += 1
                        if session == "sequential":
                            s = session_sequential(cls, work, t, port, index)
                        elif session == "random":
                            s = session_random(cls, work, t, port, index, random.Random(RNG_SEED + run))
                        else:
                            s = session_concurrent(cls, work, t, port, index)
                        metas.append(s.pop("metadata"))
                        rss.append((s.pop("rss"), s.pop("rss_anon")))
                        r.update(s)
                    r["metadata"] = statistics.median(metas)
                    r["rss"] = max((x[0] for x in rss if x[0] is not None), default=None)
                    r["rss_anon"] = max((x[1] for x in rss if x[1] is not None), default=None)
                except Exception as error:  # one client failing must not hide the other's figures
                    failed[client] = str(error) if isinstance(error, RuntimeError) else f"{type(error).__name__}: {error}"
                    print(f"  {client:9s} run {run + 1}: failed: {failed[client]}", flush=True)
                    continue
                results[client].append(r)
                print(f"  {client:9s} run {run + 1}: metadata {fmt_time(r['metadata'])}, first byte "
                      f"{fmt_time(r['first_byte'])} (random {fmt_time(r['random_first_byte'])}), "
                      f"cold {fmt_rate(r['cold'])}, 4 readers {fmt_time(r['concurrent_time'])} "
                      f"({fmt_rate(r['concurrent'])}), warm {fmt_rate(r['warm'])} "
                      f"(cache-only drop {fmt_rate(r['warm_fadvise'])}"
                      + (f"; {pct(r['warm_of_ceiling'])} and {pct(r['warm_fadvise_of_ceiling'])} of the FUSE ceiling"
                         if r.get("warm_of_ceiling") else "")
                      + f"), peak RSS {fmt_mib(r['rss'])} "
                      f"(RssAnon {fmt_mib(r['rss_anon'])}), "
                      f"read_ahead_kb {r['read_ahead_kb']}", flush=True)
        summary = {}
        for client in available:
            rs = results[client]
            if not rs:
                continue
            summary[client] = {key: median_of(rs, key) for key in [row[0] for row in ROWS]
                               + ["warm_of_ceiling", "warm_fadvise_of_ceiling"]}
            for key in ("rss", "rss_anon"):
                summary[client][key] = max((r[key] for r in rs if r[key] is not None), default=None)
            summary[client]["read_ahead_kb"] = rs[-1]["read_ahead_kb"]
        b, o = summary.get("btfs"), summary.get("torrentfs")
        print(f"  {'median':45s} {'btfs':>11s} {'torrentfs':>11s}  {'torrentfs/btfs':>14s}  target", flush=True)
        for key, text, fmt, target in ROWS:
            bv = b.get(key) if b else None
            ov = o.get(key) if o else None
            ratio = f"{ov / bv:.2f}x" if bv and ov else "—"
            if key == "cold" and len(sizes) > 1:
                text = "cold sequential read (all files), 1 MiB reads"
            print(f"  {text:45s} {fmt(bv):>11s} {fmt(ov):>11s}  {ratio:>14s}  {target or ''}", flush=True)
        print(f"  disk reference: the source files read after drop_caches, no FUSE: "
              f"{fmt_rate(statistics.median(disk))} (the drop_caches re-reads also read the clients' "
              f"backing files from this disk)", flush=True)
        for client, s in summary.items():
            if s.get("warm_of_ceiling"):
                print(f"  {client} warm re-read = {pct(s['warm_of_ceiling'])} (drop_caches), "
                      f"{pct(s['warm_fadvise_of_ceiling'])} (mount's cache only) of the FUSE ceiling (memfs read "
                      f"right after it; median of the runs' ratios){'  target ≥ 75 %' if client == 'torrentfs' else ''}",
                      flush=True)
        if b and b.get("metadata"):
            print("  btfs's time to metadata includes its libtorrent trying uTP to the x.pe peer first; the "
                  "seeder is TCP-only, so btfs waits for the uTP connect to time out (btfs has no switch "
                  "to prefer TCP)", flush=True)
        print("  read_ahead_kb of the mounts (left as each client sets it): "
              + ", ".join(f"{c} {s['read_ahead_kb'] if s['read_ahead_kb'] is not None else '?'}"
                          for c, s in summary.items()), flush=True)
        for client, error in failed.items():
            print(f"  {client}: FAILED — {error}", flush=True)
        return failed
    finally:
        stop_process(seeder)
        if seeder is not None and seeder.stdout:
            seeder.stdout.close()
        shutil.rmtree(work, ignore_errors=True)


def interrupted(signum, frame):
    raise KeyboardInterrupt


def main():
    if os.geteuid() != 0:
        sys.exit("bench: mount_bench.py needs root (network namespace, FUSE, drop_caches)")
    isolate()
    # SIGTERM (e.g. from timeout(1)) unwinds like Ctrl-C, so the finally blocks unmount and clean up.
    signal.signal(signal.SIGTERM, interrupted)
    available = []
    if shutil.which("btfs"):
        available.append("btfs")
    else:
        print("bench: btfs is not installed (apt-get install btfs): its column stays empty", flush=True)
    problem = torrentfs_usable()
    if problem:
        print(f"bench: torrentfs part skipped: {problem}", flush=True)
    else:
        available.append("torrentfs")
    btfs_version = subprocess.run(["btfs", "--version"], capture_output=True, text=True).stdout.split("\n") \
        if "btfs" in available else []
    print("mount bench: " + ("; ".join(l.strip() for l in btfs_version if l.startswith(("btfs", "libtorrent"))) or "")
          + f"; torrentfs {BIN}; runs {RUNS}; private network namespace, libtorrent seeder on 127.0.0.1 over TCP",
          flush=True)
    print("ratios are torrentfs/btfs on every row: above 1 is better for throughput, below 1 better for times "
          "and RSS; 'warm' re-reads drop the page cache first, so they measure the filesystem, not the page cache",
          flush=True)
    global MEMFS
    work_root = tempfile.mkdtemp(prefix="tfs-mount-bench-")
    try:
        try:
            MEMFS = Memfs(work_root)
            rates = [MEMFS.sample() for _ in range(MEMFS_READS)]
            print(f"\nFUSE ceiling (bench/memfs.c, {MEMFS_SIZE // MIB} MiB in-memory file, max_read 1 MiB, "
                  f"read_ahead_kb {MEMFS.read_ahead_kb}, keep_cache, 1 MiB reads after drop_caches): "
                  f"{fmt_rate(statistics.median(rates))} (median of {len(rates)}: "
                  f"{', '.join(f'{x / 1e6:.0f}' for x in rates)}; sampled again next to each warm re-read)",
                  flush=True)
        except Exception as error:
            print(f"\nFUSE ceiling: memfs failed: {type(error).__name__}: {error}", flush=True)
            if MEMFS is not None:
                MEMFS.stop()
            MEMFS = None
        failures = {}
        cases = [
            ("single file", "bench-single.bin", [256 * MIB], 1 * MIB),
            ("20 files", "bench-20files", [7_500_000 + i * 1234 for i in range(20)], 256 * 1024),
        ]
        for label, name, sizes, piece in cases:
            if not available:
                break
            try:
                failures.update(bench_case(work_root, label, name, sizes, piece, available))
            except Exception as error:
                print(f"  {label}: failed: {type(error).__name__}: {error}", flush=True)
        if problem:
            print(f"\ntorrentfs: not measured — {problem}", flush=True)
        elif "torrentfs" in failures:
            print(f"\ntorrentfs: measurement failed — {failures['torrentfs']}", flush=True)
    finally:
        if MEMFS is not None:
            MEMFS.stop()
        shutil.rmtree(work_root, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("bench: interrupted (mounts, processes and temporary files cleaned up)")
