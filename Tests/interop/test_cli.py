"""CLI behaviour of `torrentfs info` and `torrentfs create`: clean one-line
errors, magnet parsing, help output."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

CRASH_MARKERS = ("Fatal error", "Stack dump", "Traceback", "Backtrace",
                 "Segmentation fault", "Illegal instruction", "Current stack trace")

SAMPLE_HASH = "cd038e775989a8a687ee04dc1786e5d4ffced4f0"


def assert_clean_error(proc) -> str:
    """Non-zero exit, exactly one stderr line starting with "Error:", no crash
    output, nothing on stdout. Returns the error line."""
    assert proc.returncode != 0, f"expected failure, got 0; stdout:\n{proc.stdout}"
    # A Swift runtime trap shows up as a signal (negative return code).
    assert proc.returncode > 0, f"killed by signal {-proc.returncode}"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{proc.stderr}"
    assert lines[0].startswith("Error:"), lines[0]
    for marker in CRASH_MARKERS:
        assert marker not in proc.stderr and marker not in proc.stdout, proc.stderr
    assert proc.stdout == "", f"unexpected stdout on error:\n{proc.stdout}"
    return lines[0]


@pytest.fixture
def valid_torrent(tmp_path, run_torrentfs) -> Path:
    content = tmp_path / "content"
    (content / "sub").mkdir(parents=True)
    (content / "a.bin").write_bytes(bytes(range(256)) * 300)
    (content / "sub" / "b.txt").write_text("hello world\n" * 100)
    out = tmp_path / "valid.torrent"
    run_torrentfs("create", content, "-o", out, "--tracker", "http://t.example/announce",
                  "--comment", "a comment", check=True)
    return out


# ---------------------------------------------------------------------------
# info: errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("json_flag", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "not-a-dict",
                                  "directory"])
def test_info_bad_file(case, json_flag, tmp_path, run_torrentfs):
    target = tmp_path / f"{case}.torrent"
    if case == "empty":
        target.write_bytes(b"")
    elif case == "garbage":
        target.write_bytes(bytes((i * 37 + 11) % 256 for i in range(1000)))
    elif case == "not-a-dict":
        target.write_bytes(b"li1ei2ee")
    elif case == "directory":
        target.mkdir()
    args = ["info", target] + (["--json"] if json_flag else [])
    assert_clean_error(run_torrentfs(*args))


@pytest.mark.parametrize("json_flag", [False, True], ids=["text", "json"])
def test_info_truncated_torrent_reports_offset(json_flag, valid_torrent, tmp_path, run_torrentfs):
    data = valid_torrent.read_bytes()
    half = tmp_path / "half.torrent"
    half.write_bytes(data[: len(data) // 2])
    args = ["info", half] + (["--json"] if json_flag else [])
    line = assert_clean_error(run_torrentfs(*args))
    m = re.search(r"at byte (\d+)", line)
    assert m, f"no byte offset in: {line}"
    assert int(m.group(1)) <= len(data) // 2


@pytest.mark.parametrize("cut", [1, 10, 50, 100, -2, -1])
def test_info_truncated_at_various_points(cut, valid_torrent, tmp_path, run_torrentfs):
    data = valid_torrent.read_bytes()
    bad = tmp_path / "cut.torrent"
    bad.write_bytes(data[:cut] if cut > 0 else data[:len(data) + cut])
    assert_clean_error(run_torrentfs("info", bad, "--json"))


@pytest.mark.parametrize("magnet", [
    "magnet:?xt=urn:btih:zzz",
    "magnet:?dn=only-a-name",
    "magnet:?xt=urn:btih:" + SAMPLE_HASH[:-1],          # 39 hex digits
    "magnet:?xt=urn:btih:" + "g" * 40,                  # not hex
    "magnet:?xt=urn:btih:" + "1" * 32,                  # '1' is not base32
    "magnet:",
    "magnet:?",
], ids=["short", "no-xt", "39-hex", "non-hex", "bad-base32", "bare", "empty-query"])
def test_info_bad_magnet(magnet, run_torrentfs):
    assert_clean_error(run_torrentfs("info", magnet))
    assert_clean_error(run_torrentfs("info", magnet, "--json"))


def test_info_valid_torrent_text_and_json(valid_torrent, run_torrentfs):
    text = run_torrentfs("info", valid_torrent, check=True)
    assert text.stderr == ""
    info = json.loads(run_torrentfs("info", valid_torrent, "--json", check=True).stdout)
    assert info["kind"] == "torrent"
    assert info["infoHash"] in text.stdout
    assert info["comment"] == "a comment"
    assert [f["path"] for f in info["files"]] == ["a.bin", "sub/b.txt"]


# ---------------------------------------------------------------------------
# info: magnets
# ---------------------------------------------------------------------------

def _selected(value) -> set:
    """selectedFiles as a set of indices, whether printed as indices or as
    [first, last] ranges."""
    out = set()
    for item in value:
        if isinstance(item, list):
            assert len(item) == 2, item
            out.update(range(item[0], item[1] + 1))
        elif isinstance(item, dict):
            lo = item.get("first", item.get("from", item.get("start")))
            hi = item.get("last", item.get("to", item.get("end")))
            out.update(range(lo, hi + 1))
        else:
            out.add(item)
    return out


def test_info_magnet_with_peers_trackers_selection(run_torrentfs):
    magnet = (
        f"magnet:?xt=urn:btih:{SAMPLE_HASH.upper()}"
        "&dn=My%20Show%20%C3%9C"
        "&xl=123456"
        "&tr=http%3A%2F%2Ftracker.example%2Fannounce"
        "&tr=udp%3A%2F%2Fudp.example%3A1337"
        "&ws=http%3A%2F%2Fws.example%2Fdata%2F"
        "&x.pe=10.0.0.1:6881"
        "&x.pe=%5B2001%3Adb8%3A%3A1%5D%3A51413"
        "&so=0,2,4-6"
    )
    info = json.loads(run_torrentfs("info", magnet, "--json", check=True).stdout)
    assert info["kind"] == "magnet"
    assert info["infoHash"] == SAMPLE_HASH
    assert info["name"] == "My Show Ü"
    assert info["totalSize"] == 123456
    assert info["trackers"] == ["http://tracker.example/announce", "udp://udp.example:1337"]
    assert info["webSeeds"] == ["http://ws.example/data/"]
    assert info["peers"] == ["10.0.0.1:6881", "[2001:db8::1]:51413"]
    assert _selected(info["selectedFiles"]) == {0, 2, 4, 5, 6}
    assert info["magnet"].startswith(f"magnet:?xt=urn:btih:{SAMPLE_HASH}")

    text = run_torrentfs("info", magnet, check=True).stdout
    for needle in (SAMPLE_HASH, "10.0.0.1:6881", "udp://udp.example:1337"):
        assert needle in text


def test_info_magnet_base32_and_bare_hash(run_torrentfs):
    b32 = base64.b32encode(bytes.fromhex(SAMPLE_HASH)).decode()
    info = json.loads(run_torrentfs("info", f"magnet:?xt=urn:btih:{b32}", "--json",
                                    check=True).stdout)
    assert info["infoHash"] == SAMPLE_HASH
    bare = json.loads(run_torrentfs("info", SAMPLE_HASH, "--json", check=True).stdout)
    assert bare["kind"] == "magnet"
    assert bare["infoHash"] == SAMPLE_HASH


def test_info_magnet_round_trips_through_libtorrent(lt, run_torrentfs):
    magnet = (f"magnet:?xt=urn:btih:{SAMPLE_HASH}&dn=x%20y"
              "&tr=http%3A%2F%2Ft.example%2Fa&x.pe=127.0.0.1:6881")
    info = json.loads(run_torrentfs("info", magnet, "--json", check=True).stdout)
    atp = lt.parse_magnet_uri(info["magnet"])
    assert str(atp.info_hashes.v1) == SAMPLE_HASH
    assert atp.name == "x y"
    assert list(atp.trackers) == ["http://t.example/a"]


# ---------------------------------------------------------------------------
# create: errors and defaults
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["empty-dir", "only-empty-files", "missing", "empty-file"])
def test_create_bad_input(case, tmp_path, run_torrentfs):
    if case == "empty-dir":
        target = tmp_path / "emptydir"
        target.mkdir()
    elif case == "only-empty-files":
        target = tmp_path / "zeros"
        (target / "sub").mkdir(parents=True)
        (target / "a").write_bytes(b"")
        (target / "sub" / "b").write_bytes(b"")
    elif case == "empty-file":
        target = tmp_path / "empty.bin"
        target.write_bytes(b"")
    else:
        target = tmp_path / "does-not-exist"
    out = tmp_path / "out.torrent"
    assert_clean_error(run_torrentfs("create", target, "-o", out))
    assert not out.exists(), "a failed create must not leave a .torrent behind"
    assert_clean_error(run_torrentfs("create", target, "-o", out, "--json"))
    assert not out.exists()


@pytest.mark.parametrize("piece_length", ["1000", "0", "abc", "-16384"])
def test_create_bad_piece_length(piece_length, tmp_path, run_torrentfs):
    f = tmp_path / "f.bin"
    f.write_bytes(b"x" * 100_000)
    out = tmp_path / "out.torrent"
    line = assert_clean_error(
        run_torrentfs("create", f, "-o", out, f"--piece-length={piece_length}"))
    assert "piece length" in line
    assert not out.exists()


def test_create_default_output_and_magnet(tmp_path, run_torrentfs):
    f = tmp_path / "movie.mkv"
    f.write_bytes(b"\x01" * 70_000)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    proc = run_torrentfs("create", f, cwd=workdir, check=True)
    assert (workdir / "movie.mkv.torrent").is_file()
    magnet = proc.stdout.strip()
    assert magnet.startswith("magnet:?xt=urn:btih:")
    info = json.loads(run_torrentfs("info", workdir / "movie.mkv.torrent", "--json",
                                    check=True).stdout)
    assert info["magnet"] == magnet
    # The printed magnet is itself accepted by info.
    assert json.loads(run_torrentfs("info", magnet, "--json", check=True).stdout)[
        "infoHash"] == info["infoHash"]


# ---------------------------------------------------------------------------
# help
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["info", "--help"], ["create", "--help"], ["help", "info"], ["help", "create"],
    ["--help"], ["info", "-h"], ["create", "-h"],
])
def test_help(args, run_torrentfs):
    proc = run_torrentfs(*args)
    assert proc.returncode == 0, proc.stderr
    assert "USAGE" in proc.stdout.upper()
    if len(args) > 1 or args[0] != "--help":
        sub = "info" if "info" in args else "create"
        assert f"torrentfs {sub}" in proc.stdout
    for marker in CRASH_MARKERS:
        assert marker not in proc.stderr


def test_version(run_torrentfs):
    proc = run_torrentfs("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip()
