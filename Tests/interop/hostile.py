"""Scripted peers for the engine's hostile-peer and resume tests.

* ``HostilePeer``: a BitTorrent peer in plain Python (threads and sockets) that
  listens on 127.0.0.1, answers the BEP 3 handshake (and BEP 10 / BEP 9 when
  the other side supports extensions), serves the torrent's real data read from
  the source files, and misbehaves according to a *mode*. Everything it sees is
  recorded in ``HostilePeer.connections`` (one ``ConnLog`` per connection) so
  tests can assert whether our client disconnected it.
* ``LtSeeder``: an honest libtorrent seeder in a subprocess (this file run as a
  script, ``python3 hostile.py lt-seed ...``) that prints its upload counter as
  JSON lines; the parent follows them in a thread.
* ``Download``: our ``torrentfs download`` in a subprocess, logs in a file.

Modes (``variant`` picks the flavour):

    honest          behaves (for baselines)
    corrupt         flips the first byte of every block it sends; when our
                    client drops it, dials our listen port (``reconnect_to``)
                    with the same peer id to see whether the ban holds.
                    "leave_partial": holds back the last block of each piece,
                    finishing only the first one, so partial pieces full of
                    its corrupt blocks are left for others to complete
    oversized       right after the handshake, a length prefix of 0x7fffffff
                    (variant "huge") or 2 MiB ("2mib", followed by that many
                    bytes) instead of a real message
    bad_index       bitfield + unchoke, then HAVE / REQUEST / PIECE with an
                    index = piece count (variants "have", "request", "piece"),
                    or a REQUEST whose length is 32 KiB ("request_length")
    unrequested     bitfield, PIECE messages nobody asked for with garbage in
                    them, then unchoke and serve real data
    lying_metadata  advertises metadata_size 100 MiB ("huge_size"), or the
                    right size but serves ut_metadata pieces with flipped bytes
                    ("bad_hash"; "bad_hash_partial": only piece 0, and
                    rejects the others so they come from someone else), or a
                    plausible wrong size with garbage ("wrong_size");
                    otherwise serves real data
    bad_bitfield    a bitfield one byte short ("short"), one byte long
                    ("long"), or of the right length with spare bits set
                    ("spare_bits")
    mute            (uTP only) stops acking right after the message that makes
                    our client send it data: as a seeder ("" variant) after its
                    bitfield + unchoke (our requests go unacked), as a leecher
                    ("leecher") after its requests (our blocks go unacked); from
                    then on it sends nothing at all (no acks, no data) and only
                    counts and reads what our client sends

Transports (``transport``): "tcp" listens on a TCP port (an MSE handshake is
taken as well as a plaintext one); "utp" listens on a UDP port only (BEP 29,
utp_peer.py), and holds the TCP port of the same number bound but not listening,
so a TCP dial to it is refused and nothing else can take it: our client can only
reach it over uTP. ``dial(addr)`` makes the peer connect to our client instead
(over its transport), and behave as it does on accepted connections.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import mse_peer
import utp_peer

BLOCK = 16 * 1024
PSTR = b"\x13BitTorrent protocol"

# Message ids (BEP 3, BEP 6, BEP 10).
CHOKE, UNCHOKE, INTERESTED, NOT_INTERESTED, HAVE, BITFIELD, REQUEST, PIECE, CANCEL = range(9)
HAVE_ALL, HAVE_NONE, REJECT = 14, 15, 16
EXTENDED = 20
MSG_NAMES = {0: "choke", 1: "unchoke", 2: "interested", 3: "not_interested", 4: "have",
             5: "bitfield", 6: "request", 7: "piece", 8: "cancel", 9: "port",
             13: "suggest", 14: "have_all", 15: "have_none", 16: "reject",
             17: "allowed_fast", 20: "extended"}
# Our ut_metadata id in the extension handshake we send.
OUR_UT_METADATA = 3

MODES = ("honest", "corrupt", "oversized", "bad_index", "unrequested",
         "lying_metadata", "bad_bitfield", "mute")
TRANSPORTS = ("tcp", "utp")


# ---------------------------------------------------------------------------
# Bencode (just what the tests need)
# ---------------------------------------------------------------------------

def _bdecode(data: bytes, i: int):
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            v, i = _bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            k, i = _bdecode(data, i)
            v, i = _bdecode(data, i)
            out[k] = v
        return out, i + 1
    colon = data.index(b":", i)
    n = int(data[i:colon])
    return data[colon + 1:colon + 1 + n], colon + 1 + n


def bdecode(data: bytes):
    value, end = _bdecode(data, 0)
    return value


def bdecode_prefix(data: bytes):
    """Decode one value at the start of data; return (value, bytes consumed)."""
    return _bdecode(data, 0)


def bencode(v) -> bytes:
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in items) + b"e"
    raise TypeError(type(v))


def _info_span(data: bytes) -> Tuple[int, int]:
    """Byte range of the info dict's value inside a .torrent file."""
    assert data[:1] == b"d"
    i = 1
    while data[i:i + 1] != b"e":
        key, i = _bdecode(data, i)
        start = i
        _, i = _bdecode(data, i)
        if key == b"info":
            return start, i
    raise ValueError("no info dict")


# ---------------------------------------------------------------------------
# The torrent and its data
# ---------------------------------------------------------------------------

class TorrentFile:
    """A v1 .torrent and the data behind it (``data_root`` holds ``name``)."""

    def __init__(self, torrent_path: Path, data_root: Path):
        raw = Path(torrent_path).read_bytes()
        start, end = _info_span(raw)
        self.path = Path(torrent_path)
        self.info_bytes = raw[start:end]
        self.info_hash = hashlib.sha1(self.info_bytes).digest()
        info = bdecode(self.info_bytes)
        self.name = info[b"name"].decode()
        self.piece_length = info[b"piece length"]
        self.hashes = [info[b"pieces"][i:i + 20] for i in range(0, len(info[b"pieces"]), 20)]
        self.data_root = Path(data_root)
        if b"files" in info:
            self.files = [(self.data_root / self.name / Path(*[p.decode() for p in f[b"path"]]),
                           f[b"length"]) for f in info[b"files"]]
        else:
            self.files = [(self.data_root / self.name, info[b"length"])]
        self.total_length = sum(n for _, n in self.files)
        self.piece_count = len(self.hashes)

    @property
    def info_hash_hex(self) -> str:
        return self.info_hash.hex()

    def magnet(self, peers: Sequence[int] = ()) -> str:
        pe = "".join(f"&x.pe=127.0.0.1:{p}" for p in peers)
        return f"magnet:?xt=urn:btih:{self.info_hash_hex}&dn={self.name}{pe}"

    def piece_size(self, index: int) -> int:
        if index == self.piece_count - 1:
            return self.total_length - index * self.piece_length
        return self.piece_length

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray()
        pos = 0
        for path, size in self.files:
            if length == 0:
                break
            if offset < pos + size:
                within = offset - pos
                n = min(size - within, length)
                with open(path, "rb") as f:
                    f.seek(within)
                    out += f.read(n)
                offset += n
                length -= n
            pos += size
        return bytes(out)

    def piece_data(self, index: int) -> bytes:
        return self.read(index * self.piece_length, self.piece_size(index))

    def blocks(self, index: int) -> List[Tuple[int, int]]:
        size = self.piece_size(index)
        return [(b, min(BLOCK, size - b)) for b in range(0, size, BLOCK)]


def write_random_files(root: Path, files: Dict[str, int], seed: int) -> None:
    rng = random.Random(seed)
    for rel, size in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            left = size
            while left:
                n = min(left, 1 << 20)
                f.write(rng.randbytes(n))
                left -= n


def sha256_tree(root: Path) -> Dict[str, str]:
    """sha256 of every regular file under root (or of root itself), by relative path."""
    root = Path(root)
    if root.is_file():
        return {root.name: hashlib.sha256(root.read_bytes()).hexdigest()}
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# Wire helpers
# ---------------------------------------------------------------------------

def msg(msg_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">IB", 1 + len(payload), msg_id) + payload


def handshake(info_hash: bytes, peer_id: bytes, extensions: bool = True, fast: bool = False) -> bytes:
    reserved = bytearray(8)
    if extensions:
        reserved[5] |= 0x10
    if fast:
        reserved[7] |= 0x04
    return PSTR + bytes(reserved) + info_hash + peer_id


def bitfield_bytes(count: int, have_all: bool = True) -> bytearray:
    bits = bytearray((count + 7) // 8)
    if have_all:
        for i in range(count):
            bits[i // 8] |= 0x80 >> (i % 8)
    return bits


class PeerClosed(Exception):
    """The other side closed (or reset) the connection."""


@dataclasses.dataclass
class ConnLog:
    index: int
    outgoing: bool  # we dialed (ban check, or ``dial``) rather than accepted
    opened_at: float
    transport: str = "tcp"  # "tcp" or "utp": what the connection ran over
    local_port: int = 0  # our end's port (what our client sees of an outgoing connection)
    handshake_ok: bool = False
    mse: bool = False  # the handshake came encrypted (MSE, plaintext stream after it)
    remote_extensions: bool = False
    remote_fast: bool = False
    remote_peer_id: bytes = b""
    received: List[str] = dataclasses.field(default_factory=list)  # message names
    requests: int = 0
    served_pieces: set = dataclasses.field(default_factory=set)  # pieces we sent blocks of
    blocks_served: int = 0
    metadata_requests: List[int] = dataclasses.field(default_factory=list)
    metadata_served: int = 0
    misbehaved_at: Optional[float] = None  # when the hostile act was done
    closed_by_peer: bool = False  # our client closed (EOF or reset)
    closed_at: Optional[float] = None
    error: str = ""

    def __repr__(self):  # compact, for assertion messages
        return (f"ConnLog(#{self.index} {self.transport} out={self.outgoing} hs={self.handshake_ok} mse={self.mse} "
                f"rx={self.received[:12]}{'...' if len(self.received) > 12 else ''} "
                f"req={self.requests} pieces={sorted(self.served_pieces)[:10]} "
                f"md_req={self.metadata_requests} md_served={self.metadata_served} "
                f"closed_by_peer={self.closed_by_peer} "
                f"t_close={None if self.closed_at is None else round(self.closed_at - self.opened_at, 2)} "
                f"err={self.error!r})")


class _Conn:
    def __init__(self, sock: socket.socket, log: ConnLog, stop: threading.Event):
        self.sock = sock
        self.log = log
        self.stop = stop
        self.lock = threading.Lock()

    def send(self, data: bytes) -> None:
        with self.lock:
            try:
                self.sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError) as e:
                raise PeerClosed(str(e))

    def recv_exact(self, n: int, timeout: Optional[float] = None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        buf = bytearray()
        while len(buf) < n:
            if self.stop.is_set():
                raise TimeoutError("stopped")
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {n} bytes")
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 16))
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError) as e:
                raise PeerClosed(str(e))
            if not chunk:
                raise PeerClosed("eof")
            buf += chunk
        return bytes(buf)

    def read_message(self, timeout: Optional[float] = None) -> Tuple[Optional[int], bytes]:
        (length,) = struct.unpack(">I", self.recv_exact(4, timeout))
        if length == 0:
            return None, b""
        body = self.recv_exact(length, 30)
        return body[0], body[1:]


# ---------------------------------------------------------------------------
# The hostile peer
# ---------------------------------------------------------------------------

class HostilePeer:
    def __init__(self, torrent: TorrentFile, mode: str, variant: str = "",
                 reconnect_to: Optional[Tuple[str, int]] = None,
                 unrequested_pieces: int = 4, transport: str = "tcp"):
        assert mode in MODES, mode
        assert transport in TRANSPORTS, transport
        assert mode != "mute" or transport == "utp", "mute is a uTP behaviour"
        self.t = torrent
        self.transport = transport
        self.mode = mode
        self.variant = variant
        self.reconnect_to = reconnect_to
        self.unrequested_pieces = unrequested_pieces
        self.peer_id = b"-HP0001-" + bytes(random.Random().randrange(256) for _ in range(12))
        self.connections: List[ConnLog] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._socks: List[socket.socket] = []
        self._muxes: List[utp_peer.UtpMux] = []
        # The uTP connection behind each ConnLog (by index), for the tests' checks.
        self.utp_conns: Dict[int, utp_peer.UtpConnection] = {}
        if transport == "tcp":
            self._listener = socket.socket()
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind(("127.0.0.1", 0))
            self._listener.listen(16)
            self._listener.settimeout(0.2)
            self.port = self._listener.getsockname()[1]
            self.mux = None
        else:
            self.mux, self._listener = self._utp_listener()
            self._muxes.append(self.mux)
            self.port = self.mux.port
        self.reconnect_attempted = False

    @staticmethod
    def _utp_listener() -> Tuple[utp_peer.UtpMux, socket.socket]:
        """A UDP port for uTP, and the TCP port of the same number bound but not
        listening (TCP dials to it are refused; nobody else can listen there)."""
        for _ in range(50):
            mux = utp_peer.UtpMux("127.0.0.1", 0, accepting=True)
            guard = socket.socket()
            try:
                guard.bind(("127.0.0.1", mux.port))
            except OSError:
                guard.close()
                mux.close()
                continue
            return mux, guard
        raise RuntimeError("no port free for both UDP and TCP")

    def tcp_refused(self) -> bool:
        """Whether a TCP dial to our port is refused (true for a uTP-only peer)."""
        if self.transport == "tcp":
            return False  # (and a test connection would be logged as a peer)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                return False
        except ConnectionRefusedError:
            return True

    # -- lifecycle --

    def start(self) -> "HostilePeer":
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stop.set()
        for s in list(self._socks) + [self._listener]:
            try:
                s.close()
            except OSError:
                pass
        for th in self._threads:
            th.join(timeout=5)
        for mux in self._muxes:
            mux.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, fn, *args) -> None:
        th = threading.Thread(target=fn, args=args, daemon=True)
        self._threads.append(th)
        th.start()

    def _new_log(self, outgoing: bool) -> ConnLog:
        with self._lock:
            log = ConnLog(index=len(self.connections), outgoing=outgoing, opened_at=time.monotonic(),
                          transport=self.transport)
            self.connections.append(log)
            return log

    # -- queries for tests --

    @property
    def incoming(self) -> List[ConnLog]:
        return [c for c in self.connections if not c.outgoing]

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return predicate(self)

    def summary(self) -> str:
        return "\n".join(repr(c) for c in self.connections) or "(no connections)"

    # -- connections --

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.mux is not None:
                    sock = self.mux.accept(timeout=0.2)
                else:
                    sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._spawn(self._serve, sock, self._new_log(outgoing=False))

    def dial(self, addr: Tuple[str, int]) -> None:
        """Connect to ``addr`` (over our transport) and behave there as on an accepted
        connection (our side sends the handshake first)."""
        self._spawn(self._dial, addr)

    def _dial(self, addr: Tuple[str, int]) -> None:
        log = self._new_log(outgoing=True)
        try:
            sock = self._open(addr)
        except OSError as e:
            log.error = f"connect: {e}"
            log.closed_at = time.monotonic()
            return
        self._serve(sock, log, behave=True)

    def _open(self, addr: Tuple[str, int]):
        """A connection to addr over our transport (uTP: from a UDP port of its own,
        as a TCP dial comes from an ephemeral port)."""
        if self.transport == "tcp":
            return socket.create_connection(addr, timeout=5)
        mux = utp_peer.UtpMux("127.0.0.1", 0, accepting=False)
        self._muxes.append(mux)
        return mux.connect(addr, timeout=5)

    def _serve(self, sock, log: ConnLog, behave: Optional[bool] = None) -> None:
        """``behave``: run the mode's behaviour (default: on accepted connections;
        a reconnect after a ban only checks that the ban holds)."""
        if behave is None:
            behave = not log.outgoing
        if isinstance(sock, utp_peer.UtpConnection):
            self.utp_conns[log.index] = sock
        try:
            log.local_port = sock.getsockname()[1]
        except OSError:
            pass
        self._socks.append(sock)
        sock.settimeout(0.2)
        conn = _Conn(sock, log, self._stop)
        try:
            if log.outgoing:
                conn.send(handshake(self.t.info_hash, self.peer_id))
                self._read_handshake(conn)
            else:
                self._read_handshake(conn)
                conn.send(handshake(self.t.info_hash, self.peer_id))
            log.handshake_ok = True
            if behave:
                self._behave(conn)
            else:
                self._after_reconnect(conn)
        except PeerClosed:
            log.closed_by_peer = True
        except (TimeoutError, OSError, ValueError, struct.error) as e:
            log.error = f"{type(e).__name__}: {e}"
        finally:
            log.closed_at = time.monotonic()
            try:
                sock.close()
            except OSError:
                pass
        if (self.mode == "corrupt" and not log.outgoing and log.closed_by_peer
                and log.blocks_served and self.reconnect_to and not self.reconnect_attempted
                and not self._stop.is_set()):
            self.reconnect_attempted = True
            self._reconnect()

    def _read_handshake(self, conn: _Conn) -> None:
        hs = conn.recv_exact(1, timeout=10)
        if hs == PSTR[:1]:
            # A plaintext handshake, or an MSE public key that starts with the same
            # byte (1 in 256): only the whole protocol string tells.
            hs += conn.recv_exact(len(PSTR) - 1, timeout=10)
        if hs != PSTR[:len(hs)]:
            # An encrypted handshake (our client's default is to try MSE first): taken
            # with plaintext selected for the stream, so every mode behaves as in clear.
            payload = mse_peer.accept(conn, hs, self.t.info_hash)
            conn.log.mse = True
            hs = payload[:68]
        hs += conn.recv_exact(68 - len(hs), timeout=10)
        if hs[:20] != PSTR or hs[28:48] != self.t.info_hash:
            raise ValueError(f"bad handshake {hs[:48]!r}")
        conn.log.remote_extensions = bool(hs[25] & 0x10)
        conn.log.remote_fast = bool(hs[27] & 0x04)
        conn.log.remote_peer_id = hs[48:68]

    def _reconnect(self) -> None:
        """Dial our client's listen port with the banned peer id."""
        log = self._new_log(outgoing=True)
        try:
            sock = self._open(self.reconnect_to)
        except OSError as e:
            log.error = f"connect: {e}"
            log.closed_at = time.monotonic()
            return
        self._serve(sock, log, behave=False)

    def _after_reconnect(self, conn: _Conn) -> None:
        # A banned peer id must be dropped right after the handshake; anything
        # else (bitfield, extension handshake, keeping the socket open) means the
        # ban did not hold. Offer data so the client has a reason to keep it.
        if conn.log.remote_extensions:
            conn.send(self._ext_handshake())
        conn.send(msg(BITFIELD, bytes(bitfield_bytes(self.t.piece_count))) + msg(UNCHOKE))
        self._record_messages(conn, 3)

    # -- behaviour --

    def _ext_handshake(self) -> bytes:
        size = len(self.t.info_bytes)
        if self.mode == "lying_metadata":
            if self.variant == "huge_size":
                size = 100 << 20
            elif self.variant == "wrong_size":
                size = len(self.t.info_bytes) + 3 * BLOCK + 17
        payload = bencode({"m": {"ut_metadata": OUR_UT_METADATA}, "metadata_size": size,
                           "v": "hostile/" + self.mode, "reqq": 250})
        return msg(EXTENDED, b"\x00" + payload)

    def _behave(self, conn: _Conn) -> None:
        log = conn.log
        t = self.t
        full = bytes(bitfield_bytes(t.piece_count))
        if self.mode == "oversized":
            length = 0x7FFFFFFF if self.variant == "huge" else 2 << 20
            conn.send(struct.pack(">IB", length, PIECE) + struct.pack(">II", 0, 0))
            log.misbehaved_at = time.monotonic()
            # Keep feeding the claimed payload (2 MiB variant) or 64 KiB of it.
            left = min(length - 9, 2 << 20) if self.variant != "huge" else 64 << 10
            while left > 0:
                n = min(left, 1 << 16)
                conn.send(b"\xAB" * n)
                left -= n
            self._drain_until_closed(conn, timeout=20)
            return
        if log.remote_extensions:
            conn.send(self._ext_handshake())
        if self.mode == "bad_bitfield":
            bits = bitfield_bytes(t.piece_count)
            if self.variant == "short":
                bits = bits[:-1]
            elif self.variant == "long":
                bits += b"\xff"
            elif self.variant == "spare_bits":
                assert t.piece_count % 8, "spare_bits needs a piece count that is not a multiple of 8"
                bits[-1] |= 0xFF >> (t.piece_count % 8)
            conn.send(msg(BITFIELD, bytes(bits)) + msg(UNCHOKE))
            log.misbehaved_at = time.monotonic()
            self._drain_until_closed(conn, timeout=20)
            return
        if self.mode == "mute":
            self._go_mute(conn, full)
            return
        conn.send(msg(BITFIELD, full))
        if self.mode == "bad_index":
            conn.send(msg(UNCHOKE))
            n = t.piece_count
            if self.variant == "have":
                bad = msg(HAVE, struct.pack(">I", n))
            elif self.variant == "request":
                bad = msg(REQUEST, struct.pack(">III", n, 0, BLOCK))
            elif self.variant == "request_length":
                bad = msg(REQUEST, struct.pack(">III", 0, 0, 2 * BLOCK))
            elif self.variant == "piece":
                bad = msg(PIECE, struct.pack(">II", n, 0) + b"\x00" * BLOCK)
            else:
                raise ValueError(self.variant)
            # Give the client a moment to send interested/requests, so the bad
            # message arrives in the middle of a normal exchange.
            time.sleep(0.2)
            conn.send(bad)
            log.misbehaved_at = time.monotonic()
            self._drain_until_closed(conn, timeout=20)
            return
        if self.mode == "unrequested":
            # Before the unchoke: nothing can have been requested from us yet.
            for index in range(min(self.unrequested_pieces, t.piece_count)):
                for begin, length in t.blocks(index):
                    conn.send(msg(PIECE, struct.pack(">II", index, begin) + os.urandom(length)))
            log.misbehaved_at = time.monotonic()
        conn.send(msg(UNCHOKE))
        self._message_loop(conn)

    def _go_mute(self, conn: _Conn, full: bytes) -> None:
        """Mutes the connection right after the message that makes our client send
        data, so that data is never acknowledged. Seed ("" variant): bitfield +
        unchoke, then mute (our client's requests go unacked). Leecher ("leecher"):
        interested, then once unchoked the requests, then mute (our client's blocks go
        unacked). Muted, the connection sends nothing at all until the peer is
        stopped; what still arrives in order is read and recorded."""
        log = conn.log
        if self.variant == "leecher":
            conn.send(msg(INTERESTED))
            self._wait_for_message(conn, "unchoke", 10)
            requests = b"".join(msg(REQUEST, struct.pack(">III", index, begin, length))
                                for index in range(min(4, self.t.piece_count))
                                for begin, length in self.t.blocks(index))
            conn.send(requests)
            log.requests += len(requests) // 17
        else:
            conn.send(msg(BITFIELD, full) + msg(UNCHOKE))
        conn.sock.mute()
        log.misbehaved_at = time.monotonic()
        # (A block does not arrive whole: our client's window stays closed.)
        while not self._stop.is_set():
            self._record_messages(conn, 0.2)

    def _wait_for_message(self, conn: _Conn, name: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while name not in conn.log.received and time.monotonic() < deadline:
            self._record_messages(conn, 0.1)
        if name not in conn.log.received:
            raise TimeoutError(f"no {name} from our client: {conn.log.received}")

    def _drain_until_closed(self, conn: _Conn, timeout: float) -> None:
        """Read (and record) whatever comes until our client closes the socket."""
        self._record_messages(conn, timeout)
        conn.log.error = "still open after the misbehaviour"

    @staticmethod
    def _record_messages(conn: _Conn, seconds: float) -> None:
        """Record the names of the messages that come for ``seconds`` (a close ends it
        early: read_message raises, and the caller's handler records the close)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                mid, _ = conn.read_message(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            conn.log.received.append(MSG_NAMES.get(mid, str(mid)) if mid is not None else "keepalive")

    def _message_loop(self, conn: _Conn) -> None:
        log = conn.log
        remote_ut_metadata = None
        # corrupt/leave_partial: the last block of every piece is held back, so
        # pieces stay partial with our corrupt blocks in them; only the first
        # piece is finished (and fails alone, getting us banned) once requests
        # span three pieces or a second has passed.
        held: Dict[int, Tuple[int, int]] = {}
        first_piece: Optional[int] = None
        first_request_at: Optional[float] = None
        released = self.variant != "leave_partial"
        while not self._stop.is_set():
            if not released and first_piece is not None and first_piece in held and (
                    len(log.served_pieces | set(held)) >= 3 or time.monotonic() - first_request_at > 1):
                released = True
                self._send_block(conn, first_piece, *held.pop(first_piece))
            try:
                mid, payload = conn.read_message(timeout=0.1)
            except TimeoutError:
                if self._stop.is_set():
                    return
                continue
            log.received.append(MSG_NAMES.get(mid, str(mid)) if mid is not None else "keepalive")
            if mid == INTERESTED:
                conn.send(msg(UNCHOKE))
            elif mid == REQUEST:
                index, begin, length = struct.unpack(">III", payload)
                log.requests += 1
                if index >= self.t.piece_count or begin + length > self.t.piece_size(index):
                    continue
                if first_piece is None:
                    first_piece, first_request_at = index, time.monotonic()
                last = begin + length == self.t.piece_size(index)
                if self.variant == "leave_partial" and last and (not released or index != first_piece):
                    held[index] = (begin, length)
                    continue
                self._send_block(conn, index, begin, length)
            elif mid == EXTENDED:
                ext_id, body = payload[0], payload[1:]
                if ext_id == 0:
                    hs = bdecode(body)
                    remote_ut_metadata = hs.get(b"m", {}).get(b"ut_metadata")
                elif ext_id == OUR_UT_METADATA:
                    req, _ = bdecode_prefix(body)
                    if req.get(b"msg_type") == 0:
                        self._serve_metadata(conn, req.get(b"piece", -1), remote_ut_metadata)

    def _send_block(self, conn: _Conn, index: int, begin: int, length: int) -> None:
        data = bytearray(self.t.read(index * self.t.piece_length + begin, length))
        if self.mode == "corrupt":
            data[0] ^= 0xFF
            conn.log.misbehaved_at = conn.log.misbehaved_at or time.monotonic()
        conn.send(msg(PIECE, struct.pack(">II", index, begin) + bytes(data)))
        conn.log.served_pieces.add(index)
        conn.log.blocks_served += 1

    def _serve_metadata(self, conn: _Conn, piece: int, remote_id: Optional[int]) -> None:
        log = conn.log
        log.metadata_requests.append(piece)
        if not remote_id:
            return
        info = self.t.info_bytes
        total = len(info)
        if self.mode == "lying_metadata":
            if self.variant == "huge_size":
                total = 100 << 20
            elif self.variant == "wrong_size":
                total = len(info) + 3 * BLOCK + 17
            start = piece * BLOCK
            if start >= total or (self.variant == "bad_hash_partial" and piece != 0):
                conn.send(msg(EXTENDED, bytes([remote_id]) + bencode({"msg_type": 2, "piece": piece})))
                return
            n = min(BLOCK, total - start)
            data = bytearray(info[start:start + n].ljust(n, b"x"))
            for i in range(0, len(data), 1000):
                data[i] ^= 0x5A
            log.misbehaved_at = log.misbehaved_at or time.monotonic()
        else:
            start = piece * BLOCK
            if piece < 0 or start >= total:
                conn.send(msg(EXTENDED, bytes([remote_id]) + bencode({"msg_type": 2, "piece": piece})))
                return
            data = info[start:start + BLOCK]
        head = bencode({"msg_type": 1, "piece": piece, "total_size": total})
        conn.send(msg(EXTENDED, bytes([remote_id]) + head + bytes(data)))
        log.metadata_served += 1


# ---------------------------------------------------------------------------
# Honest libtorrent seeder (subprocess)
# ---------------------------------------------------------------------------

def _lt_seed_main(argv: List[str]) -> int:
    import libtorrent as lt  # only Debian's /usr/bin/python3 has it

    ap = argparse.ArgumentParser(prog="hostile.py lt-seed")
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--save-path", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--upload-limit", type=int, default=0, help="bytes/s, 0 = unlimited")
    ap.add_argument("--interval", type=float, default=0.1)
    args = ap.parse_args(argv)
    ses = lt.session({
        "listen_interfaces": f"127.0.0.1:{args.port}",
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": args.upload_limit,
        # Don't let an idle or interrupted leecher be dropped for long.
        "min_reconnect_time": 1,
        # Loopback counts as local: without this the upload limit is ignored.
        "ignore_limits_on_local_network": False,
        "alert_mask": 0,
    })
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = args.save_path
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + 60
    while not h.status().is_seeding:
        if time.monotonic() > deadline:
            print(json.dumps({"error": f"not seeding: {h.status().state}"}), flush=True)
            return 1
        time.sleep(0.05)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(json.dumps({"port": ses.listen_port()}), flush=True)
    while not stop.is_set():
        st = h.status()
        print(json.dumps({"t": time.monotonic(), "upload": st.total_payload_upload,
                          "peers": st.num_peers}), flush=True)
        stop.wait(args.interval)
    return 0


class LtSeeder:
    """An honest libtorrent seeder in a subprocess; ``upload`` follows its
    payload upload counter (bytes, cumulative over the seeder's life)."""

    def __init__(self, torrent: Path, save_path: Path, port: int = 0, upload_limit: int = 0,
                 interval: float = 0.1, python: str = "/usr/bin/python3"):
        self.proc = subprocess.Popen(
            [python, __file__, "lt-seed", "--torrent", str(torrent), "--save-path", str(save_path),
             "--port", str(port), "--upload-limit", str(upload_limit), "--interval", str(interval)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.port = 0
        self.upload = 0
        self.samples: List[Tuple[float, int]] = []  # (monotonic time, upload)
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(60) or not self.port:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"libtorrent seeder did not start: {err}")

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if "port" in d:
                self.port = d["port"]
                self._ready.set()
            elif "upload" in d:
                self.upload = d["upload"]
                self.samples.append((time.monotonic(), d["upload"]))
            elif "error" in d:
                self._ready.set()
        self._ready.set()

    def upload_now(self, settle: float = 1.5) -> int:
        """The counter once it has caught up: libtorrent updates it once a second."""
        time.sleep(settle)
        return self.upload

    def changes(self) -> List[Tuple[float, int]]:
        """(time first seen, value) each time the counter moved: libtorrent updates
        it on a one-second tick, so these times are the ticks (+ our poll interval)."""
        out: List[Tuple[float, int]] = []
        for when, value in list(self.samples):
            if not out or value != out[-1][1]:
                out.append((when, value))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------
# Our client
# ---------------------------------------------------------------------------

class Download:
    """``torrentfs download`` in a subprocess; stderr (progress, -vv logs) in a file."""

    def __init__(self, binary: Path, target: str, out: Path, state: Path, log: Path,
                 peers: Sequence[int] = (), extra: Sequence[str] = (), verbose: bool = True):
        self.log_path = Path(log)
        args = [str(binary), "download", str(target), "-o", str(out), "--state", str(state)]
        for p in peers:
            args += ["--peer", f"127.0.0.1:{p}"]
        if verbose:
            args.append("-vv")
        args += list(extra)
        self.args = args
        self._log = open(self.log_path, "ab")
        self._log.write(("$ " + " ".join(args) + "\n").encode())
        self._log.flush()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=self._log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float) -> Optional[int]:
        """Exit status, or None after killing it on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self._log.flush()

    def interrupt(self, timeout: float = 15) -> Optional[int]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def running(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-n:])

    def close(self) -> None:
        self.kill()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "lt-seed":
        sys.exit(_lt_seed_main(sys.argv[2:]))
    print("usage: hostile.py lt-seed --torrent T --save-path DIR [--port N] [--upload-limit B/s]",
          file=sys.stderr)
    sys.exit(2)
