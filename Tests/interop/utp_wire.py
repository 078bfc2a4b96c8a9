"""uTP (BEP 29) on the wire, for the test peers of utp_peer.py: the constants, the
packet codec and sequence arithmetic."""

from __future__ import annotations

import dataclasses
import struct
import time
from typing import List, Tuple

VERSION = 1
ST_DATA, ST_FIN, ST_STATE, ST_RESET, ST_SYN = range(5)
TYPE_NAMES = {ST_DATA: "DATA", ST_FIN: "FIN", ST_STATE: "STATE", ST_RESET: "RESET", ST_SYN: "SYN"}
HEADER = struct.Struct(">BBHIIIHH")
# Payload bytes per DATA packet at most (well inside any path's datagram).
MAX_PAYLOAD = 1400
# Packets in flight at most.
SEND_WINDOW_PACKETS = 64
# Bytes queued by sendall and not yet sent at most (sendall waits beyond that).
SEND_BUFFER = 1 << 20
# Our advertised receive window: bytes delivered but unread plus out-of-order bytes.
RECV_WINDOW = 1 << 20
# Out-of-order packets kept at most, and how far ahead of the ack one may be.
REORDER_PACKETS = 1024
# Retransmission timeout: first value, floor and ceiling (seconds).
INITIAL_RTO = 0.5
MIN_RTO = 0.2
MAX_RTO = 4.0
# Consecutive timeouts before a connection gives up (0.5+1+2+4+4+4 s ≈ 15 s).
MAX_TIMEOUTS = 6
# SYN retransmissions before connect() gives up, and its overall bound (seconds).
SYN_ATTEMPTS = 4
CONNECT_TIMEOUT = 5.0
# Duplicate acks that make us resend the oldest packet in flight.
DUP_ACK_THRESHOLD = 3
# The reader thread's poll interval (timer resolution), seconds.
TICK = 0.01
# A closed connection stays in the table this long (a late FIN or DATA for it is
# answered as before, not with RESET).
LINGER = 2.0
# The largest datagram we read (any UDP payload).
MAX_DATAGRAM = 65535


def now_us() -> int:
    return int(time.monotonic() * 1_000_000) & 0xFFFFFFFF


def seq_distance(frm: int, to: int) -> int:
    """How far ``to`` is ahead of ``frm`` modulo 2**16 (negative when behind)."""
    d = (to - frm) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


@dataclasses.dataclass
class Packet:
    type: int
    conn_id: int
    seq: int
    ack: int
    timestamp: int = 0
    timestamp_diff: int = 0
    wnd: int = 0
    extensions: List[Tuple[int, bytes]] = dataclasses.field(default_factory=list)
    payload: bytes = b""

    def encode(self) -> bytes:
        first = self.extensions[0][0] if self.extensions else 0
        out = bytearray(HEADER.pack(self.type << 4 | VERSION, first, self.conn_id & 0xFFFF,
                                    self.timestamp & 0xFFFFFFFF, self.timestamp_diff & 0xFFFFFFFF,
                                    self.wnd & 0xFFFFFFFF, self.seq & 0xFFFF, self.ack & 0xFFFF))
        for i, (_, data) in enumerate(self.extensions):
            nxt = self.extensions[i + 1][0] if i + 1 < len(self.extensions) else 0
            out += bytes([nxt, len(data)]) + data
        return bytes(out + self.payload)

    @classmethod
    def decode(cls, data: bytes) -> "Packet":
        if len(data) < HEADER.size:
            raise ValueError(f"uTP datagram of {len(data)} bytes")
        tv, ext, conn_id, ts, tsd, wnd, seq, ack = HEADER.unpack_from(data)
        if tv & 0x0F != VERSION:
            raise ValueError(f"uTP version {tv & 0x0F}")
        if tv >> 4 > ST_SYN:
            raise ValueError(f"uTP type {tv >> 4}")
        extensions = []
        offset = HEADER.size
        while ext:
            if offset + 2 > len(data) or len(extensions) >= 16:
                raise ValueError("uTP extension chain cut short")
            nxt, length = data[offset], data[offset + 1]
            if offset + 2 + length > len(data):
                raise ValueError("uTP extension cut short")
            extensions.append((ext, bytes(data[offset + 2:offset + 2 + length])))
            offset += 2 + length
            ext = nxt
        return cls(tv >> 4, conn_id, seq, ack, ts, tsd, wnd, extensions, bytes(data[offset:]))


@dataclasses.dataclass
class _Sent:
    type: int
    payload: bytes
    sent_at: float
    transmissions: int = 1
