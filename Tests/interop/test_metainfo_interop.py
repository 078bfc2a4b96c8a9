"""Metainfo interoperability with independent BitTorrent implementations.

1. Torrents made at test time by libtorrent (with and without pad files),
   mktorrent and transmission-create: `torrentfs info --json` must agree
   with libtorrent's `torrent_info` on the info hash, the visible file list
   (paths, sizes, offsets, order), the piece length and the piece count.
2. Torrents made by `torrentfs create`: libtorrent loads them with the same
   info hash and files, and its hash check of the original data against our
   torrent finds every piece valid. The create options (--private,
   --tracker tiers, --web-seed, --piece-length, --comment, ...) are checked
   through libtorrent's eyes too.

No networking: the libtorrent session listens on 127.0.0.1 only, with DHT,
LSD, UPnP and NAT-PMP off, and the torrents it gets carry no trackers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest

from conftest import (
    CONTENT_IDS,
    Content,
    lt_pad_count,
    lt_recheck,
    lt_v1_hash,
    lt_visible_files,
    run_tool,
)

# ---------------------------------------------------------------------------
# Torrent makers. Each takes (lt, content, out_path) and writes out_path.
#
# How the tools treat empty (zero-length) files:
#  * libtorrent (lt.add_files) keeps them as 0-byte entries. With
#    canonical_files it also sorts the files and inserts BEP 47 pad files
#    (".pad/N", attr "p") so every file starts on a piece boundary, including
#    a tail pad after the last file; torrentfs must hide those pad files.
#  * mktorrent 1.1 keeps them as 0-byte entries. (Its smallest piece length
#    is 2^15 = 32 KiB: `-l 14` is refused.)
#  * transmission-create 3.00 silently leaves zero-length files out of a
#    directory torrent (and for a lone empty file prints an error yet exits
#    0 without writing anything), so its file list lacks the empty files.
# None of the required content sets is impossible for any tool, so nothing
# is skipped here.
# ---------------------------------------------------------------------------


def _make_libtorrent(lt, content: Content, out: Path, *, piece_size: int, extra_flags=0,
                     v1_only: bool = True) -> None:
    fs = lt.file_storage()
    lt.add_files(fs, str(content.path))
    flags = extra_flags
    if v1_only:
        flags |= lt.create_torrent.v1_only
    ct = lt.create_torrent(fs, piece_size, flags=flags)
    ct.set_creator("libtorrent interop test")
    lt.set_piece_hashes(ct, str(content.parent))
    out.write_bytes(lt.bencode(ct.generate()))


def make_lt_plain(lt, content: Content, out: Path) -> None:
    # v1-only, no pad files (optimize_alignment/canonical_files not set).
    _make_libtorrent(lt, content, out, piece_size=16 * 1024)


def make_lt_padded(lt, content: Content, out: Path) -> None:
    # v1-only with canonical_files: BEP 47 pad files between (and after) files.
    _make_libtorrent(lt, content, out, piece_size=32 * 1024,
                     extra_flags=lt.create_torrent.canonical_files)


def make_lt_padded_no_tail(lt, content: Content, out: Path) -> None:
    # v1-only, pad files between files but none after the last one.
    _make_libtorrent(lt, content, out, piece_size=16 * 1024,
                     extra_flags=lt.create_torrent.canonical_files_no_tail_padding)


def make_mktorrent(lt, content: Content, out: Path) -> None:
    # mktorrent needs no announce URL (it only warns); -l is log2(piece size),
    # 15 (32 KiB) is the smallest it accepts.
    proc = run_tool(["mktorrent", "-l", "15", "-d", "-o", out, content.path])
    assert proc.returncode == 0, proc.stderr + proc.stdout


def make_transmission(lt, content: Content, out: Path) -> None:
    # -s is the piece size in KiB. transmission-create can exit 0 after an
    # error, so also require the output file.
    proc = run_tool(["transmission-create", "-s", "16", "-o", out, content.path])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert out.is_file(), f"transmission-create wrote nothing:\n{proc.stdout}{proc.stderr}"


TOOLS: Dict[str, Tuple[Callable, bool]] = {
    # name: (maker, keeps empty files)
    "libtorrent": (make_lt_plain, True),
    "libtorrent-padded": (make_lt_padded, True),
    "libtorrent-padded-no-tail": (make_lt_padded_no_tail, True),
    "mktorrent": (make_mktorrent, True),
    "transmission-create": (make_transmission, False),
}


def _expected_visible(content: Content, keeps_empty: bool) -> List[Tuple[str, int]]:
    return sorted((p, s) for p, s in content.expected if keeps_empty or s > 0)


def _assert_info_matches_lt(lt, ours: dict, torrent: Path) -> None:
    """torrentfs info --json agrees with libtorrent about this torrent."""
    ti = lt.torrent_info(str(torrent))
    assert ours["kind"] == "torrent"
    assert ours["infoHash"] == lt_v1_hash(ti)
    assert ours["name"] == ti.name()
    assert ours["pieceLength"] == ti.piece_length()
    assert ours["pieceCount"] == ti.num_pieces()
    # totalSize counts pad bytes, as libtorrent's total_size() does.
    assert ours["totalSize"] == ti.total_size()
    assert ours["private"] == bool(ti.priv())

    lt_files = lt_visible_files(lt, torrent)
    our_files = [{"path": f["path"], "size": f["size"], "offset": f["offset"]}
                 for f in ours["files"]]
    assert our_files == lt_files
    for f in ours["files"]:
        assert "/".join(f["pathElements"]) == f["path"]
    assert ours.get("paddingFiles", 0) == lt_pad_count(lt, torrent)

    # The magnet we print names the same torrent for libtorrent.
    atp = lt.parse_magnet_uri(ours["magnet"])
    assert str(atp.info_hashes.v1) == ours["infoHash"]
    assert atp.name == ti.name()


# ---------------------------------------------------------------------------
# 1. Torrents made by other implementations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("content_key", CONTENT_IDS)
@pytest.mark.parametrize("tool", list(TOOLS))
def test_info_matches_libtorrent(tool, content_key, lt, make_content, torrentfs_json, tmp_path):
    maker, keeps_empty = TOOLS[tool]
    content = make_content(content_key)
    torrent = tmp_path / f"{tool}.torrent"
    maker(lt, content, torrent)

    ours = torrentfs_json("info", torrent)
    _assert_info_matches_lt(lt, ours, torrent)

    # And both describe what is on disk.
    visible = sorted((f["path"], f["size"]) for f in ours["files"])
    assert visible == _expected_visible(content, keeps_empty)
    assert ours["name"] == content.name

    if tool.startswith("libtorrent-padded") and not content.single_file:
        # The padded variant must really exercise pad-file hiding.
        assert ours["paddingFiles"] > 0


def test_info_hybrid_v1_v2_torrent(lt, make_content, torrentfs_json, tmp_path):
    """A hybrid (v1 + v2) torrent, libtorrent 2.0's default: torrentfs reads
    its v1 side (the SHA-1 info hash of the whole info dict) and hides the
    pad files that hybrids always carry."""
    content = make_content("odd_sizes")
    torrent = tmp_path / "hybrid.torrent"
    _make_libtorrent(lt, content, torrent, piece_size=16 * 1024, v1_only=False)
    assert lt.torrent_info(str(torrent)).info_hashes().has_v2()
    ours = torrentfs_json("info", torrent)
    _assert_info_matches_lt(lt, ours, torrent)
    assert ours["paddingFiles"] > 0
    assert sorted((f["path"], f["size"]) for f in ours["files"]) == sorted(content.expected)


# ---------------------------------------------------------------------------
# 2. Torrents made by torrentfs create, checked by libtorrent
# ---------------------------------------------------------------------------


def _assert_all_pieces_valid(lt, ses, torrent: Path, save_path: Path) -> None:
    ti, st = lt_recheck(lt, ses, torrent, save_path)
    assert st.errc.value() == 0, f"libtorrent error: {st.errc.message()}"
    assert st.num_pieces == ti.num_pieces(), (
        f"libtorrent found {st.num_pieces}/{ti.num_pieces()} valid pieces "
        f"(state {st.state})"
    )
    assert len(st.pieces) == ti.num_pieces() and all(st.pieces)
    assert st.is_seeding or st.state == lt.torrent_status.seeding


@pytest.mark.parametrize("content_key", CONTENT_IDS)
def test_created_torrent_verified_by_libtorrent(content_key, lt, lt_session, make_content,
                                                torrentfs_json, tmp_path):
    content = make_content(content_key)
    torrent = tmp_path / "ours.torrent"
    created = torrentfs_json("create", content.path, "-o", torrent, "--no-date")
    assert torrent.is_file()

    ti = lt.torrent_info(str(torrent))
    assert created["infoHash"] == lt_v1_hash(ti)
    assert created["pieceLength"] == ti.piece_length()
    assert created["pieceCount"] == ti.num_pieces()
    assert not ti.info_hashes().has_v2()
    assert ti.name() == content.name
    assert ti.creation_date() == 0  # --no-date

    ours = torrentfs_json("info", torrent)
    assert ours["infoHash"] == created["infoHash"]
    _assert_info_matches_lt(lt, ours, torrent)
    # Every file on disk is in the torrent, empty ones included.
    assert sorted((f["path"], f["size"]) for f in ours["files"]) == sorted(content.expected)

    _assert_all_pieces_valid(lt, lt_session, torrent, content.parent)


def test_libtorrent_recheck_detects_corruption(lt, lt_session, make_content, torrentfs_json,
                                               tmp_path):
    """Negative control: the recheck harness really checks the data."""
    content = make_content("odd_sizes")
    torrent = tmp_path / "ours.torrent"
    torrentfs_json("create", content.path, "-o", torrent, "--piece-length", "16384")
    victim = content.path / "s1000003.bin"
    data = bytearray(victim.read_bytes())
    data[500_000] ^= 0xFF
    victim.write_bytes(bytes(data))

    ti, st = lt_recheck(lt, lt_session, torrent, content.parent)
    assert st.num_pieces == ti.num_pieces() - 1
    assert not st.is_seeding


def test_create_private(lt, make_content, torrentfs_json, tmp_path):
    content = make_content("multi")
    public = torrentfs_json("create", content.path, "-o", tmp_path / "pub.torrent", "--no-date")
    private = torrentfs_json("create", content.path, "-o", tmp_path / "priv.torrent",
                             "--no-date", "--private")

    assert not lt.torrent_info(str(tmp_path / "pub.torrent")).priv()
    ti = lt.torrent_info(str(tmp_path / "priv.torrent"))
    assert ti.priv()
    assert lt_v1_hash(ti) == private["infoHash"]
    # "private" lives in the info dictionary, so the info hash changes.
    assert private["infoHash"] != public["infoHash"]
    assert torrentfs_json("info", tmp_path / "priv.torrent")["private"] is True


def test_create_tracker_tiers(lt, make_content, torrentfs_json, tmp_path):
    content = make_content("single")
    torrent = tmp_path / "t.torrent"
    a = "http://a.example/announce"
    b = "http://b.example:8080/announce"
    c = "udp://c.example:6969/announce"
    torrentfs_json("create", content.path, "-o", torrent,
                   "--tracker", f"{a},{b}", "--tracker", c)

    ti = lt.torrent_info(str(torrent))
    tiers: Dict[int, set] = {}
    for ae in ti.trackers():
        tiers.setdefault(ae.tier, set()).add(ae.url)
    # libtorrent shuffles the URLs within a tier (BEP 12), so compare sets.
    assert tiers == {0: {a, b}, 1: {c}}

    # The raw metainfo keeps our order.
    meta = lt.bdecode(torrent.read_bytes())
    assert meta[b"announce"] == a.encode()
    assert meta[b"announce-list"] == [[a.encode(), b.encode()], [c.encode()]]

    ours = torrentfs_json("info", torrent)
    assert ours["trackerTiers"] == [[a, b], [c]]
    assert ours["trackers"] == [a, b, c]
    assert lt_v1_hash(ti) == ours["infoHash"]


def test_create_web_seeds(lt, make_content, torrentfs_json, tmp_path):
    content = make_content("multi")
    torrent = tmp_path / "ws.torrent"
    w1 = "http://seed1.example/files/"
    w2 = "https://seed2.example/mirror/"
    torrentfs_json("create", content.path, "-o", torrent, "--web-seed", w1, "--web-seed", w2)

    ti = lt.torrent_info(str(torrent))
    seeds = ti.web_seeds()
    assert [s["url"] for s in seeds] == [w1, w2]
    # Type 0 is a BEP 19 url seed (1 would be a BEP 17 http seed).
    assert all(s["type"] == 0 for s in seeds)
    assert torrentfs_json("info", torrent)["webSeeds"] == [w1, w2]


@pytest.mark.parametrize("arg,expected", [
    ("16384", 16 * 1024),
    ("65536", 64 * 1024),
    ("64K", 64 * 1024),
    ("1M", 1024 * 1024),
    ("48K", 48 * 1024),  # not a power of two: fine for v1, libtorrent agrees
])
def test_create_piece_length(arg, expected, lt, lt_session, make_content, torrentfs_json,
                             tmp_path):
    content = make_content("odd_sizes")
    torrent = tmp_path / "pl.torrent"
    created = torrentfs_json("create", content.path, "-o", torrent, "--piece-length", arg)
    ti = lt.torrent_info(str(torrent))
    assert ti.piece_length() == expected
    assert created["pieceLength"] == expected
    total = sum(s for _, s in content.expected)
    assert ti.num_pieces() == -(-total // expected)
    _assert_all_pieces_valid(lt, lt_session, torrent, content.parent)


def test_create_comment(lt, make_content, torrentfs_json, tmp_path):
    content = make_content("single")
    torrent = tmp_path / "c.torrent"
    comment = "Ünïcødé comment ✓ with spaces"
    torrentfs_json("create", content.path, "-o", torrent, "--comment", comment)
    assert lt.torrent_info(str(torrent)).comment() == comment
    assert torrentfs_json("info", torrent)["comment"] == comment


def test_create_all_options_together(lt, lt_session, make_content, torrentfs_json, tmp_path):
    content = make_content("nested")
    torrent = tmp_path / "all.torrent"
    created = torrentfs_json(
        "create", content.path, "-o", torrent,
        "--tracker", "http://t1.example/a,http://t2.example/a",
        "--tracker", "http://t3.example/a",
        "--web-seed", "http://ws.example/",
        "--piece-length", "32K", "--private", "--comment", "all of them", "--threads", "2",
    )
    ti = lt.torrent_info(str(torrent))
    assert lt_v1_hash(ti) == created["infoHash"]
    assert ti.priv()
    assert ti.piece_length() == 32 * 1024
    assert ti.comment() == "all of them"
    assert sorted((t.tier, t.url) for t in ti.trackers()) == [
        (0, "http://t1.example/a"), (0, "http://t2.example/a"), (1, "http://t3.example/a")]
    assert [s["url"] for s in ti.web_seeds()] == ["http://ws.example/"]
    # Check the pieces with a tracker-less, web-seed-less copy so the session
    # never tries to reach the network (same info dict, same info hash).
    meta = lt.bdecode(torrent.read_bytes())
    stripped = {b"info": meta[b"info"]}
    bare = tmp_path / "bare.torrent"
    bare.write_bytes(lt.bencode(stripped))
    assert lt_v1_hash(lt.torrent_info(str(bare))) == created["infoHash"]
    _assert_all_pieces_valid(lt, lt_session, bare, content.parent)


def test_create_is_reproducible_and_thread_independent(make_content, torrentfs_json, tmp_path):
    content = make_content("odd_sizes")
    outs = []
    for threads in ("1", "3"):
        out = tmp_path / f"t{threads}.torrent"
        torrentfs_json("create", content.path, "-o", out, "--no-date",
                       "--piece-length", "16K", "--threads", threads)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_create_source_changes_info_hash(lt, make_content, torrentfs_json, tmp_path):
    content = make_content("multi")
    plain = torrentfs_json("create", content.path, "-o", tmp_path / "a.torrent", "--no-date")
    tagged = torrentfs_json("create", content.path, "-o", tmp_path / "b.torrent", "--no-date",
                            "--source", "TRACKER-X")
    assert plain["infoHash"] != tagged["infoHash"]
    meta = lt.bdecode((tmp_path / "b.torrent").read_bytes())
    assert meta[b"info"][b"source"] == b"TRACKER-X"
    assert lt_v1_hash(lt.torrent_info(str(tmp_path / "b.torrent"))) == tagged["infoHash"]


def test_same_torrent_as_libtorrent_for_same_layout(lt, make_content, torrentfs_json, tmp_path):
    """For a single file with the same piece length, torrentfs and libtorrent
    (v1-only, no pads) produce the same info dictionary, hence info hash."""
    content = make_content("single_1000003")
    ours = torrentfs_json("create", content.path, "-o", tmp_path / "ours.torrent",
                          "--no-date", "--piece-length", "16384")
    theirs = tmp_path / "lt.torrent"
    make_lt_plain(lt, content, theirs)
    assert ours["infoHash"] == lt_v1_hash(lt.torrent_info(str(theirs)))
