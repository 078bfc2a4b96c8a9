"""The live status view (`--watch`) on a real terminal: tmux.

`torrentfs download --watch` and `torrentfs status MOUNTPOINT --watch` run in a pane of a
private tmux server (its own socket, `-L`, killed at the end; nothing else is touched),
fed by a rate-limited libtorrent seeder so the download lasts long enough to watch.
`capture-pane` shows what a user sees: progress bars that advance, the piece map under
them, a layout that follows the window when it is resized, the peer list of the detail
view, and, after `q`, the shell's screen and terminal modes as they were. Without a
terminal, `--watch` prints plain lines (no escape sequences).

Every wait is bounded; processes are stopped by PID (and the tmux server by its socket)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
import unicodedata
import uuid
from pathlib import Path
from typing import Callable, List, Optional

import pytest

from mounts import wait_until
from swarm import LtPeer, free_port, make_tree, torrentfs_create, tree_digest

# 3 MiB in two files, 64 KiB pieces (48 of them).
CONTENT_NAME = "view-data"
CONTENT_FILES = {"film.bin": 2_500_000, "extra/notes.bin": 645_728}
PIECE_LENGTH = "65536"
# The seeder's uplink: ~15 s for the whole torrent, time for several captures.
SEED_RATE = 200_000

TMUX_TIMEOUT = 10.0
# The first frame of the view (a magnet needs no metadata here: .torrent given).
VIEW_TIMEOUT = 20.0
# Long enough for the whole download at SEED_RATE, with margin.
DOWNLOAD_TIMEOUT = 90.0
EXIT_TIMEOUT = 15.0

BAR = re.compile(r"^  \[([█▏▎▍▌▋▊▉░]+)\] +(\d+\.\d)%")
MAP_CELLS = set("█▓▒░·")


def width(text: str) -> int:
    """Terminal columns of ``text`` (wide East Asian characters take two)."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


class Tmux:
    """A tmux server of our own (``-L``), one session running ``command`` in its pane."""

    def __init__(self, command: str, columns: int, rows: int):
        self.socket = f"tfs-view-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.run("new-session", "-d", "-s", "view", "-x", str(columns), "-y", str(rows), command)
        # No client is attached: the window keeps the size we give it.
        self.run("set-option", "-g", "window-size", "manual")
        self.pane_pid = int(self.display("#{pane_pid}"))
        self.socket_path = Path(self.display("#{socket_path}"))

    def run(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "-u", *args], capture_output=True,
                              text=True, encoding="utf-8", errors="replace", timeout=TMUX_TIMEOUT)
        if check and proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def display(self, fmt: str) -> str:
        return self.run("display-message", "-p", "-t", "view", fmt).strip()

    def capture(self) -> List[str]:
        """The pane's rows, trailing spaces kept (the view pads its lines to the width)."""
        return self.run("capture-pane", "-p", "-N", "-t", "view").splitlines()

    def send(self, *keys: str) -> None:
        self.run("send-keys", "-t", "view", *keys)

    def resize(self, columns: int, rows: int) -> None:
        self.run("resize-window", "-t", "view", "-x", str(columns), "-y", str(rows))

    @property
    def size(self) -> tuple:
        columns, rows = self.display("#{pane_width} #{pane_height}").split()
        return int(columns), int(rows)

    def children(self) -> List[int]:
        """PIDs of the pane's shell's children (the command under test)."""
        try:
            text = Path(f"/proc/{self.pane_pid}/task/{self.pane_pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def wait_screen(self, predicate: Callable[[List[str]], bool], timeout: float, what: str) -> List[str]:
        deadline = time.monotonic() + timeout
        lines: List[str] = []
        while time.monotonic() < deadline:
            lines = self.capture()
            if predicate(lines):
                return lines
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; the screen:\n" + "\n".join(lines))

    def kill(self) -> None:
        """Kill our server (its panes get SIGHUP), then any command still running, by PID."""
        children = self.children()
        self.run("kill-server", check=False)
        deadline = time.monotonic() + EXIT_TIMEOUT
        for pid in children:
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.1)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, 9)
        # tmux leaves its socket file behind.
        self.socket_path.unlink(missing_ok=True)


@pytest.fixture
def tmux_session():
    """tmux_session(command, columns, rows) → Tmux; every server is killed at teardown."""
    made: List[Tmux] = []

    def start(command: str, columns: int = 100, rows: int = 30) -> Tmux:
        made.append(Tmux(command, columns, rows))
        return made[-1]

    yield start
    for t in made:
        t.kill()


@pytest.fixture
def seeded(tmp_path: Path, procs, torrentfs_bin):
    """(torrent path, content root, seeder): a libtorrent seeder of the content, rate limited."""
    root = make_tree(tmp_path / "src" / CONTENT_NAME, CONTENT_FILES, seed=4242)
    torrent = tmp_path / "view.torrent"
    torrentfs_create(torrentfs_bin, root, torrent, piece_length=PIECE_LENGTH)
    seeder = LtPeer(procs, "lt-seed", root.parent, torrent=torrent, upload_limit=SEED_RATE)
    seeder.wait_listening()
    seeder.wait_seeding(30.0)
    return torrent, root, seeder


class PaneCommand:
    """A pane's command, as a script: ``command`` with stderr to a file (log lines are not
    part of the view), the terminal modes saved before and after, the exit status shown,
    then a shell that waits (so the pane and its screen stay to be captured)."""

    def __init__(self, command: List, where: Path):
        where.mkdir(parents=True, exist_ok=True)
        self.before, self.after = where / "stty-before", where / "stty-after"
        run = " ".join(shlex.quote(str(c)) for c in command)
        script = where / "pane.sh"
        script.write_text(
            f"stty -g > {shlex.quote(str(self.before))}\n"
            f"env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=tmux-256color {run} 2> {shlex.quote(str(where / 'err'))}\n"
            f"echo EXIT=$?\n"
            f"stty -g > {shlex.quote(str(self.after))}\n"
            f"exec sleep 600\n")
        self.shell = f"sh {shlex.quote(str(script))}"

    def modes_restored(self) -> bool:
        wait_until(lambda: self.after.exists() and self.after.read_text(), TMUX_TIMEOUT, "the terminal modes after")
        return self.after.read_text() == self.before.read_text()


def bar_lines(lines: List[str]) -> List[tuple]:
    """(row, bar cells, filled cells, percent) of every progress bar on the screen."""
    out = []
    for row, line in enumerate(lines):
        m = BAR.match(line)
        if m:
            out.append((row, len(m.group(1)), m.group(1).count("█"), float(m.group(2))))
    return out


def assert_fits(lines: List[str], columns: int, rows: int) -> None:
    """The frame within the window: key bar on the last row, no line cut by the right edge
    (a bar's figures follow it whole), none wider than the window."""
    assert len(lines) <= rows, lines
    for line in lines:
        assert width(line) <= columns, f"{width(line)} > {columns}: {line!r}"
    assert lines[-1].startswith(" q quit"), lines[-1]
    for row, cells, _, _ in bar_lines(lines):
        assert re.search(r"\] +\d+\.\d%  [\d.]+ [KMG]?i?B / [\d.]+ MiB", lines[row]), lines[row]
        if lines[row + 1].strip():  # the piece map (blank while the torrent is checked)
            assert cells == width(lines[row + 1].rstrip()) - 3, (lines[row], lines[row + 1])


def assert_piece_map(lines: List[str]) -> None:
    """Under every bar of a torrent under way, its piece map, as wide as the bar."""
    for row, cells, _, percent in bar_lines(lines):
        if percent == 0:
            continue
        cells_line = lines[row + 1]
        assert cells_line.startswith("   ") and set(cells_line.strip()) <= MAP_CELLS, cells_line
        assert len(cells_line.strip()) == cells, (lines[row], cells_line)


def progress_advances(t: Tmux, timeout: float) -> List[tuple]:
    """Captures until the bar has moved on at least twice while below 100%; the samples."""
    samples: List[tuple] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = t.capture()
        bars = bar_lines(lines)
        if bars:
            _, cells, filled, percent = bars[0]
            if not samples or samples[-1][1] != percent:
                samples.append((filled, percent, lines))
            steps = [s for s in samples if 0 < s[1] < 100]
            if len(steps) >= 3:
                return samples
        time.sleep(0.5)
    raise AssertionError(f"the progress bar did not advance: {[(f, p) for f, p, _ in samples]}")


def test_download_watch_under_tmux(seeded, tmp_path, tmux_session, torrentfs_bin):
    """`download --watch`: the view appears on the alternate screen, the bar advances with
    the piece map under it, the detail view lists the seeder, the layout follows resizes,
    and `q` leaves the shell's screen and terminal modes as they were."""
    torrent, root, seeder = seeded
    out, state = tmp_path / "out", tmp_path / "state"
    out.mkdir()
    state.mkdir()
    command = [torrentfs_bin, "download", torrent, "-o", out, "--state", state, "--port", free_port(),
               "--peer", seeder.endpoint, "--seed", "--watch"]
    pane = PaneCommand(command, tmp_path / "pane")
    t = tmux_session(pane.shell, 100, 30)

    lines = t.wait_screen(lambda ls: bool(bar_lines(ls)), VIEW_TIMEOUT, "the first frame with a progress bar")
    assert t.display("#{alternate_on}") == "1", "the view is not on the alternate screen"
    assert t.display("#{cursor_flag}") == "0", "the cursor is shown during the view"
    assert lines[0].startswith(" torrentfs download"), lines[0]
    assert any(line.startswith("▶ " + CONTENT_NAME) for line in lines), lines

    samples = progress_advances(t, DOWNLOAD_TIMEOUT)
    percents = [p for _, p, _ in samples]
    assert percents == sorted(percents), f"progress went back: {percents}"
    filled = [f for f, _, _ in samples]
    assert filled == sorted(filled) and filled[-1] > filled[0], f"the bar did not fill: {filled}"
    for _, _, frame in samples:
        assert_fits(frame, 100, 30)
        assert_piece_map(frame)
    # While downloading, the map shows verified pieces and pieces still to come.
    mid = next(frame for _, p, frame in samples if 0 < p < 100)
    row = bar_lines(mid)[0][0]
    assert "█" in mid[row + 1] and set(mid[row + 1]) & set("▒░"), mid[row + 1]
    assert any(re.search(r"↓ +[\d.]+ [KM]iB/s", line) for line in mid), mid

    # Detail view: the seeder in the peer list.
    t.send("Enter")
    lines = t.wait_screen(lambda ls: any(l.startswith("  ADDRESS") for l in ls)
                          and any(l.startswith("  " + seeder.endpoint) and re.search(r" [I.][Dd][Uu][S.]$", l.rstrip())
                                 for l in ls)
                          and ls[-1].startswith(" q quit  b back"),
                          TMUX_TIMEOUT, "the detail view")
    # (The footer is in the predicate: a capture can land while tmux is still applying a
    # frame, with the new header and rows above the old footer.)
    header = next(l for l in lines if l.startswith("  ADDRESS")).split()
    assert header == ["ADDRESS", "CLIENT", "DOWN", "UP", "HAVE", "TRANSPORT", "SOURCE", "FLAGS"], header
    peer = next(l for l in lines if l.startswith("  " + seeder.endpoint)).split()
    # Address, client, rates, 100% (a seed), tcp, given by --peer, flags: outgoing, unchoked by it, a seed.
    assert peer[-4:] == ["100%", "tcp", "manual", ".DuS"], peer
    assert lines[0].startswith(" torrentfs download › " + CONTENT_NAME), lines[0]
    t.send("b")
    t.wait_screen(lambda ls: bool(bar_lines(ls)) and not any(l.startswith("  ADDRESS") for l in ls),
                  TMUX_TIMEOUT, "the list again")

    # Resized: smaller, then larger; the frame follows within a second or two.
    for columns, rows in [(60, 20), (130, 40), (45, 12)]:
        t.resize(columns, rows)
        assert t.size == (columns, rows)

        def relaid(ls: List[str], columns=columns, rows=rows) -> bool:
            bars = bar_lines(ls)
            return (len(ls) >= rows - 1 and bool(bars) and ls[-1].startswith(" q quit")
                    and bars[0][1] == width(ls[bars[0][0] + 1].rstrip()) - 3
                    and width(ls[0]) == columns)
        lines = t.wait_screen(relaid, TMUX_TIMEOUT, f"the view at {columns}x{rows}")
        assert_fits(lines, columns, rows)

    # Done: the download completes (the view shows seeding), then q.
    t.resize(100, 30)
    t.wait_screen(lambda ls: any(l.startswith("▶ " + CONTENT_NAME) and l.endswith("seeding") for l in ls),
                  DOWNLOAD_TIMEOUT, "the torrent seeding")
    assert tree_digest(out / CONTENT_NAME) == tree_digest(root)
    t.send("q")
    lines = t.wait_screen(lambda ls: any(l.startswith("EXIT=") for l in ls), EXIT_TIMEOUT, "the exit after q")
    assert "EXIT=0" in [l.strip() for l in lines], lines
    assert t.display("#{alternate_on}") == "0", "still on the alternate screen after q"
    assert t.display("#{cursor_flag}") == "1", "the cursor is still hidden after q"
    assert pane.modes_restored(), "the terminal modes were not restored"
    # The shell's screen is back: what was printed before and between the views.
    assert any(l.startswith("complete: " + CONTENT_NAME) for l in lines), lines


def test_watch_q_during_download_stops_it(seeded, tmp_path, tmux_session, torrentfs_bin):
    """`q` while downloading stops the download as Ctrl-C does (exit 130, resume data saved)
    and restores the terminal; SIGTERM does the same."""
    torrent, _, seeder = seeded
    for how in ["q", "SIGTERM"]:
        out, state = tmp_path / f"out-{how}", tmp_path / f"state-{how}"
        out.mkdir()
        state.mkdir()
        command = [torrentfs_bin, "download", torrent, "-o", out, "--state", state, "--port", free_port(),
                   "--peer", seeder.endpoint, "--watch"]
        pane = PaneCommand(command, tmp_path / f"pane-{how}")
        t = tmux_session(pane.shell, 80, 24)
        t.wait_screen(lambda ls: any(0 < b[3] < 100 for b in bar_lines(ls)), VIEW_TIMEOUT, "the download under way")
        if how == "q":
            t.send("q")
        else:
            pids = t.children()
            assert len(pids) == 1, pids
            os.kill(pids[0], 15)
        lines = t.wait_screen(lambda ls: any(l.startswith("EXIT=") for l in ls), EXIT_TIMEOUT, f"the exit after {how}")
        assert "EXIT=130" in [l.strip() for l in lines], lines
        assert t.display("#{alternate_on}") == "0"
        assert t.display("#{cursor_flag}") == "1"
        assert pane.modes_restored(), "the terminal modes were not restored"
        t.kill()


def test_watch_without_terminal_prints_plain_lines(seeded, tmp_path, procs, torrentfs_bin):
    """With stdout and stderr not terminals, `download --watch` prints the plain progress
    lines (as without --watch): no escape sequence anywhere."""
    torrent, root, seeder = seeded
    out, state = tmp_path / "plain-out", tmp_path / "plain-state"
    out.mkdir()
    state.mkdir()
    proc = procs.start("tfs-plain", [torrentfs_bin, "download", torrent, "-o", out, "--state", state,
                                     "--port", free_port(), "--peer", seeder.endpoint, "--watch"])
    assert proc.wait(DOWNLOAD_TIMEOUT) == 0, proc.tail()
    assert tree_digest(out / CONTENT_NAME) == tree_digest(root)
    assert "\x1b" not in proc.stdout() and "\x1b" not in proc.stderr(), proc.tail()
    assert re.search(r"^\[[#-]+\] +\d+\.\d%", proc.stderr(), re.M), proc.tail()
    assert proc.stdout().startswith("complete: " + CONTENT_NAME), proc.tail()


def test_status_watch_on_a_mount(seeded, tmp_path, mounter, procs, tmux_session, torrentfs_bin):
    """`status MOUNTPOINT --watch` reads the mount's `.status` every second: the torrent's
    folder with its bar and piece map advancing (`fetch_all` downloads it all), the peer list;
    `q` exits 0. Without a terminal it prints plain lines every second."""
    torrent, _, seeder = seeded
    m = mounter("view", opts=["fetch_all"])
    m.add(torrent.read_bytes())
    m.wait_folder(CONTENT_NAME)
    # The mount dials the seeder: it is in no tracker and the .torrent names no peer.
    m.add(f"magnet:?xt=urn:btih:{torrentfs_info_hash(torrentfs_bin, torrent)}&x.pe={seeder.endpoint}\n")

    pane = PaneCommand([torrentfs_bin, "status", m.mnt, "--watch"], tmp_path / "pane")
    t = tmux_session(pane.shell, 90, 25)
    lines = t.wait_screen(lambda ls: bool(bar_lines(ls)), VIEW_TIMEOUT, "the first frame")
    assert lines[0].startswith(f" torrentfs status {str(m.mnt)[:20]}"), lines[0]
    assert any(line.startswith("▶ " + CONTENT_NAME) for line in lines), lines
    samples = progress_advances(t, DOWNLOAD_TIMEOUT)
    for _, _, frame in samples:
        assert_fits(frame, 90, 25)
        assert_piece_map(frame)
    t.send("Enter")
    t.wait_screen(lambda ls: any(l.startswith("  " + seeder.endpoint) for l in ls), TMUX_TIMEOUT,
                  "the seeder in the detail view")
    t.send("q")
    lines = t.wait_screen(lambda ls: any(l.startswith("EXIT=") for l in ls), EXIT_TIMEOUT, "the exit after q")
    assert "EXIT=0" in [l.strip() for l in lines], lines
    assert t.display("#{alternate_on}") == "0"
    assert pane.modes_restored(), "the terminal modes were not restored"

    plain = procs.start("tfs-status-plain", [torrentfs_bin, "status", m.mnt, "--watch"])
    plain.wait_for_output(lambda text: text.count(CONTENT_NAME) >= 2, 10.0, "two plain status lines")
    plain.stop()
    assert "\x1b" not in plain.stdout(), plain.stdout()


def torrentfs_info_hash(bin_path: Path, torrent: Path) -> str:
    from swarm import torrentfs_info
    return torrentfs_info(bin_path, torrent)["infoHash"]


def test_serve_watch(seeded, tmp_path, tmux_session, torrentfs_bin):
    """`serve --watch`: the same view over the server's session (its URL in the title, the
    bounded cache's use above the torrents); `q` stops the server and leaves the URL it
    printed on the shell's screen."""
    torrent, root, seeder = seeded
    command = [torrentfs_bin, "serve", torrent, "--http", "127.0.0.1:0", "--data", tmp_path / "serve-data",
               "--state", tmp_path / "serve-state", "--port", free_port(), "--peer", seeder.endpoint,
               "--fetch-all", "--cache-size", "8M", "--watch"]
    pane = PaneCommand(command, tmp_path / "pane")
    t = tmux_session(pane.shell, 100, 30)
    lines = t.wait_screen(lambda ls: bool(bar_lines(ls)), VIEW_TIMEOUT, "the first frame")
    assert re.match(r" torrentfs serve http://127\.0\.0\.1:\d+/ ", lines[0]), lines[0]
    samples = progress_advances(t, DOWNLOAD_TIMEOUT)
    cache = [l for l in samples[-1][2] if l.startswith("  cache [")]
    assert cache and re.search(r"\] [\d.]+ [KM]i?B / 8\.0 MiB  · 0 evicted", cache[0]), samples[-1][2]
    t.send("q")
    lines = t.wait_screen(lambda ls: any(l.startswith("EXIT=") for l in ls), EXIT_TIMEOUT, "the exit after q")
    assert "EXIT=0" in [l.strip() for l in lines], lines
    assert any(re.match(r"http://127\.0\.0\.1:\d+/$", l.strip()) for l in lines), lines
    assert pane.modes_restored(), "the terminal modes were not restored"
