"""Our engine against scripted hostile peers (Tests/interop/hostile.py).

Each test runs ``torrentfs download`` with ``--peer`` of a misbehaving peer and
(usually) of an honest libtorrent seeder whose upload is rate limited, so the
download lasts a few seconds and the hostile peer gets its chance. We assert
that the download completes with the right bytes (exit 0, sha256), that our
client closed the hostile peer's socket soon after the misbehaviour (while it
was still downloading, so not merely because it exited), and, for corrupt data,
that the peer was banned and its pieces came from the honest seeder instead.

Every protocol-level case runs over each ``transport``:

    tcp        plaintext TCP (our client with --encryption off)
    mse        TCP behind an MSE handshake (our default, prefer, tries it first)
    utp        uTP (BEP 29): the hostile peer listens on UDP only (its TCP port
               refuses), so our client's raced dial can only win over uTP; our
               defaults, so MSE over uTP
    utp-plain  the same with --encryption off (plaintext over uTP); only for the
               cases that move the most data over the transport

and each test checks that it really ran over that transport (the hostile
peer's connection log: uTP connection or TCP, MSE or not; a TCP dial to a uTP
peer's port is refused). Then uTP-only cases: a peer that stops acking at the
uTP level (dropped within a bound, an honest transfer completing meanwhile).

Run inside a network namespace with only loopback (see PLATFORM-NOTES.md).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

import swarm as swarm_helpers
from hostile import (Download, HostilePeer, LtSeeder, TorrentFile, free_port, sha256_tree,
                     write_random_files)

# 46 pieces of 32 KiB (not a multiple of 8, so a bitfield has spare bits).
PIECE_LENGTH = 32 * 1024
FILES = {"hostile/a.bin": 700_000, "hostile/b.bin": 800_000}
# Honest seeder's upload limit: ~3 s for the whole content.
HONEST_RATE = 512 * 1024
# Bound for one download.
DOWNLOAD_TIMEOUT = 30
# Bound for a magnet download once the honest seeder is up (normally ~3 s).
METADATA_TIMEOUT = 20
# How soon after misbehaving the hostile peer must be dropped.
DROP_WITHIN = 2.0
# Transports of the protocol-level cases (see the module doc), and the longer list
# for the cases that move the most data over the transport.
TRANSPORTS = ["tcp", "mse", "utp"]
ALL_TRANSPORTS = TRANSPORTS + ["utp-plain"]
# How soon after a uTP peer stops acking our client must drop it. Our uTP gives up
# after 8 retransmission timeouts in a row, doubling from at least 100 ms on
# loopback: 25.5 s at that floor (the bound leaves room for a larger RTT estimate).
MUTE_DROP_WITHIN = 40.0
# Bound for the honest leecher of the mute-peer test.
LEECH_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def swarm(tmp_path_factory, torrentfs_bin):
    root = tmp_path_factory.mktemp("hostile-src")
    write_random_files(root, FILES, seed=7)
    torrent = root / "hostile.torrent"
    subprocess.run([str(torrentfs_bin), "create", str(root / "hostile"), "--piece-length",
                    str(PIECE_LENGTH), "--no-date", "-o", str(torrent)],
                   check=True, capture_output=True, timeout=60)
    t = TorrentFile(torrent, root)
    assert t.piece_count % 8 != 0
    seeder = LtSeeder(torrent, root, upload_limit=HONEST_RATE)
    try:
        yield t, seeder
    finally:
        seeder.stop()


def own_port(reserved: int) -> list:
    """`--port` for our download, never a port reserved for a peer that starts later: left
    to pick any port, the download can be given that very port, dial itself under the
    honest peer's address, and (rightly) never dial that address again."""
    port = free_port()
    while port == reserved:
        port = free_port()
    return ["--port", str(port)]


def hostile(t: TorrentFile, mode: str, variant: str = "", transport: str = "tcp", **kw) -> HostilePeer:
    """The hostile peer for a transport of TRANSPORTS (uTP-only for the uTP ones)."""
    return HostilePeer(t, mode, variant, transport="utp" if transport.startswith("utp") else "tcp", **kw)


def our_flags(transport: str) -> list:
    """Our client's flags for a transport: plaintext for "tcp" and "utp-plain", else
    the defaults (MSE preferred, uTP on)."""
    return ["--encryption", "off"] if transport in ("tcp", "utp-plain") else []


def assert_transport(h: HostilePeer, transport: str, d: Download) -> None:
    """The hostile peer's connections really ran over ``transport``."""
    conns = [c for c in h.connections if c.handshake_ok]
    assert conns, f"no handshake with the hostile peer\n{h.summary()}\n{d.tail()}"
    if transport.startswith("utp"):
        assert all(c.transport == "utp" for c in h.connections), h.summary()
        assert h.tcp_refused(), f"the uTP-only peer's TCP port {h.port} accepted a connection"
        assert h.mux is not None and h.mux.syns_in >= 1, "no uTP SYN reached the hostile peer"
    else:
        assert all(c.transport == "tcp" for c in h.connections), h.summary()
    # MSE: every connection our client opened (the accepted ones) was encrypted, or none
    # was; the hostile peer's own dials (the ban check) are plaintext either way.
    encrypted = transport in ("mse", "utp")
    accepted = [c for c in conns if not c.outgoing]
    assert accepted and all(c.mse == encrypted for c in accepted), \
        f"expected mse={encrypted} on every connection our client opened\n{h.summary()}"


def download(torrentfs_bin, tmp_path: Path, target, peers, extra=(), transport: str = "mse"):
    """Run a download to completion; return (exit code, Download, time it ended)."""
    out, state = tmp_path / "out", tmp_path / "state"
    d = Download(torrentfs_bin, str(target), out, state, tmp_path / "torrentfs.log",
                 peers=peers, extra=list(extra) + our_flags(transport))
    rc = d.wait(DOWNLOAD_TIMEOUT)
    return rc, d, time.monotonic()


def assert_complete(rc, d: Download, t: TorrentFile, tmp_path: Path):
    assert rc == 0, f"download exited {rc} (None = killed after {DOWNLOAD_TIMEOUT} s)\n{d.tail()}"
    got = sha256_tree(tmp_path / "out" / t.name)
    assert got == sha256_tree(t.data_root / t.name), f"downloaded bytes differ\n{d.tail()}"


def assert_dropped(h: HostilePeer, ended: float, d: Download, reason: str = "protocol violation"):
    """The connection where the hostile peer misbehaved was closed by our client
    within DROP_WITHIN seconds (well before the client exited, so not because it
    exited), and the peer was banned: our client never dialed it again. The -vv log
    says why."""
    bad = [c for c in h.incoming if c.misbehaved_at is not None]
    assert bad, f"our client never gave the hostile peer its chance\n{h.summary()}\n{d.tail()}"
    assert len(h.incoming) == 1, f"a peer that broke the protocol was dialed again\n{h.summary()}"
    for c in bad:
        assert c.closed_by_peer, f"hostile connection not closed by our client: {c}\n{d.tail()}"
        assert c.closed_at - c.misbehaved_at <= DROP_WITHIN, f"dropped late: {c}"
    assert bad[0].closed_at < ended - 0.3, f"closed only when the client exited: {bad[0]}"
    pattern = rf"peer=127\.0\.0\.1:{h.port} reason={re.escape(reason)}"
    assert re.search(pattern, d.text()), f"no 'peer closed' log with {pattern!r}\n{d.tail()}"


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest.mark.parametrize("variant", ["huge", "2mib"])
def test_oversized_length_prefix(swarm, torrentfs_bin, tmp_path, variant, transport):
    t, seeder = swarm
    with hostile(t, "oversized", variant, transport) as h:
        rc, d, ended = download(torrentfs_bin, tmp_path, t.path, [h.port, seeder.port],
                                transport=transport)
        with d:
            assert_complete(rc, d, t, tmp_path)
            assert_dropped(h, ended, d)
            assert re.search(r"message of \d+ bytes exceeds", d.text()), d.tail()
            assert_transport(h, transport, d)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("variant", ["have", "request", "piece", "request_length"])
def test_bad_index(swarm, torrentfs_bin, tmp_path, variant, transport):
    t, seeder = swarm
    with hostile(t, "bad_index", variant, transport) as h:
        rc, d, ended = download(torrentfs_bin, tmp_path, t.path, [h.port, seeder.port],
                                transport=transport)
        with d:
            assert_complete(rc, d, t, tmp_path)
            assert_dropped(h, ended, d)
            assert_transport(h, transport, d)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("variant", ["short", "long", "spare_bits"])
def test_bad_bitfield(swarm, torrentfs_bin, tmp_path, variant, transport):
    t, seeder = swarm
    with hostile(t, "bad_bitfield", variant, transport) as h:
        rc, d, ended = download(torrentfs_bin, tmp_path, t.path, [h.port, seeder.port],
                                transport=transport)
        with d:
            assert_complete(rc, d, t, tmp_path)
            assert_dropped(h, ended, d)
            # It never got to serve anything.
            assert all(c.blocks_served == 0 for c in h.connections), h.summary()
            assert_transport(h, transport, d)


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
def test_corrupt_peer_is_banned(swarm, torrentfs_bin, tmp_path, transport):
    t, seeder = swarm
    # Free for TCP and UDP: the ban check dials it over the hostile peer's transport.
    port = swarm_helpers.free_port()
    before = seeder.upload_now()
    with hostile(t, "corrupt", transport=transport, reconnect_to=("127.0.0.1", port)) as h:
        rc, d, ended = download(torrentfs_bin, tmp_path, t.path, [h.port, seeder.port],
                                extra=["--port", str(port)], transport=transport)
        with d:
            log = d.text()
            assert_complete(rc, d, t, tmp_path)
            first = h.incoming[0] if h.incoming else None
            assert first is not None and first.blocks_served > 0, \
                f"the corrupt peer was never asked for data\n{h.summary()}\n{d.tail()}"
            # Hash failure, then the ban, then our client closed the socket.
            failed = {int(p) for p in re.findall(r"piece=(\d+) torrent=\S+ \[TorrentEngine\] hash check failed", log)}
            assert failed, f"no 'hash check failed' in the log\n{d.tail()}"
            assert failed <= first.served_pieces, (failed, first.served_pieces)
            assert re.search(rf"peer=127\.0\.0\.1:{h.port} .*banned peer", log), d.tail()
            assert first.closed_by_peer and first.closed_at < ended - 0.3, first
            # The ban holds: our client does not dial it again, and when it dials
            # us with the same peer id it is dropped right after the handshake.
            assert len(h.incoming) == 1, f"banned peer was dialled again\n{h.summary()}"
            back = [c for c in h.connections if c.outgoing]
            assert back, f"the hostile peer could not try to reconnect\n{h.summary()}"
            assert back[0].closed_by_peer and not back[0].received, \
                f"banned peer id got a working connection: {back[0]}"
            # Every piece the corrupt peer touched was fetched again from the honest
            # seeder: the bytes are right, and it was the only other source, so it
            # uploaded at least the whole content.
            after = seeder.upload_now()
            assert after - before >= t.total_length, (before, after, t.total_length)
            assert_transport(h, transport, d)


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
def test_unrequested_pieces_are_dropped(swarm, torrentfs_bin, tmp_path, transport):
    """Garbage PIECE messages nobody asked for are ignored, not trusted and not
    written; the peer then behaves and the whole download comes from it."""
    t, _ = swarm
    with hostile(t, "unrequested", transport=transport, unrequested_pieces=6) as h:
        rc, d, ended = download(torrentfs_bin, tmp_path, t.path, [h.port], transport=transport)
        with d:
            assert_complete(rc, d, t, tmp_path)
            log = d.text()
            assert "hash check failed" not in log, d.tail()
            assert h.incoming and h.incoming[0].misbehaved_at is not None, h.summary()
            # Our policy: drop the blocks, keep the peer (as libtorrent does).
            assert sum(c.blocks_served for c in h.incoming) >= t.piece_count, h.summary()
            assert_transport(h, transport, d)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("variant", ["huge_size", "bad_hash", "wrong_size"])
def test_lying_metadata(swarm, torrentfs_bin, tmp_path, variant, transport):
    """A magnet with x.pe of a lying peer and an honest seeder. The honest seeder
    comes up only once the liar has had its go (our client retries the address),
    so the liar is always asked first; metadata must still arrive."""
    t, _ = swarm
    honest_port = free_port()
    with hostile(t, "lying_metadata", variant, transport) as h:
        out, state = tmp_path / "out", tmp_path / "state"
        d = Download(torrentfs_bin, t.magnet([h.port, honest_port]), out, state,
                     tmp_path / "torrentfs.log", extra=own_port(honest_port) + our_flags(transport))
        with d:
            if variant == "huge_size":
                # Nothing to serve: wait until it has announced the size.
                h.wait_for(lambda h: any(c.received for c in h.incoming), 10)
                time.sleep(0.5)
            else:
                assert h.wait_for(lambda h: any(c.metadata_served for c in h.incoming), 10), \
                    f"the liar was never asked for metadata\n{h.summary()}\n{d.tail()}"
                time.sleep(0.3)
            with LtSeeder(t.path, t.data_root, port=honest_port):
                rc = d.wait(METADATA_TIMEOUT)
                ended = time.monotonic()
            assert rc == 0, f"download exited {rc} (None = killed after {METADATA_TIMEOUT} s)\n" \
                            f"{h.summary()}\n{d.tail()}"
            assert sha256_tree(out / t.name) == sha256_tree(t.data_root / t.name)
            log = d.text()
            if variant == "huge_size":
                # A size over the limit is not believed: nothing is asked of it.
                assert all(not c.metadata_requests for c in h.incoming), h.summary()
            else:
                assert "metadata does not match the info hash" in log or \
                    re.search(rf"peer=127\.0\.0\.1:{h.port} reason=", log), d.tail()
                assert re.search(rf"peer=127\.0\.0\.1:{h.port} .*banned peer", log), d.tail()
                liar = [c for c in h.incoming if c.metadata_served]
                assert liar[0].closed_by_peer and liar[0].closed_at < ended - 0.3, liar[0]
            assert_transport(h, transport, d)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_lying_metadata_mixed_sources_honest_not_banned(tmp_path_factory, torrentfs_bin, tmp_path, transport):
    """Metadata of several ut_metadata pieces: the liar sends a bad piece 0 and
    rejects the rest, which come from the honest seeder. The mismatch is the
    liar's alone to answer for: the honest seeder must not be banned."""
    root = tmp_path_factory.mktemp("bigmeta-src")
    # ~300 files with long names: an info dict of 2+ metadata pieces.
    files = {f"bigmeta/{i:03d}-{'n' * 70}.bin": 1000 + i for i in range(300)}
    write_random_files(root, files, seed=9)
    torrent = root / "bigmeta.torrent"
    subprocess.run([str(torrentfs_bin), "create", str(root / "bigmeta"), "--piece-length", "32K",
                    "--no-date", "-o", str(torrent)], check=True, capture_output=True, timeout=60)
    t = TorrentFile(torrent, root)
    assert len(t.info_bytes) > 16384
    honest_port = free_port()
    with hostile(t, "lying_metadata", "bad_hash_partial", transport) as h:
        out, state = tmp_path / "out", tmp_path / "state"
        with Download(torrentfs_bin, t.magnet([h.port, honest_port]), out, state,
                      tmp_path / "torrentfs.log", extra=own_port(honest_port) + our_flags(transport)) as d:
            assert h.wait_for(lambda h: any(c.metadata_served for c in h.incoming), 10), \
                f"the liar was never asked for metadata\n{h.summary()}\n{d.tail()}"
            with LtSeeder(t.path, t.data_root, port=honest_port):
                rc = d.wait(METADATA_TIMEOUT)
            assert rc == 0, f"download exited {rc}\n{h.summary()}\n{d.tail()}"
            assert sha256_tree(out / t.name) == sha256_tree(t.data_root / t.name)
            log = d.text()
            assert re.search(rf"peer=127\.0\.0\.1:{h.port} .*banned peer", log), d.tail()
            wrongly = re.findall(rf"peer=(127\.0\.0\.1:(?!{h.port}\b)\d+) .*banned peer", log)
            assert not wrongly, f"honest peer(s) banned for the liar's metadata: {wrongly}\n" + \
                "\n".join(l for l in log.splitlines() if "metadata" in l or "banned" in l)
            assert_transport(h, transport, d)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_banned_peers_blocks_do_not_get_the_honest_seeder_banned(tmp_path_factory, torrentfs_bin, tmp_path,
                                                                  transport):
    """A corrupt peer finishes one piece (which fails: it alone sent it, so it
    is banned) and leaves several pieces partial, its corrupt blocks in them.
    Those blocks come from a banned peer: the honest seeder completing those
    pieces must not be blamed (and banned) for them."""
    root = tmp_path_factory.mktemp("partial-src")
    write_random_files(root, {"partial/a.bin": 1_000_000, "partial/b.bin": 1_000_000}, seed=5)
    torrent = root / "partial.torrent"
    subprocess.run([str(torrentfs_bin), "create", str(root / "partial"), "--piece-length", "64K",
                    "--no-date", "-o", str(torrent)], check=True, capture_output=True, timeout=60)
    t = TorrentFile(torrent, root)
    with hostile(t, "corrupt", "leave_partial", transport) as h, \
            LtSeeder(t.path, t.data_root, upload_limit=HONEST_RATE) as seeder:
        rc, d, ended = download(torrentfs_bin, tmp_path, t.path, [h.port, seeder.port],
                                transport=transport)
        with d:
            assert_complete(rc, d, t, tmp_path)
            log = d.text()
            partial = h.incoming[0].served_pieces if h.incoming else set()
            assert len(partial) >= 3, f"the corrupt peer got too few pieces to work with\n{h.summary()}"
            banned = set(re.findall(r"peer=127\.0\.0\.1:(\d+) .*banned peer", log))
            assert str(h.port) in banned, f"the corrupt peer was not banned\n{d.tail()}"
            assert banned == {str(h.port)}, (
                f"honest seeder (port {seeder.port}, or its incoming connections) banned: "
                f"{sorted(banned - {str(h.port)})}\n" +
                "\n".join(l for l in log.splitlines() if "hash check" in l or "banned" in l))
            assert_transport(h, transport, d)


# ---------------------------------------------------------------------------
# uTP only: a peer that stops acking
# ---------------------------------------------------------------------------

def test_utp_peer_that_stops_acking_is_dropped(swarm, torrentfs_bin, tmp_path, procs):
    """A uTP leecher dials our seeding client, handshakes, asks for blocks, and from
    then on sends nothing at all: our client's blocks are never acknowledged. It must
    be dropped within MUTE_DROP_WITHIN (and then nothing more is sent to it), while an
    honest libtorrent leecher downloads everything from us in the meantime."""
    t, _ = swarm
    port = swarm_helpers.free_port()
    seed = procs.start("tfs-seed", [torrentfs_bin, "seed", t.path, "--data", t.data_root, "--port", port,
                                    "--state", tmp_path / "state", "--natpmp", "off", "--upnp", "off",
                                    "--lsd", "off", "--dht", "off", "-vv"])
    swarm_helpers.wait_tcp("127.0.0.1", port, proc=seed)
    with HostilePeer(t, "mute", "leecher", transport="utp") as h:
        h.dial(("127.0.0.1", port))
        assert h.wait_for(lambda h: any(c.misbehaved_at for c in h.connections), 15), \
            f"the mute peer never got to stop acking\n{h.summary()}\n{seed.tail()}"
        mute = h.connections[0]
        u = h.utp_conns[mute.index]
        assert mute.transport == "utp" and mute.handshake_ok, h.summary()
        save = tmp_path / "lt-out"
        leecher = swarm_helpers.LtPeer(procs, "lt-leech", save, torrent=t.path, connect=[f"127.0.0.1:{port}"])
        leecher.wait_seeding(LEECH_TIMEOUT)
        honest_done = time.monotonic()
        swarm_helpers.assert_same_tree(t.data_root / t.name, save / t.name, "honest leecher beside a mute peer")
        # The drop: our client's -vv log names the mute peer's address (its UDP port).
        pattern = rf"peer=127\.0\.0\.1:{mute.local_port} reason=([^\n]*?) \[TorrentEngine\] peer closed"
        found = None
        while found is None and time.monotonic() < mute.misbehaved_at + MUTE_DROP_WITHIN:
            found = re.search(pattern, seed.stderr() + seed.stdout())
            time.sleep(0.1)
        dropped_at = time.monotonic()
        took = dropped_at - mute.misbehaved_at
        assert found, (f"the mute peer was not dropped within {MUTE_DROP_WITHIN} s\n{h.summary()}\n{u!r} "
                       f"packets while muted at {[round(x - mute.misbehaved_at, 2) for x in u.muted_arrivals]}"
                       f"\n{seed.tail()}")
        print(f"mute uTP peer dropped {took:.1f} s after it stopped acking ({found.group(1)}); "
              f"honest leecher done {honest_done - mute.misbehaved_at:.1f} s after")
        # It went because our blocks went unacked: they were sent to it again (the
        # retransmission timer), and the honest transfer did not wait for that.
        assert u.muted_bytes_in > 0, f"our client never sent the mute peer block data: {u!r}\n{h.summary()}"
        assert len(u.muted_arrivals) >= 3, f"no retransmissions to the mute peer: {u!r}"
        assert honest_done < dropped_at, "the honest leecher finished only after the mute peer was dropped"
        # Once dropped, nothing more is sent to it.
        sent = len(u.muted_arrivals)
        time.sleep(2)
        assert len(u.muted_arrivals) == sent, \
            f"datagrams still sent to a dropped peer: {[round(x - dropped_at, 2) for x in u.muted_arrivals]}"
        assert seed.poll() is None, seed.tail()


def test_utp_seed_that_stops_acking_does_not_stall_the_download(swarm, torrentfs_bin, tmp_path):
    """A uTP-only seeder unchokes us and from then on sends nothing at all: our
    requests to it are never acknowledged. The blocks asked of it must come from the
    honest seeder: the download completes within the usual bound."""
    t, seeder = swarm
    with HostilePeer(t, "mute", transport="utp") as h:
        rc, d, ended = download(torrentfs_bin, tmp_path, t.path, [h.port, seeder.port], transport="utp")
        with d:
            mute = h.incoming[0] if h.incoming else None
            assert mute is not None and mute.misbehaved_at is not None, f"{h.summary()}\n{d.tail()}"
            assert "request" in mute.received, f"our client asked the mute seeder for nothing\n{h.summary()}"
            assert_complete(rc, d, t, tmp_path)
            assert_transport(h, "utp", d)
            u = h.utp_conns[mute.index]
            assert u.muted_arrivals, f"nothing sent to the mute seeder after it went quiet: {u!r}"
