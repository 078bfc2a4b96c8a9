"""Helpers for the swarm tests (test_engine_swarm.py): processes we start and
stop by PID, content trees and their digests, opentracker, libtorrent peers
(lt_peer.py), veth hosts in named network namespaces.

Everything here runs inside the loopback-only network namespace conftest.py
enters at session start (see ``isolate_network``)."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
LT_PEER_SCRIPT = HERE / "lt_peer.py"
# Debian's python has python3-libtorrent; the one on PATH may not.
LT_PYTHON = "/usr/bin/python3"

CLONE_NEWNET = 0x40000000
# How long a stopped process gets between SIGTERM and SIGKILL.
TERM_GRACE = 5.0
# Bound on tool start-up (listening socket, first line of output).
STARTUP_TIMEOUT = 20.0


# ---------------------------------------------------------------------------
# Network isolation
# ---------------------------------------------------------------------------

class IsolationError(RuntimeError):
    pass


def isolate_network() -> None:
    """Move this process into a new network namespace that has only `lo`
    (brought up), so that nothing any test starts can reach another machine.
    Children inherit it. Raises IsolationError if that is not possible."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise IsolationError(
            f"unshare(CLONE_NEWNET) failed: {os.strerror(err)} (errno {err}); "
            "the interop tests must run as root (or with CAP_SYS_ADMIN) so that "
            "they can run in a loopback-only network namespace")
    proc = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True,
                          text=True, timeout=30)
    if proc.returncode != 0:
        raise IsolationError(f"`ip link set lo up` failed: {proc.stderr.strip()}")
    names = sorted(name for _, name in socket.if_nameindex())
    if names != ["lo"]:
        raise IsolationError(f"network namespace is not isolated: interfaces {names}")


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

class Proc:
    """A process we started, with stdout/stderr in files under ``log_dir``
    (no pipes that could fill up and block it)."""

    def __init__(self, name: str, cmd: Sequence, log_dir: Path,
                 cwd: Optional[Path] = None, env: Optional[dict] = None):
        self.name = name
        self.cmd = [str(c) for c in cmd]
        log_dir.mkdir(parents=True, exist_ok=True)
        self.out_path = log_dir / f"{name}.out"
        self.err_path = log_dir / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.popen = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                cwd=cwd, env=env, start_new_session=True)
        self.pid = self.popen.pid
        self.started = time.monotonic()

    # -- state ------------------------------------------------------------
    def poll(self) -> Optional[int]:
        return self.popen.poll()

    @property
    def returncode(self) -> Optional[int]:
        return self.popen.returncode

    def wait(self, timeout: float) -> Optional[int]:
        """Wait up to ``timeout`` seconds; return the exit code or None."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> Optional[int]:
        """SIGTERM this process (by PID, never by name), SIGKILL it if it has
        not exited after TERM_GRACE seconds. Returns the exit code."""
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=TERM_GRACE)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        return self.popen.returncode

    # -- output -----------------------------------------------------------
    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, n: int = 40) -> str:
        def last(text: str) -> str:
            # Progress bars rewrite one line with \r: keep the last state.
            lines = [ln.rsplit("\r", 1)[-1] for ln in text.splitlines()]
            return "\n".join(lines[-n:])
        return (f"--- {self.name} (pid {self.pid}, exit {self.popen.returncode}): "
                f"{' '.join(self.cmd)}\n"
                f"--- stdout (last {n} lines):\n{last(self.stdout())}\n"
                f"--- stderr (last {n} lines):\n{last(self.stderr())}\n")

    def wait_for_output(self, predicate: Callable[[str], bool], timeout: float,
                        what: str, stream: str = "stdout") -> str:
        """Poll the process's output until ``predicate(text)`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stdout() if stream == "stdout" else self.stderr()
            if predicate(text):
                return text
            if self.poll() is not None:
                raise AssertionError(f"{self.name} exited before {what}\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for "
                                     f"{what}\n{self.tail()}")
            time.sleep(0.05)


def json_lines(text: str) -> List[dict]:
    """The JSON objects of a process's output, one a line (a line still being written, or
    anything else that is not JSON, is skipped)."""
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


class ProcGroup:
    """Every process a test started; ``stop_all`` stops them in reverse order
    of starting. Used through the ``procs`` fixture."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: List[Proc] = []
        self.cleanups: List[Callable[[], None]] = []
        self._names: Dict[str, int] = {}

    def start(self, name: str, cmd: Sequence, **kw) -> Proc:
        n = self._names.get(name, 0)
        self._names[name] = n + 1
        proc = Proc(name if n == 0 else f"{name}-{n}", cmd, self.log_dir, **kw)
        self.procs.append(proc)
        return proc

    def add_cleanup(self, fn: Callable[[], None]) -> None:
        self.cleanups.append(fn)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        for fn in reversed(self.cleanups):
            fn()
        self.cleanups.clear()

    def report(self) -> str:
        return "\n".join(p.tail(60) for p in self.procs)


# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------

def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on ``host`` right now (we are alone in
    our network namespace, so nobody else takes it before we use it)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def wait_tcp(host: str, port: int, timeout: float = STARTUP_TIMEOUT,
             proc: Optional[Proc] = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.name} exited before listening on "
                                 f"{host}:{port}\n{proc.tail()}")
        if time.monotonic() > deadline:
            extra = proc.tail() if proc is not None else ""
            raise AssertionError(f"nothing listening on {host}:{port} after {timeout}s\n{extra}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# Content
# ---------------------------------------------------------------------------

def make_tree(root: Path, files: Dict[str, int], seed: int) -> Path:
    """Write pseudo-random files (relative path -> size) under ``root``."""
    rng = random.Random(seed)
    for rel, size in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(size))
    return root


def tree_digest(root: Path) -> Dict[str, tuple]:
    """relative path -> (size, sha256) of every regular file under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            out[p.relative_to(root).as_posix()] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def assert_same_tree(source: Path, copy: Path, who: str = "") -> None:
    """Every file of ``source`` is in ``copy`` with the same bytes (sha256),
    and ``copy`` has no other files."""
    assert copy.exists(), f"{who}: {copy} does not exist"
    want, got = tree_digest(source), tree_digest(copy)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    assert not (missing or extra or wrong), (
        f"{who}: downloaded tree differs from the source\n"
        f"missing: {missing}\nextra: {extra}\n"
        f"different: {[(k, want[k][0], got[k][0]) for k in wrong]}")


# ---------------------------------------------------------------------------
# torrentfs
# ---------------------------------------------------------------------------

def torrentfs_create(bin_path: Path, content: Path, out: Path,
                     trackers: Sequence[str] = (), piece_length: Optional[str] = None) -> dict:
    cmd = [str(bin_path), "create", str(content), "-o", str(out), "--json"]
    for t in trackers:
        cmd += ["--tracker", t]
    if piece_length:
        cmd += ["--piece-length", piece_length]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    info = json.loads(proc.stdout)
    return info


def write_transmission_settings(config_dir: Path, **overrides) -> None:
    """transmission-cli's settings.json for tests: no DHT, LSD, PEX, port forwarding, uTP,
    partial-file renaming or limits, verbose messages; ``overrides`` by setting name
    (``pex_enabled=True`` sets "pex-enabled")."""
    settings = {
        "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
        "port-forwarding-enabled": False, "incomplete-dir-enabled": False, "rename-partial-files": False,
        "blocklist-enabled": False, "speed-limit-up-enabled": False, "speed-limit-down-enabled": False,
        "ratio-limit-enabled": False, "message-level": 3,
    }
    settings.update({name.replace("_", "-"): value for name, value in overrides.items()})
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "settings.json").write_text(json.dumps(settings))


def torrentfs_info(bin_path: Path, target) -> dict:
    cmd = [str(bin_path), "info", str(target), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------------
# opentracker
# ---------------------------------------------------------------------------

class Tracker:
    def __init__(self, proc: Proc, host: str, port: int):
        self.proc = proc
        self.host = host
        self.port = port

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}/announce"

    @property
    def udp_url(self) -> str:
        return f"udp://{self.host}:{self.port}"

    def scrape(self, info_hash_hex: str) -> Dict[str, int]:
        """complete/incomplete/downloaded counts for one torrent ({} if the
        tracker has no peer for it)."""
        q = urllib.parse.urlencode({"info_hash": bytes.fromhex(info_hash_hex)})
        with urllib.request.urlopen(f"http://{self.host}:{self.port}/scrape?{q}",
                                    timeout=2) as r:
            body = r.read()
        return {k.decode(): int(v) for k, v in
                re.findall(rb"(complete|incomplete|downloaded)i(\d+)e", body)}

    def wait_registered(self, info_hash_hex: str, seeds: int = 0, leechers: int = 0,
                        timeout: float = STARTUP_TIMEOUT) -> Dict[str, int]:
        """Wait until the tracker knows at least ``seeds`` seeds and
        ``leechers`` leechers of the torrent (i.e. they have announced)."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.scrape(info_hash_hex)
            if counts.get("complete", 0) >= seeds and counts.get("incomplete", 0) >= leechers:
                return counts
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"tracker {self.host}:{self.port} has {counts} for {info_hash_hex} "
                    f"after {timeout}s, wanted {seeds} seed(s), {leechers} leecher(s)")
            time.sleep(0.1)


def _announce_probe(host: str, port: int, info_hash_hex: str) -> bytes:
    """An HTTP announce with event=stopped (so it leaves no peer behind):
    a success body means the tracker is up and has loaded its whitelist."""
    q = urllib.parse.urlencode({
        "info_hash": bytes.fromhex(info_hash_hex), "peer_id": b"-PROBE0-000000000000",
        "port": 1, "uploaded": 0, "downloaded": 0, "left": 0, "event": "stopped",
        "compact": 1,
    })
    with urllib.request.urlopen(f"http://{host}:{port}/announce?{q}", timeout=2) as r:
        return r.read()


def start_opentracker(procs: ProcGroup, workdir: Path, info_hashes: Sequence[str],
                      host: str = "127.0.0.1", port: Optional[int] = None,
                      timeout: float = STARTUP_TIMEOUT) -> Tracker:
    """Start Debian's opentracker (whitelist build) on host:port, TCP and
    UDP, serving ``info_hashes``; return once it answers announces for them."""
    port = port or free_port(host)
    root = workdir / f"opentracker-{port}"
    root.mkdir(parents=True)
    # It chroots to `root` and drops to `nobody`, who must read the whitelist.
    root.chmod(0o755)
    wl = root / "whitelist.txt"
    wl.write_text("".join(h.lower() + "\n" for h in info_hashes))
    wl.chmod(0o644)
    conf = root / "opentracker.conf"
    conf.write_text(
        f"listen.tcp_udp {host}:{port}\n"
        f"access.whitelist /whitelist.txt\n"   # a path inside the chroot
        f"tracker.rootdir {root}\n"
        f"tracker.user nobody\n")
    proc = procs.start("opentracker", ["opentracker", "-f", conf])
    deadline = time.monotonic() + timeout
    last = b""
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"opentracker exited\n{proc.tail()}")
        try:
            last = _announce_probe(host, port, info_hashes[0])
            if b"failure reason" not in last:
                break
        except OSError as e:
            last = repr(e).encode()
        if time.monotonic() > deadline:
            raise AssertionError(f"opentracker not ready after {timeout}s: {last!r}\n{proc.tail()}")
        time.sleep(0.05)
    return Tracker(proc, host, port)


# ---------------------------------------------------------------------------
# libtorrent peers (lt_peer.py)
# ---------------------------------------------------------------------------

class LtPeer:
    """A libtorrent peer process; its JSON lines are read from its stdout."""

    def __init__(self, procs: ProcGroup, name: str, save: Path, *,
                 torrent: Optional[Path] = None, magnet: Optional[str] = None,
                 listen: str = "127.0.0.1:0", connect: Sequence[str] = (),
                 upload_limit: int = 0, download_limit: int = 0,
                 seed_mode: bool = False, seed_outgoing: bool = True,
                 lsd: bool = False, host: Optional["VethHost"] = None,
                 encryption: str = "enabled", enc_level: str = "both",
                 transport: str = "tcp", socket_buffer: int = 0):
        cmd = [LT_PYTHON, str(LT_PEER_SCRIPT), "--save", str(save), "--listen", listen]
        if torrent is not None:
            cmd += ["--torrent", str(torrent)]
        else:
            cmd += ["--magnet", magnet]
        for c in connect:
            cmd += ["--connect", c]
        if upload_limit:
            cmd += ["--upload-limit", str(upload_limit)]
        if download_limit:
            cmd += ["--download-limit", str(download_limit)]
        if seed_mode:
            cmd.append("--seed-mode")
        if not seed_outgoing:
            cmd.append("--no-seed-outgoing")
        if lsd:
            cmd.append("--lsd")
        cmd += ["--encryption", encryption, "--enc-level", enc_level]
        cmd += ["--transport", transport]
        if socket_buffer:
            cmd += ["--socket-buffer", str(socket_buffer)]
        save.mkdir(parents=True, exist_ok=True)
        # On a veth host, the peer runs in that host's namespace.
        self.proc = procs.start(name, host.wrap(cmd) if host is not None else cmd)
        self.name = self.proc.name
        self.port: Optional[int] = None

    def events(self) -> List[dict]:
        return json_lines(self.proc.stdout())

    def statuses(self) -> List[dict]:
        return [e for e in self.events() if e.get("event") == "status"]

    def last_status(self) -> dict:
        st = self.statuses()
        return st[-1] if st else {}

    def wait_event(self, predicate: Callable[[dict], bool], timeout: float,
                   what: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events():
                if predicate(e):
                    return e
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited before {what}\n{self.proc.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: timed out after {timeout}s waiting "
                                     f"for {what}\n{self.proc.tail()}")
            time.sleep(0.05)

    def wait_listening(self, timeout: float = STARTUP_TIMEOUT) -> int:
        e = self.wait_event(lambda e: e.get("event") == "listening", timeout, "listening")
        self.port = int(e["port"])
        return self.port

    def wait_seeding(self, timeout: float) -> dict:
        return self.wait_event(lambda e: e.get("event") == "status" and e["is_seeding"],
                               timeout, "seeding (all pieces verified)")

    def wait_tracker_reply(self, timeout: float = STARTUP_TIMEOUT) -> dict:
        return self.wait_event(lambda e: e.get("event") == "tracker_reply", timeout,
                               "a tracker reply")

    def peers_ever(self) -> List[dict]:
        """Every peer entry of every status line so far."""
        return [p for st in self.statuses() for p in st["peers"]]

    def outgoing_connects(self) -> List[int]:
        """Ports this peer dialed (libtorrent's peer_connect alerts)."""
        return [e["port"] for e in self.events() if e.get("event") == "peer_connect"
                and "outgoing connection" in e["message"]]

    def peer_ids_seen(self) -> List[str]:
        """Peer id prefixes (e.g. "-TF0100-") of every peer seen after its
        handshake: in status lines, or when it disconnected (a fast transfer
        can start and end between two status lines)."""
        seen = [p["pid_prefix"] for p in self.peers_ever()]
        seen += [e["pid_prefix"] for e in self.events()
                 if e.get("event") == "peer_disconnected"]
        return [p for p in seen if p.strip("\x00")]

    @property
    def endpoint(self) -> str:
        assert self.port is not None
        return f"127.0.0.1:{self.port}"


# ---------------------------------------------------------------------------
# veth hosts
# ---------------------------------------------------------------------------

def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise AssertionError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


class VethHost:
    """A named network namespace (``tfs-<pid>-<tag>``) joined to the test's
    namespace by a veth pair: ``local_addr`` on our side, ``remote_addr`` on
    the other; both exist only inside these two namespaces."""

    def __init__(self, tag: str, subnet: int):
        self.netns = f"tfs-{os.getpid()}-{tag}"
        self.local_if = f"tfs{tag}a"[:15]
        self.remote_if = f"tfs{tag}b"[:15]
        self.local_addr = f"10.77.{subnet}.1"
        self.remote_addr = f"10.77.{subnet}.2"
        _ip("netns", "del", self.netns, check=False)  # a leftover of a killed run
        _ip("netns", "add", self.netns)
        try:
            _ip("link", "add", self.local_if, "type", "veth", "peer", "name",
                self.remote_if, "netns", self.netns)
            _ip("addr", "add", f"{self.local_addr}/24", "dev", self.local_if)
            _ip("link", "set", self.local_if, "up")
            self.exec_ip("addr", "add", f"{self.remote_addr}/24", "dev", self.remote_if)
            self.exec_ip("link", "set", self.remote_if, "up")
            self.exec_ip("link", "set", "lo", "up")
            self._wait_up()
        except BaseException:
            self.close()
            raise

    def exec_ip(self, *args: str) -> None:
        _ip("-n", self.netns, *args)

    def _wait_up(self, timeout: float = 10.0) -> None:
        """Wait until the veth link is up on both sides (carrier) and our
        address is usable (no longer tentative)."""
        deadline = time.monotonic() + timeout
        while True:
            ours = _ip("-o", "link", "show", self.local_if).stdout
            theirs = _ip("-n", self.netns, "-o", "link", "show", self.remote_if).stdout
            if "LOWER_UP" in ours and "LOWER_UP" in theirs:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"veth not up:\n{ours}\n{theirs}")
            time.sleep(0.05)

    def wrap(self, cmd: Sequence) -> List[str]:
        """``cmd`` run inside the veth host's namespace (same PID: exec)."""
        return ["ip", "netns", "exec", self.netns] + [str(c) for c in cmd]

    def close(self) -> None:
        # Deleting the namespace (its last reference) deletes the veth pair.
        _ip("link", "del", self.local_if, check=False)
        _ip("netns", "del", self.netns, check=False)
