"""Shared fixtures for the torrentfs interop tests.

Run with Debian's python, which has the ``libtorrent`` module
(python3-libtorrent):

    /usr/bin/python3 -m pytest -q Tests/interop

The binary under test comes from ``TORRENTFS_BIN`` (a relative value is
resolved against the repository root); by default it is
``<repo>/.build/debug/torrentfs``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import unicodedata
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest

import swarm
from mounts import Mount, force_unmount

# Tests/interop/conftest.py -> Tests/interop -> Tests -> <repo root>
REPO_ROOT = Path(__file__).resolve().parent.parent.parent

# Every subprocess gets a hard bound so that a hung tool fails the test
# instead of hanging the suite.
SUBPROCESS_TIMEOUT = 120
# Bound for libtorrent's recheck of our torrents.
LT_CHECK_TIMEOUT = 30.0


# ---------------------------------------------------------------------------
# Network isolation: the whole session runs in a loopback-only namespace
# ---------------------------------------------------------------------------

def pytest_configure(config):
    """Before any test (and any network use), move the pytest process into a
    fresh network namespace that has only `lo`: every tool the tests start
    (libtorrent, aria2, transmission, opentracker, torrentfs) inherits it, so
    nothing can reach another machine, whatever their defaults (DHT routers,
    UPnP, LSD multicast). Refuses to run on the host network."""
    if getattr(config, "_torrentfs_isolated", False):
        return
    try:
        swarm.isolate_network()
    except swarm.IsolationError as e:
        pytest.exit(f"refusing to run the interop tests on the host network: {e}",
                    returncode=4)
    config._torrentfs_isolated = True


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def procs(request, tmp_path: Path):
    """Processes (and cleanups) of one test: stopped by PID at the end, in
    reverse order (SIGTERM, then SIGKILL after a grace period); on failure
    their output tails are printed."""
    group = swarm.ProcGroup(tmp_path / "logs")
    yield group
    group.stop_all()
    failed = any(getattr(request.node, "rep_" + w, None) is not None
                 and getattr(request.node, "rep_" + w).failed
                 for w in ("setup", "call"))
    if failed and group.procs:
        print("\n===== process logs =====")
        print(group.report())


def _torrentfs_path() -> Path:
    raw = os.environ.get("TORRENTFS_BIN")
    if raw:
        p = Path(raw).expanduser()
        if not p.is_absolute():
            p = REPO_ROOT / p
    else:
        p = REPO_ROOT / ".build" / "debug" / "torrentfs"
    return p.resolve()


@pytest.fixture(scope="session")
def torrentfs_bin() -> Path:
    p = _torrentfs_path()
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(
            f"torrentfs binary not found or not executable at {p} "
            "(build it with `swift build` or set TORRENTFS_BIN)"
        )
    return p


@pytest.fixture(scope="session")
def run_torrentfs(torrentfs_bin: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the torrentfs binary with the given arguments (bounded in time)."""

    def run(*args, cwd: Optional[Path] = None, timeout: float = SUBPROCESS_TIMEOUT,
            check: bool = False) -> subprocess.CompletedProcess:
        cmd = [str(torrentfs_bin)] + [str(a) for a in args]
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True,
            encoding="utf-8", errors="replace", timeout=timeout,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"{cmd!r} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    return run


@pytest.fixture(scope="session")
def torrentfs_json(run_torrentfs) -> Callable[..., dict]:
    """Run torrentfs with --json appended, require success, parse stdout."""

    def run(*args, cwd: Optional[Path] = None) -> dict:
        proc = run_torrentfs(*args, "--json", cwd=cwd, check=True)
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError as e:  # pragma: no cover - diagnostic
            pytest.fail(f"torrentfs printed invalid JSON ({e}):\n{proc.stdout}")

    return run


@pytest.fixture(scope="session")
def lt():
    """The libtorrent python module (only Debian's /usr/bin/python3 has it)."""
    try:
        import libtorrent  # type: ignore
    except ImportError:
        pytest.fail(
            "the `libtorrent` module is missing: run the suite with Debian's "
            "python (/usr/bin/python3 -m pytest Tests/interop), which has "
            "python3-libtorrent"
        )
    return libtorrent


def run_tool(cmd: List[str], cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    """Run an external tool (mktorrent, transmission-create, ...) bounded in time."""
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
        encoding="utf-8", errors="replace", timeout=SUBPROCESS_TIMEOUT,
    )
    return proc


# ---------------------------------------------------------------------------
# Content sets
# ---------------------------------------------------------------------------

def _data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# name -> (root name, list of (relative path elements, size)); a root with a
# single entry whose path is () is a single-file torrent.
CONTENT_SETS: Dict[str, Tuple[str, List[Tuple[Tuple[str, ...], int]]]] = {
    "single": ("single.bin", [((), 100_000)]),
    "single_1": ("one.bin", [((), 1)]),
    "single_16383": ("odd-16383.bin", [((), 16383)]),
    "single_16385": ("odd-16385.bin", [((), 16385)]),
    "single_1000003": ("odd-1000003.bin", [((), 1_000_003)]),
    "single_unicode": ("emoji 🎬.mkv", [((), 50_001)]),
    "multi": ("multi", [
        (("a.bin",), 40_000),
        (("b.txt",), 12_345),
        (("c.dat",), 70_000),
    ]),
    "nested": ("nested", [
        (("top.txt",), 1_000),
        (("d1", "f1.bin"), 20_000),
        (("d1", "d2", "f2.bin"), 33_333),
        (("d1", "d2", "d3", "f3.bin"), 5),
        (("e", "f4.bin"), 16_384),
    ]),
    "with_empty": ("with-empty", [
        (("a.bin",), 30_000),
        (("empty.txt",), 0),
        (("sub", "also-empty"), 0),
        (("sub", "z.bin"), 20_000),
    ]),
    "odd_sizes": ("odd-sizes", [
        (("s1.bin",), 1),
        (("s16383.bin",), 16_383),
        (("s16385.bin",), 16_385),
        (("s1000003.bin",), 1_000_003),
    ]),
    "unicode": ("Ünïcødé dir", [
        (("Ünïcødé ファイル.txt",), 23_456),
        (("emoji 🎬.mkv",), 40_000),
        (("sub ñ", "日本語.bin"), 17_000),
    ]),
    # Decomposed (NFD, as macOS writes them) next to precomposed (NFC) names:
    # on Linux these bytes are the file names, and every tool must keep them
    # as they are (no normalization), or the info hash and paths change.
    "unicode_nfd": (unicodedata.normalize("NFD", "Décomposé"), [
        ((unicodedata.normalize("NFD", "Ünïcødé ファイル.txt"),), 20_000),
        ((unicodedata.normalize("NFC", "précomposé.bin"),), 7_777),
        ((unicodedata.normalize("NFD", "sous-dossier é"),
          unicodedata.normalize("NFD", "Å.bin")), 16_385),
    ]),
}

CONTENT_IDS = list(CONTENT_SETS)


class Content:
    """Content materialised on disk under ``parent``."""

    def __init__(self, key: str, parent: Path):
        self.key = key
        root_name, entries = CONTENT_SETS[key]
        self.parent = parent
        self.path = parent / root_name
        self.name = root_name
        self.single_file = len(entries) == 1 and entries[0][0] == ()
        # Expected (path relative to the torrent folder, size), in the order
        # listed above (tools may order differently).
        self.expected: List[Tuple[str, int]] = []
        for i, (elements, size) in enumerate(entries):
            target = self.path.joinpath(*elements) if elements else self.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_data(size, seed=zlib.crc32(f"{key}/{i}".encode())))
            rel = "/".join(elements) if elements else root_name
            self.expected.append((rel, size))

    @property
    def has_empty_files(self) -> bool:
        return any(size == 0 for _, size in self.expected)


@pytest.fixture
def make_content(tmp_path: Path) -> Callable[[str], Content]:
    def make(key: str, where: str = "data") -> Content:
        parent = tmp_path / where
        parent.mkdir(parents=True, exist_ok=True)
        return Content(key, parent)

    return make


# ---------------------------------------------------------------------------
# libtorrent helpers
# ---------------------------------------------------------------------------

def lt_is_multifile(lt, torrent_path: Path) -> bool:
    meta = lt.bdecode(torrent_path.read_bytes())
    return b"files" in meta[b"info"]


def lt_visible_files(lt, torrent_path: Path) -> List[dict]:
    """libtorrent's view of the torrent's files, pad files removed, with paths
    made relative to the torrent folder like `torrentfs info --json` does."""
    ti = lt.torrent_info(str(torrent_path))
    fs = ti.files()
    multi = lt_is_multifile(lt, torrent_path)
    prefix = ti.name() + "/"
    out = []
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        path = fs.file_path(i).replace(os.sep, "/")
        if multi:
            assert path.startswith(prefix), (path, prefix)
            path = path[len(prefix):]
        out.append({"path": path, "size": fs.file_size(i), "offset": fs.file_offset(i)})
    return out


def lt_pad_count(lt, torrent_path: Path) -> int:
    fs = lt.torrent_info(str(torrent_path)).files()
    return sum(1 for i in range(fs.num_files())
               if fs.file_flags(i) & lt.file_storage.flag_pad_file)


def lt_v1_hash(ti) -> str:
    return str(ti.info_hashes().v1)


@pytest.fixture(scope="module")
def lt_session(lt):
    """A libtorrent session with every kind of networking turned off except
    a listen socket on loopback (it never connects anywhere: no DHT, LSD,
    UPnP, NAT-PMP, and the torrents we add carry no trackers/web seeds)."""
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "alert_mask": int(lt.alert.category_t.status_notification)
        | int(lt.alert.category_t.error_notification)
        | int(lt.alert.category_t.storage_notification),
    }
    ses = lt.session(settings)
    yield ses
    for h in ses.get_torrents():
        ses.remove_torrent(h)
    del ses


def lt_recheck(lt, ses, torrent_path: Path, save_path: Path,
               timeout: float = LT_CHECK_TIMEOUT):
    """Add the torrent to the session with the data already in save_path,
    let libtorrent hash-check it (no resume data, so it checks every piece
    on disk), and return (torrent_info, final torrent_status) once the
    check is over: seeding, or stuck short of complete. Bounded by timeout."""
    ti = lt.torrent_info(str(torrent_path))
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = str(save_path)
    h = ses.add_torrent(atp)
    try:
        deadline = time.monotonic() + timeout
        checked_at = None
        st = h.status()
        while time.monotonic() < deadline:
            ses.wait_for_alert(50)
            for a in ses.pop_alerts():
                if isinstance(a, (lt.torrent_checked_alert, lt.torrent_error_alert,
                                  lt.file_error_alert)) and a.handle == h:
                    checked_at = checked_at or time.monotonic()
            st = h.status()
            if st.is_seeding or st.num_pieces == ti.num_pieces():
                break
            # The check is over and the torrent is not complete: give the
            # status a moment to settle, then report it as is.
            if checked_at is not None and time.monotonic() - checked_at > 1.0:
                break
        return ti, h.status()
    finally:
        ses.remove_torrent(h)


@pytest.fixture
def mounter(procs, torrentfs_bin, tmp_path):
    """mount(tag, opts=(), data=None) → Mount in tmp_path/tag/{mnt,data}.
    At teardown every mount point is unmounted (before ``procs`` stops the
    daemons and readers)."""
    made: List[Path] = []

    def mount(tag: str = "m", opts: Sequence[str] = (), data: Optional[Path] = None,
              mnt: Optional[Path] = None) -> Mount:
        mnt = mnt or tmp_path / tag / "mnt"
        data = data or tmp_path / tag / "data"
        made.append(mnt)
        return Mount(procs, torrentfs_bin, mnt, data, opts, name=f"tfs-mount-{tag}")

    yield mount
    for mnt in reversed(made):
        force_unmount(mnt)
