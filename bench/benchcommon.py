"""Shared by the benchmark scripts: a private network namespace, free ports, random data,
starting, timing and stopping the processes a bench runs, and the libtorrent peer
(bench/lt_bench_peer.py) in its roles."""
import ctypes, os, select, socket, subprocess, sys, tempfile, time

CLONE_NEWNET = 0x40000000
HERE = os.path.dirname(os.path.abspath(__file__))
# Debian's python, which has python3-libtorrent (2.0.8).
LT_PYTHON = "/usr/bin/python3"
LT_PEER = os.path.join(HERE, "lt_bench_peer.py")


def isolate():
    """Moves this process into a new network namespace with only loopback, up."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        sys.exit("bench: unshare(CLONE_NEWNET) failed (run as root): errno %d" % ctypes.get_errno())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def torrentfs_binary():
    """The binary given as the first argument, else the release build."""
    return os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", ".build/release/torrentfs"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 22))
            f.write(chunk)
            left -= len(chunk)


def make_payload(binary, root, name, size):
    """SIZE random bytes in ROOT/src/NAME and a torrent of them (`torrentfs create`):
    returns (the data directory, the torrent path, the info hash in hex)."""
    src = os.path.join(root, "src")
    os.makedirs(src, exist_ok=True)
    write_random(os.path.join(src, name), size)
    torrent = os.path.join(root, name + ".torrent")
    out = subprocess.run([binary, "create", os.path.join(src, name), "-o", torrent, "--no-date"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return src, torrent, out.split("urn:btih:", 1)[1][:40]


def wait_port(port, timeout=30):
    """Until something accepts TCP connections on 127.0.0.1:PORT (at most TIMEOUT s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def refuse_tcp(port):
    """TCP to 127.0.0.1:PORT answered with a reset (an nftables table in the bench's own
    namespace, see isolate()): a torrentfs peer on PORT is then reachable over uTP only."""
    rules = (f"table inet bench_refuse_{port} {{\n chain input {{\n  type filter hook input priority 0;\n"
             f"  tcp dport {port} reject with tcp reset\n }}\n}}\n")
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, timeout=10)


def start(cmd, ready=None, timeout=30, stderr=subprocess.DEVNULL, pipe=False):
    """Starts CMD. With READY, its stdout is piped and this waits (at most TIMEOUT s) for a
    line containing READY and returns (process, that line); else it returns the process,
    its stdout piped only with PIPE (a pipe nobody reads can block a process). Read the
    pipe with read_line()."""
    piped = pipe or ready is not None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if piped else subprocess.DEVNULL, stderr=stderr, bufsize=0)
    proc.pending = b""
    if ready is None:
        return proc
    line = read_line(proc, ready, timeout)
    if line is None:
        stop(proc)
        raise RuntimeError(f"bench: {os.path.basename(cmd[0])} did not print {ready!r} within {timeout} s")
    return proc, line


def read_line(proc, wanted, timeout):
    """The next line of PROC's stdout (started by start()) containing WANTED, or None after
    TIMEOUT s or at its end. Unbuffered reads and our own line buffer: a buffered reader
    could hold a line that select() then never reports."""
    deadline = time.monotonic() + timeout
    while True:
        while b"\n" in proc.pending:
            line, proc.pending = proc.pending.split(b"\n", 1)
            text = line.decode(errors="replace") + "\n"
            if wanted in text:
                return text
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            return None
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            return None
        proc.pending += chunk


def stop(proc):
    """Terminates a process this bench started (kill after 10 s)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def timed(cmd, timeout):
    """Runs CMD to its end, bounded: (wall seconds, exited 0); a run killed at TIMEOUT
    counts as (TIMEOUT, False)."""
    begin = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return timeout, False
    return time.monotonic() - begin, proc.returncode == 0


def lt_peer(role, save, torrent=None, magnet=None, port=0, peers=(), transport="tcp",
            encryption="default", buffer=0, events=False, count=None):
    """The command of a libtorrent peer (bench/lt_bench_peer.py, which documents the roles)."""
    cmd = [LT_PYTHON, LT_PEER, role, "--save", save, "--port", str(port), "--transport", transport,
           "--encryption", encryption, "--buffer", str(buffer)]
    cmd += ["--torrent", torrent] if torrent else ["--magnet", magnet]
    for peer in peers:
        cmd += ["--peer", peer]
    if events:
        cmd.append("--events")
    if count is not None:
        cmd += ["--count", str(count)]
    return cmd


def lt_seed(src, torrent, port, **options):
    """A libtorrent seeder of TORRENT from SRC on PORT, listening when this returns."""
    proc, _ = start(lt_peer("seed", src, torrent=torrent, port=port, **options), ready="ready")
    return proc


def lt_leech(work, torrent, peers, timeout, **options):
    """A libtorrent leecher of TORRENT from PEERS into a fresh directory, bounded by
    TIMEOUT: (wall seconds from its start to its exit, finished, seconds from its start to
    its first peer past the BitTorrent handshake or None)."""
    out = tempfile.mkdtemp(dir=work)
    begin = time.monotonic()
    proc = start(lt_peer("leech", out, torrent=torrent, port=free_port(), peers=peers, **options), pipe=True)
    try:
        line = read_line(proc, "connected", timeout)
        connected = float(line.split()[1]) - begin if line else None
        finished = read_line(proc, "finished", max(0.0, begin + timeout - time.monotonic())) is not None
        try:
            proc.wait(timeout=max(0.1, begin + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            finished = False
        return (time.monotonic() - begin if finished else timeout), finished, connected
    finally:
        stop(proc)
        subprocess.run(["rm", "-rf", out])
