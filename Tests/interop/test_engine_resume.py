"""Resume data, restarts and rate limits of ``torrentfs download``, measured
from the other side: an honest libtorrent seeder (hostile.LtSeeder) reports
how many payload bytes it uploaded, so "nothing verified was fetched twice" is
"the seeder uploaded about the content size in total".

Run inside a network namespace with only loopback (see PLATFORM-NOTES.md).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from hostile import Download, LtSeeder, TorrentFile, sha256_tree, write_random_files

PIECE_LENGTH = 32 * 1024
# ~4 MiB in two files; at RESUME_RATE a download takes ~4 s.
FILES = {"resume/first.bin": 1_500_000, "resume/second.bin": 2_700_000}
RESUME_RATE = 1024 * 1024
# Bytes a restart may fetch again: the pieces that were in flight, unverified,
# when the first run stopped (partly received, or received and still being hashed),
# plus blocks the seeder had sent that were not read before the close. Verified
# pieces fetched again would be far more: the first run stops at 40-70 % of ~4 MB.
REFETCH_MARGIN = 4 * PIECE_LENGTH
# Bound for one download.
DOWNLOAD_TIMEOUT = 40
# A clean shutdown (SIGINT: save resume data, close peers) takes at most this long.
SHUTDOWN_WITHIN = 2.0


def make_torrent(torrentfs_bin, root: Path, files, seed: int, piece_length: int) -> TorrentFile:
    write_random_files(root, files, seed=seed)
    name = next(iter(files)).split("/")[0]
    torrent = root / f"{name}.torrent"
    subprocess.run([str(torrentfs_bin), "create", str(root / name), "--piece-length",
                    str(piece_length), "--no-date", "-o", str(torrent)],
                   check=True, capture_output=True, timeout=120)
    return TorrentFile(torrent, root)


@pytest.fixture(scope="module")
def content(tmp_path_factory, torrentfs_bin) -> TorrentFile:
    return make_torrent(torrentfs_bin, tmp_path_factory.mktemp("resume-src"), FILES, 11, PIECE_LENGTH)


def same_bytes(t: TorrentFile, out: Path) -> bool:
    return sha256_tree(out / t.name) == sha256_tree(t.data_root / t.name)


def wait_upload(seeder: LtSeeder, d: Download, at_least: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if seeder.upload >= at_least:
            return seeder.upload
        assert d.running(), f"download ended early\n{d.tail()}"
        time.sleep(0.05)
    pytest.fail(f"seeder uploaded only {seeder.upload} of {at_least} bytes in {timeout} s\n{d.tail()}")


def stop_midway(t: TorrentFile, tmp_path: Path, torrentfs_bin, how: str):
    """Download with a rate-limited seeder, stop the client (SIGINT or SIGKILL)
    at 40-70 %, restart it with the same --state and -o, and return
    (seeder upload over both runs, second run's Download)."""
    out, state = tmp_path / "out", tmp_path / "state"
    with LtSeeder(t.path, t.data_root, upload_limit=RESUME_RATE) as seeder:
        d1 = Download(torrentfs_bin, str(t.path), out, state, tmp_path / "run1.log", peers=[seeder.port])
        with d1:
            # The counter lags up to a second behind: this stops at ~40-70 %.
            wait_upload(seeder, d1, int(0.4 * t.total_length))
            if how == "int":
                sent = time.monotonic()
                rc1 = d1.interrupt(timeout=15)
                took = time.monotonic() - sent
                assert rc1 == 130, f"SIGINT: exit {rc1} (None = still running after 15 s), want 130\n{d1.tail()}"
                assert took <= SHUTDOWN_WITHIN, (
                    f"SIGINT took {took:.1f} s to stop the download (the seeder uploaded "
                    f"{seeder.upload_now()} of {t.total_length} bytes meanwhile)\n{d1.tail()}")
            else:
                d1.kill()
        first = seeder.upload_now()
        assert first < t.total_length, f"first run was not stopped midway ({first} bytes)"
        d2 = Download(torrentfs_bin, str(t.path), out, state, tmp_path / "run2.log", peers=[seeder.port])
        with d2:
            rc2 = d2.wait(DOWNLOAD_TIMEOUT)
            assert rc2 == 0, f"restart exited {rc2}\n{d2.tail()}"
            assert same_bytes(t, out), f"bytes differ after the restart\n{d2.tail()}"
            total = seeder.upload_now()
        return first, total, d2


def test_sigint_restart_refetches_nothing_verified(content, torrentfs_bin, tmp_path):
    t = content
    first, total, d2 = stop_midway(t, tmp_path, torrentfs_bin, "int")
    assert total <= t.total_length + REFETCH_MARGIN, (
        f"seeder uploaded {total} bytes over both runs ({first} in the first) for "
        f"{t.total_length} bytes of content: verified pieces were fetched again\n{d2.tail(15)}")


def test_kill9_restart_completes_and_keeps_verified_pieces(content, torrentfs_bin, tmp_path):
    t = content
    first, total, d2 = stop_midway(t, tmp_path, torrentfs_bin, "kill")
    print(f"kill -9: first run {first} bytes, both runs {total} bytes, content {t.total_length}")
    # Bytes are right (checked in stop_midway): nothing unverified was trusted.
    # No resume data was saved (it is saved every 30 s): the restart must find
    # the verified pieces by hashing what is on disk, not fetch them again.
    assert total <= t.total_length + REFETCH_MARGIN, (
        f"seeder uploaded {total} bytes over both runs ({first} in the first) for "
        f"{t.total_length} bytes of content: pieces on disk were fetched again\n{d2.tail(15)}")


def test_changed_byte_is_rechecked_and_refetched(content, torrentfs_bin, tmp_path):
    t = content
    out, state = tmp_path / "out", tmp_path / "state"
    with LtSeeder(t.path, t.data_root) as seeder:
        with Download(torrentfs_bin, str(t.path), out, state, tmp_path / "run1.log",
                      peers=[seeder.port]) as d1:
            assert d1.wait(DOWNLOAD_TIMEOUT) == 0, d1.tail()
        assert same_bytes(t, out)
        before = seeder.upload_now()
        assert before >= t.total_length
        # One byte in the middle of the second file, behind the client's back.
        victim = out / t.name / "second.bin"
        st = victim.stat()
        with open(victim, "r+b") as f:
            f.seek(st.st_size // 2)
            b = f.read(1)
            f.seek(st.st_size // 2)
            f.write(bytes([b[0] ^ 0xFF]))
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
        assert not same_bytes(t, out)
        with Download(torrentfs_bin, str(t.path), out, state, tmp_path / "run2.log",
                      peers=[seeder.port]) as d2:
            rc = d2.wait(DOWNLOAD_TIMEOUT)
            assert rc == 0, f"second run exited {rc}\n{d2.tail()}"
            assert same_bytes(t, out), f"the changed byte was not repaired\n{d2.tail()}"
            again = seeder.upload_now() - before
            assert 0 < again <= 3 * PIECE_LENGTH, (
                f"second run fetched {again} bytes; want the one damaged piece "
                f"({PIECE_LENGTH} bytes)\n{d2.tail(15)}")


# ~40 MB; the limit under test.
LIMIT_FILES = {"limit/big.bin": 40_000_000}
LIMIT = 2 * 1048576
LIMIT_TOLERANCE = 0.15


def test_download_limit_holds(torrentfs_bin, tmp_path_factory, tmp_path):
    t = make_torrent(torrentfs_bin, tmp_path_factory.mktemp("limit-src"), LIMIT_FILES, 12, 256 * 1024)
    with LtSeeder(t.path, t.data_root, interval=0.02) as seeder:
        start = time.monotonic()
        with Download(torrentfs_bin, str(t.path), tmp_path / "out", tmp_path / "state",
                      tmp_path / "run.log", peers=[seeder.port], extra=["--download-limit", "2M"],
                      verbose=False) as d:
            while time.monotonic() < start + 13.5:
                assert d.running(), f"download ended early\n{d.tail()}"
                time.sleep(0.1)
            d.kill()  # the measurement is over; how it stops is another test's business
        changes = seeder.changes()

    def at(when: float):
        # The first tick at or after `when`.
        return next(c for c in changes if c[0] >= when)

    (t0, v0), (t1, v1) = at(start + 2), at(start + 12)
    rate = (v1 - v0) / (t1 - t0)
    print(f"measured {rate / 1048576:.3f} MiB/s over {t1 - t0:.2f} s")
    assert abs(rate - LIMIT) <= LIMIT_TOLERANCE * LIMIT, (
        f"download ran at {rate / 1048576:.2f} MiB/s between t=2 s and t=12 s with "
        f"--download-limit 2M\n{changes}")
