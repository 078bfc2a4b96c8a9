"""`make install-files`, the manual pages and the examples in examples/ that an administrator
copies: torrentfs(1) and mount.torrentfs(8) are installed, render without a warning, and
document every subcommand, flag, mount option, control file and extended attribute the code
has (read from the binary's --help and from the sources, so the test fails when the docs
drift); the fstab line mounts through the mount.torrentfs helper exactly as mount(8) runs it
(emulated, and then by mount(8) itself in a private mount namespace); the systemd unit's
commands mount and unmount.

There is no systemd in this container (no PID 1 systemd, no `systemctl`): the unit file is
parsed and its ExecStartPre/ExecStart/ExecStartPost/ExecStop commands are run the way
systemd would run them, in that order; `systemd-analyze verify` checks the unit when it is
installed."""

from __future__ import annotations

import filecmp
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from mounts import (EXIT_TIMEOUT, FS_TIMEOUT, MOUNT_TIMEOUT, bounded, force_unmount,
                    in_mount_table, wait_until)
from test_mount import daemon_pids, pid_alive

REPO = Path(__file__).resolve().parents[2]
MAN_SOURCES = {"torrentfs": REPO / "docs" / "man" / "torrentfs.1",
               "mount.torrentfs": REPO / "docs" / "man" / "mount.torrentfs.8"}
EXAMPLES = REPO / "examples"
PREFIX = "/usr/local"
SBINDIR = "/sbin"
# Flags every subcommand has (ArgumentParser's); the page mentions them once, not per command.
GLOBAL_FLAGS = {"-h", "--help", "--version"}


# ---------------------------------------------------------------------------
# Installing
# ---------------------------------------------------------------------------

def make_install_files(destdir: Path, binary: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(REPO), "install-files", f"DESTDIR={destdir}",
                           f"RELEASE_BIN={binary}", f"PREFIX={PREFIX}", f"SBINDIR={SBINDIR}"],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def staged(tmp_path_factory, torrentfs_bin) -> Path:
    """A DESTDIR holding what `make install-files` installs."""
    destdir = tmp_path_factory.mktemp("stage")
    proc = make_install_files(destdir, torrentfs_bin)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return destdir


def man_dir(destdir: Path) -> Path:
    return destdir / PREFIX.lstrip("/") / "share" / "man"


def test_install_files_and_uninstall(tmp_path, torrentfs_bin):
    """`make install-files DESTDIR=… RELEASE_BIN=…` (no release build) installs the binary,
    the mount.torrentfs link mount(8) looks for, and both manual pages; `make uninstall`
    removes all four."""
    destdir = tmp_path / "root"
    proc = make_install_files(destdir, torrentfs_bin)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    binary = destdir / PREFIX.lstrip("/") / "bin" / "torrentfs"
    link = destdir / SBINDIR.lstrip("/") / "mount.torrentfs"
    page1 = man_dir(destdir) / "man1" / "torrentfs.1"
    page8 = man_dir(destdir) / "man8" / "mount.torrentfs.8"
    assert os.access(binary, os.X_OK) and filecmp.cmp(binary, torrentfs_bin, shallow=False)
    # The link names the installed path (without DESTDIR), as it will be on the target system.
    assert link.is_symlink() and os.readlink(link) == f"{PREFIX}/bin/torrentfs"
    for page, source in ((page1, MAN_SOURCES["torrentfs"]), (page8, MAN_SOURCES["mount.torrentfs"])):
        assert filecmp.cmp(page, source, shallow=False), page
        assert page.stat().st_mode & 0o777 == 0o644, oct(page.stat().st_mode)
    proc = subprocess.run(["make", "-C", str(REPO), "uninstall", f"DESTDIR={destdir}",
                           f"PREFIX={PREFIX}", f"SBINDIR={SBINDIR}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    left = [p for p in (binary, link, page1, page8) if os.path.lexists(p)]
    assert left == [], left


@pytest.mark.parametrize("page", sorted(MAN_SOURCES))
def test_man_pages_render_without_warnings(page, staged, run_torrentfs):
    """`man -M STAGED/share/man --warnings PAGE` finds the installed page and formats it with
    no warning; groff's own check of the source (`groff -man -ww -z`) is silent too. The
    page's header names the version the binary reports."""
    version = run_torrentfs("--version", check=True).stdout.strip()
    header = next(ln for ln in MAN_SOURCES[page].read_text().splitlines() if ln.startswith(".TH "))
    assert f'"torrentfs {version}"' in header, (header, version)
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8")
    env.pop("MANPATH", None)
    where = subprocess.run(["man", "-M", str(man_dir(staged)), "-w", page], capture_output=True,
                           text=True, timeout=60, env=env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).resolve().is_relative_to(staged.resolve()), where.stdout
    proc = subprocess.run(["man", "-M", str(man_dir(staged)), "--warnings", page],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", f"man warnings for {page}:\n{proc.stderr}"
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"):
        assert re.search(rf"^{heading}$", proc.stdout, re.M), f"{page} has no {heading} section"
    assert re.search(rf"^\s+{re.escape(page)} - ", proc.stdout, re.M), proc.stdout[:400]
    check = subprocess.run(["groff", "-man", "-ww", "-z", str(MAN_SOURCES[page])],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and check.stderr == "", check.stderr


# ---------------------------------------------------------------------------
# Reading roff: sections, and the tags of their .TP items, as plain text
# ---------------------------------------------------------------------------

ESCAPES = [(r"\-", "-"), (r"\&", ""), (r"\c", ""), (r"\e", "\\"), (r"\(aq", "'"),
           (r"\(dq", '"'), (r"\(lq", '"'), (r"\(rq", '"'), (r"\(em", "-")]
# Macros whose arguments alternate fonts and are joined without spaces.
ALTERNATING = {"BI", "IB", "BR", "RB", "IR", "RI"}


def plain(text: str) -> str:
    text = re.sub(r"\\f(\[[^\]]*\]|.)", "", text)
    for escape, replacement in ESCAPES:
        text = text.replace(escape, replacement)
    return text


def line_text(line: str) -> str:
    """A roff line as the reader sees its words: a font macro's arguments joined as it
    joins them; text lines as they are."""
    if not line.startswith("."):
        return plain(line)
    macro, _, rest = line[1:].partition(" ")
    args = [a if a is not None and a != "" else b
            for a, b in re.findall(r'"((?:[^"]|"")*)"|(\S+)', rest)]
    args = [a.replace('""', '"') for a in args]
    return plain(("" if macro in ALTERNATING else " ").join(args))


def sections(source: str) -> Dict[str, List[str]]:
    """Title of each .SH and .SS (plain text) → its lines up to the next heading."""
    out: Dict[str, List[str]] = {}
    current: Optional[List[str]] = None
    for line in source.splitlines():
        if line.startswith('.\\"'):
            continue
        if line.startswith((".SH ", ".SS ")):
            current = out.setdefault(line_text(line).strip(), [])
        elif current is not None:
            current.append(line)
    return out


def section(source: str, prefix: str) -> Tuple[str, List[str]]:
    found = [(title, lines) for title, lines in sections(source).items() if title.startswith(prefix)]
    assert len(found) == 1, f"expected one section starting {prefix!r}, found {[t for t, _ in found]}"
    return found[0]


def tags(lines: List[str]) -> List[str]:
    """The tag (the line after .TP) of every item of a section, as plain text."""
    return [line_text(lines[i + 1]).strip() for i, line in enumerate(lines[:-1]) if line == ".TP"]


def text_of(lines: List[str]) -> str:
    return " ".join(line_text(line) for line in lines if line not in (".PP", ".TP", ".RS", ".RE"))


# ---------------------------------------------------------------------------
# torrentfs(1) against the binary
# ---------------------------------------------------------------------------

def help_flags(help_text: str) -> List[str]:
    """Flags of an ArgumentParser --help: the OPTIONS lines (indented two spaces) begin with
    `-x`, `-x, --long` or `--long`."""
    options = help_text.split("OPTIONS:", 1)[1]
    flags = []
    for line in options.splitlines():
        m = re.match(r"^  (-[A-Za-z]|--[a-z0-9][a-z0-9-]*)(?:, (--[a-z0-9][a-z0-9-]*))?(?:\s|$)", line)
        if m:
            flags += [f for f in m.groups() if f]
    return flags


def subcommands(run_torrentfs) -> List[str]:
    text = run_torrentfs("--help", check=True).stdout
    block = text.split("SUBCOMMANDS:", 1)[1]
    names = re.findall(r"^  ([a-z][a-z0-9-]*)\s", block, re.M)
    assert names, text
    return names


def tag_flags(tag_texts: List[str]) -> set:
    return {f for tag in tag_texts for f in re.findall(r"(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)", tag)}


def test_every_subcommand_and_flag_is_in_torrentfs_1(run_torrentfs):
    """Each subcommand `torrentfs --help` lists has a synopsis line and a section of its own in
    torrentfs(1), and each flag its --help lists is an item (.TP) of that section, or of
    NETWORK OPTIONS for a command whose section refers to them."""
    source = MAN_SOURCES["torrentfs"].read_text()
    synopsis = text_of(section(source, "SYNOPSIS")[1])
    _, network_lines = section(source, "NETWORK OPTIONS")
    network = tag_flags(tags(network_lines))
    whole = plain(source)
    for flag in GLOBAL_FLAGS:
        assert re.search(rf"(?<![\w-]){flag}(?![\w-])", whole), f"torrentfs(1) never mentions {flag}"
    missing = []
    names = subcommands(run_torrentfs)
    assert {"mount", "add", "status", "serve"} <= set(names), names
    for name in names:
        assert re.search(rf"(^|\s)torrentfs {name}\s", synopsis), f"no SYNOPSIS line for {name}"
        title, lines = section(source, f"torrentfs {name} ")
        documented = tag_flags(tags(lines))
        if "NETWORK OPTIONS" in text_of(lines):
            documented |= network
        listed = set(help_flags(run_torrentfs(name, "--help", check=True).stdout)) - GLOBAL_FLAGS
        missing += [f"{name} {flag}" for flag in sorted(listed - documented)]
    assert missing == [], f"flags --help lists that torrentfs(1) does not describe: {missing}"


def source_files(*folders: str) -> List[Path]:
    return sorted(p for folder in folders for p in (REPO / "Sources" / folder).rglob("*.swift"))


def test_control_files_and_xattrs_are_in_torrentfs_1():
    """Every extended attribute name in the filesystem's sources (`user.torrentfs.…`) is an
    item of torrentfs(1)'s Extended attributes section, and the control files an item of The
    mount root."""
    source = MAN_SOURCES["torrentfs"].read_text()
    names = set()
    for path in source_files("TorrentFSCore", "TorrentFS"):
        names |= set(re.findall(r'"(user\.torrentfs\.[a-z_]+)"', path.read_text()))
    assert {"user.torrentfs.progress", "user.torrentfs.infohash"} <= names, names
    documented = set(tags(section(source, "Extended attributes")[1]))
    assert sorted(names - documented) == [], f"undocumented xattrs: {sorted(names - documented)}"
    core = (REPO / "Sources" / "TorrentFSCore" / "TorrentFileSystem.swift").read_text()
    control = set(re.findall(r'static let \w+Name = "(\.[^"]+)"', core))
    assert control >= {".add", ".status"}, control
    root_items = set(tags(section(source, "The mount root")[1]))
    assert control <= root_items, f"control files {sorted(control - root_items)} not described"


# ---------------------------------------------------------------------------
# mount.torrentfs(8) against MountOptions.swift
# ---------------------------------------------------------------------------

def parsed_mount_options() -> Tuple[Dict[str, bool], List[str]]:
    """From MountOptions.swift: each option its `switch key` handles → whether it takes a
    value (a flag calls `flag()`), and the generic mount(8) options it ignores."""
    text = (REPO / "Sources" / "TorrentFSCore" / "MountOptions.swift").read_text()
    body = text[text.index("switch key {"):]
    body = body[:body.index("default:")]
    options: Dict[str, bool] = {}
    for labels, code in re.findall(r'case ((?:"[^"]+"(?:,\s*)?)+):(.*?)(?=\n\s*case "|\Z)', body, re.S):
        for name in re.findall(r'"([^"]+)"', labels):
            options[name] = "flag()" not in code
    ignored_literal = re.search(r"static let ignored: Set<String> = \[(.*?)\]", text, re.S)
    assert ignored_literal, "MountOptions.ignored not found"
    ignored = re.findall(r'"([^"]+)"', ignored_literal.group(1))
    return options, ignored


def test_every_mount_option_is_in_mount_torrentfs_8():
    """Each option MountOptions parses is an item of MOUNT OPTIONS in mount.torrentfs(8),
    written `name=value` when it takes a value and `name` when it is a flag; each generic
    option it accepts and ignores is listed."""
    options, ignored = parsed_mount_options()
    assert {"data", "port", "fetch_all", "http"} <= set(options), options
    _, lines = section(MAN_SOURCES["mount.torrentfs"].read_text(), "MOUNT OPTIONS")
    documented = {}
    for tag in tags(lines):
        name, eq, _ = tag.partition("=")
        documented[name.strip()] = bool(eq)
    wrong = []
    for name, takes_value in sorted(options.items()):
        if name not in documented:
            wrong.append(f"{name}: not documented")
        elif documented[name] != takes_value:
            wrong.append(f"{name}: documented {'with' if documented[name] else 'without'} a value")
    assert wrong == [], wrong
    generic = text_of(lines).split("These generic options", 1)
    assert len(generic) == 2, "no paragraph of generic options"
    words = set(re.split(r"[\s,.]+", generic[1]))
    assert sorted(set(ignored) - words) == [], f"generic options not listed: {sorted(set(ignored) - words)}"


# ---------------------------------------------------------------------------
# examples/fstab: the line mount(8) reads
# ---------------------------------------------------------------------------

# What libmount (util-linux 2.38) leaves out of the options it passes to a helper, of those a
# torrentfs line may use; VFS options (nosuid, noexec, …) it would reorder, so the example must
# not use them (the emulation would then differ from mount(8), which the namespace test shows).
NOT_FOR_HELPERS = {"defaults", "auto", "noauto"}
NOT_FOR_HELPERS_PREFIXES = ("comment=", "x-", "X-")
VFS_OPTIONS = {"ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async",
               "atime", "noatime", "relatime", "strictatime", "diratime", "nodiratime", "user",
               "users", "owner", "group"}


def fstab_line() -> List[str]:
    lines = [ln for ln in (EXAMPLES / "fstab").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) == 1, lines
    return lines[0].split()


def helper_options(fs_options: str) -> str:
    """The -o argument mount(8) gives /sbin/mount.torrentfs for these fstab options."""
    kept = [o for o in fs_options.split(",")
            if o not in NOT_FOR_HELPERS and not o.startswith(NOT_FOR_HELPERS_PREFIXES)]
    return ",".join(["rw"] + kept)


def localized_fstab(tmp_path: Path) -> Tuple[List[str], Path, Path]:
    """The example line with its mount point and data= directory moved under tmp_path (and
    port=0: a test never takes a fixed port)."""
    fields = fstab_line()
    assert len(fields) == 6, f"an fstab line has 6 fields: {fields}"
    spec, target, vfstype, options, freq, passno = fields
    assert vfstype == "torrentfs", "the type must be torrentfs: mount(8) then runs /sbin/mount.torrentfs"
    assert (freq, passno) == ("0", "0")
    names = [o.split("=", 1)[0] for o in options.split(",")]
    assert "nofail" in names and "_netdev" in names, names
    known, ignored = parsed_mount_options()
    assert [n for n in names if n not in known and n not in ignored] == [], names
    assert not set(names) & VFS_OPTIONS, "the emulation of mount(8) does not order VFS options"
    mnt, data = tmp_path / "fstab" / "mnt", tmp_path / "fstab" / "data"
    mnt.mkdir(parents=True)
    moved = []
    for option in options.split(","):
        if option.startswith(("data=", "cache=")):
            option = option.split("=", 1)[0] + f"={data}"
        elif option.startswith("port="):
            option = "port=0"
        moved.append(option)
    assert any(o.startswith(("data=", "cache=")) for o in moved), "the example names its data= directory"
    return [spec, str(mnt), vfstype, ",".join(moved), freq, passno], mnt, data


def stop_daemons(mnt: Path) -> None:
    """Teardown of a background mount: unmount, then SIGTERM (and SIGKILL) its daemon by PID."""
    force_unmount(mnt)
    for pid in daemon_pids(mnt):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + EXIT_TIMEOUT
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def daemon_options(pid: int) -> List[str]:
    """The -o lists the background daemon was started with (the helper passes on its own)."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-o"]


def wait_exit(pid: int, what: str) -> None:
    wait_until(lambda: not pid_alive(pid), EXIT_TIMEOUT, what)


def test_fstab_line_through_the_helper_as_mount_8_runs_it(tmp_path, procs, torrentfs_bin):
    """examples/fstab, parsed: a symlink named mount.torrentfs, run with the argv mount(8)
    gives a helper (`mount.torrentfs SPEC DIR -o rw,OPTIONS`), returns once the mount is live;
    `umount DIR` ends the daemon."""
    fields, mnt, data = localized_fstab(tmp_path)
    spec, target, _, options = fields[:4]
    helper = tmp_path / "sbin" / "mount.torrentfs"
    helper.parent.mkdir()
    helper.symlink_to(torrentfs_bin)
    procs.add_cleanup(lambda: stop_daemons(mnt))
    argv = [str(helper), spec, target, "-o", helper_options(options)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=MOUNT_TIMEOUT + 10)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}: {proc.stderr}"
    assert in_mount_table(mnt), f"{mnt} not mounted when {argv} returned"
    status = json.loads(bounded(lambda: (mnt / ".status").read_bytes(), FS_TIMEOUT, ".status"))
    assert status["torrents"] == [] and status["listenPort"] > 0, status
    assert (data / "torrentfs.log").is_file()
    pids = daemon_pids(mnt)
    assert len(pids) == 1, pids
    assert daemon_options(pids[0]) == [helper_options(options)]
    umount = subprocess.run(["umount", str(mnt)], capture_output=True, text=True, timeout=30)
    assert umount.returncode == 0, umount.stderr
    wait_exit(pids[0], "the daemon's exit after umount")
    assert not in_mount_table(mnt)


def test_fstab_line_mounted_by_mount_8(tmp_path, procs, torrentfs_bin):
    """mount(8) itself mounts the example line (`mount -T FSTAB DIR`), finding the helper as
    /sbin/mount.torrentfs: in a private mount namespace whose /sbin is a folder holding only
    that link (nothing is installed on this machine). The daemon gets the options the
    emulation above computes; the mount (seen through the daemon's namespace) answers, and
    umount(8) there ends it."""
    fields, mnt, _ = localized_fstab(tmp_path)
    fstab = tmp_path / "fstab.test"
    fstab.write_text(" ".join(fields) + "\n")
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    (sbin / "mount.torrentfs").symlink_to(torrentfs_bin)
    mount_cmd = shutil.which("mount")
    assert mount_cmd and not mount_cmd.startswith(os.path.realpath("/sbin")), mount_cmd
    procs.add_cleanup(lambda: stop_daemons(mnt))
    script = 'mount --bind "$1" "$2" && exec "$3" -T "$4" "$5"'
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                           script, "sh", str(sbin), os.path.realpath("/sbin"), mount_cmd, str(fstab),
                           str(mnt)], capture_output=True, text=True, timeout=MOUNT_TIMEOUT + 10)
    assert proc.returncode == 0, f"mount -T exited {proc.returncode}: {proc.stderr}"
    pids = daemon_pids(mnt)
    assert len(pids) == 1, pids
    pid = pids[0]
    assert daemon_options(pid) == [helper_options(fields[3])], "mount(8) passed other options"
    assert not in_mount_table(mnt), "the mount leaked out of its namespace"
    with open(f"/proc/{pid}/mounts") as f:
        entries = [line.split() for line in f]
    assert [e[2] for e in entries if e[1] == str(mnt)] == ["fuse.torrentfs"], entries[-3:]
    inside = Path(f"/proc/{pid}/root") / str(mnt).lstrip("/")
    status = json.loads(bounded(lambda: (inside / ".status").read_bytes(), FS_TIMEOUT, ".status"))
    assert status["torrents"] == [], status
    umount = subprocess.run(["nsenter", "--target", str(pid), "--mount", "umount", str(mnt)],
                            capture_output=True, text=True, timeout=30)
    assert umount.returncode == 0, umount.stderr
    wait_exit(pid, "the daemon's exit after umount in its namespace")


# ---------------------------------------------------------------------------
# examples/torrentfs.service
# ---------------------------------------------------------------------------

def unit_entries(text: str) -> Dict[str, List[Tuple[str, str]]]:
    """Section → (key, value) pairs of a unit file, repeated keys kept, `\\` continuations
    joined, comments (# and ;) skipped."""
    out: Dict[str, List[Tuple[str, str]]] = {}
    current = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("["):
            current = out.setdefault(line.strip("[]"), [])
            continue
        assert current is not None and "=" in line, line
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return out


def values(unit: Dict[str, List[Tuple[str, str]]], section_name: str, key: str) -> List[str]:
    return [v for k, v in unit.get(section_name, []) if k == key]


def exec_argv(value: str) -> Tuple[List[str], bool]:
    """An Exec*= line as systemd runs it: (argv, failure ignored). Only the `-` prefix is
    used and no specifier or variable, so shell-style splitting is systemd's splitting."""
    ignore = value.startswith("-")
    value = value.lstrip("-")
    assert not value.startswith(("@", "+", "!", ":")), value
    assert "%" not in value and "$" not in value, f"specifiers/variables are not expanded here: {value}"
    return shlex.split(value), ignore


def test_systemd_unit_starts_and_stops_the_mount(tmp_path, procs, torrentfs_bin, staged):
    """examples/torrentfs.service with its paths moved to temporary ones (mount point, data
    directory, binary; port=0): ExecStartPre clears a stale mount and makes the mount point,
    ExecStart is the daemon in the foreground, ExecStartPost returns once the mount is live,
    ExecStop unmounts it and the daemon exits 0 — the sequence systemd runs (no systemd
    here). `systemd-analyze verify` accepts the unit, with the man pages it names installed."""
    original = (EXAMPLES / "torrentfs.service").read_text()
    unit = unit_entries(original)
    assert values(unit, "Service", "Type") == ["exec"]
    assert values(unit, "Service", "Restart") == ["on-failure"]
    assert values(unit, "Install", "WantedBy") == ["multi-user.target"]
    start = values(unit, "Service", "ExecStart")
    assert len(start) == 1
    argv, _ = exec_argv(start[0])
    assert argv[:3] == [f"{PREFIX}/bin/torrentfs", "mount", "/mnt/torrents"] and "-f" in argv, argv
    option_list = argv[argv.index("-o") + 1]
    state = values(unit, "Service", "StateDirectory")
    assert state and f"data=/var/lib/{state[0]}" in option_list.split(","), (state, option_list)
    stops = [exec_argv(v)[0] for v in values(unit, "Service", "ExecStop")]
    assert [s[1:] for s in stops] == [["-u", "/mnt/torrents"]] and stops[0][0].endswith("/fusermount3"), stops

    mnt, data = tmp_path / "svc" / "mnt", tmp_path / "svc" / "data"
    moved = (original.replace("/mnt/torrents", str(mnt)).replace("/var/lib/torrentfs", str(data))
             .replace(f"{PREFIX}/bin/torrentfs", str(torrentfs_bin)).replace("port=6881", "port=0"))
    assert moved.count(str(mnt)) >= 4 and str(torrentfs_bin) in moved
    unit_file = tmp_path / "torrentfs.service"
    unit_file.write_text(moved)
    unit = unit_entries(moved)
    procs.add_cleanup(lambda: force_unmount(mnt))

    if shutil.which("systemd-analyze"):
        env = dict(os.environ, MANPATH=str(man_dir(staged)))
        verify = subprocess.run(["systemd-analyze", "verify", str(unit_file)], capture_output=True,
                                text=True, timeout=60, env=env, cwd=tmp_path)
        assert verify.returncode == 0 and verify.stderr == "", verify.stdout + verify.stderr

    def run_step(value: str, timeout: float) -> None:
        argv, ignore = exec_argv(value)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        assert ignore or proc.returncode == 0, f"{argv} exited {proc.returncode}: {proc.stderr}"

    for value in values(unit, "Service", "ExecStartPre"):
        run_step(value, 30)
    assert mnt.is_dir(), "ExecStartPre makes the mount point"
    argv, _ = exec_argv(values(unit, "Service", "ExecStart")[0])
    daemon = procs.start("tfs-service", argv)
    for value in values(unit, "Service", "ExecStartPost"):
        run_step(value, MOUNT_TIMEOUT)
    assert daemon.poll() is None, daemon.tail()
    assert in_mount_table(mnt), f"ExecStartPost returned before {mnt} was mounted"
    status = json.loads(bounded(lambda: (mnt / ".status").read_bytes(), FS_TIMEOUT, ".status"))
    assert status["torrents"] == [] and status["listenPort"] > 0, status
    assert data.is_dir(), "the daemon uses the data= directory of the unit"
    for value in values(unit, "Service", "ExecStop"):
        run_step(value, 30)
    rc = daemon.wait(EXIT_TIMEOUT)
    assert rc == 0, f"daemon exit {rc} after ExecStop\n{daemon.tail()}"
    assert not in_mount_table(mnt)

    # Restart=on-failure after a daemon that died: it left a dead mount behind, which
    # ExecStartPre clears, so the restarted daemon mounts again.
    crashed = procs.start("tfs-service", argv)
    for value in values(unit, "Service", "ExecStartPost"):
        run_step(value, MOUNT_TIMEOUT)
    crashed.popen.send_signal(signal.SIGKILL)
    crashed.wait(EXIT_TIMEOUT)
    assert in_mount_table(mnt), "a killed daemon leaves its mount in the table"
    for value in values(unit, "Service", "ExecStartPre"):
        run_step(value, 30)
    assert not in_mount_table(mnt), "ExecStartPre did not clear the dead mount"
    again = procs.start("tfs-service", argv)
    for value in values(unit, "Service", "ExecStartPost"):
        run_step(value, MOUNT_TIMEOUT)
    assert in_mount_table(mnt), again.tail()
    bounded(lambda: (mnt / ".status").read_bytes(), FS_TIMEOUT, ".status after the restart")
    for value in values(unit, "Service", "ExecStop"):
        run_step(value, 30)
    assert again.wait(EXIT_TIMEOUT) == 0, again.tail()
    assert not in_mount_table(mnt)
