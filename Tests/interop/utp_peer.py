"""uTP (BEP 29) in plain Python, for scripted test peers (hostile.py).

Small and deliberately simple, written from the specification:

* every packet starts with the 20-byte header: type (high nibble) | version 1 (low
  nibble), first extension type, connection_id, timestamp_microseconds,
  timestamp_difference_microseconds, wnd_size, seq_nr, ack_nr (big-endian); then the
  extension chain (next type, length, bytes), then the payload (DATA only);
* the side that connects picks a receive id R, sends its SYN with connection_id R and
  everything after it with R+1; the side that accepts sends with the SYN's id and
  receives on id+1; the STATE answering a SYN carries the first seq_nr its sender will
  use for DATA, and acks the SYN's seq_nr;
* sending: payloads of at most ``MAX_PAYLOAD`` bytes, a fixed window of packets (also
  bounded by the peer's advertised ``wnd_size``), retransmission of the oldest
  unacked packet after three duplicate acks and of what is in flight on timeout
  (doubling the timeout, giving up after ``MAX_TIMEOUTS`` in a row);
* receiving: in-order delivery; packets ahead of a gap are kept (bounded) and a
  duplicate or out-of-order packet is answered by a STATE acking what we have
  (no selective acks sent; the ones we get are parsed and ignored);
* FIN ends the stream: reads return b"" once everything before it was read, and
  writes fail; RESET fails reads and writes at once.

``UtpMux`` owns one UDP socket (one thread reads it and runs the timers) and the
connections on it; ``UtpConnection`` is the socket-like end a test uses: ``sendall``,
``recv``, ``settimeout``, ``close``. Errors mirror TCP's: ``ConnectionResetError`` for a
RESET, ``BrokenPipeError`` for writing after the peer's FIN, ``b""`` for the end of the
stream, ``socket.timeout`` when a read or write waited longer than the timeout, and
``ConnectionAbortedError`` when our own retransmissions went unanswered.

A connection can be ``mute``d: from then on it sends nothing at all (no acks, no data,
no retransmissions) and only counts what arrives; that is the peer that stops acking.
"""

from __future__ import annotations

import random
import select
import socket
import threading
import time
from typing import Dict, List, Optional, Tuple

from utp_connection import UtpConnection
from utp_wire import (ST_DATA, ST_FIN, ST_RESET, ST_STATE, ST_SYN, CONNECT_TIMEOUT,
                      DUP_ACK_THRESHOLD, LINGER, MAX_DATAGRAM, MAX_PAYLOAD, MAX_RTO, MAX_TIMEOUTS,
                      MIN_RTO, Packet, RECV_WINDOW, REORDER_PACKETS, SEND_WINDOW_PACKETS,
                      SYN_ATTEMPTS, TICK, _Sent, now_us, seq_distance)


class UtpMux:
    """One UDP socket and its uTP connections. ``accept`` answers SYNs (when
    ``accepting``); ``connect`` opens a connection to an address."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, accepting: bool = True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.accepting = accepting
        self.cond = threading.Condition(threading.RLock())
        self.conns: Dict[Tuple[Tuple[str, int], int], UtpConnection] = {}
        self.backlog: List[UtpConnection] = []
        # Fraction of outgoing datagrams dropped on purpose (for this module's self-test).
        self.loss = 0.0
        self.datagrams_in = 0
        self.syns_in = 0
        self.malformed_in = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"utp-mux-{self.port}")
        self._thread.start()

    # -- public --

    def accept(self, timeout: Optional[float] = None) -> UtpConnection:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while not self.backlog:
                if self._stop.is_set():
                    raise OSError("uTP mux closed")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise socket.timeout("no uTP connection")
                self.cond.wait(0.1 if left is None else min(left, 0.1))
            return self.backlog.pop(0)

    def connect(self, addr: Tuple[str, int], timeout: float = CONNECT_TIMEOUT) -> UtpConnection:
        with self.cond:
            while True:
                recv_id = random.randrange(0x10000)
                if all((addr, i & 0xFFFF) not in self.conns for i in (recv_id - 1, recv_id, recv_id + 1)):
                    break
            conn = UtpConnection(self, addr, recv_id, (recv_id + 1) & 0xFFFF, seq=1, state="syn_sent")
            self.conns[(addr, recv_id)] = conn
            conn.syn_seq = conn.seq_nr
            conn.seq_nr = (conn.seq_nr + 1) & 0xFFFF
            conn.last_acked = conn.syn_seq
            self._send_syn(conn)
            deadline = time.monotonic() + timeout
            while conn.state == "syn_sent":
                left = deadline - time.monotonic()
                if left <= 0:
                    self._finish(conn)
                    raise socket.timeout(f"uTP connect to {addr}: no answer")
                self.cond.wait(min(left, 0.1))
            conn._raise_if_broken(writing=False)
            if conn.state != "connected":
                raise ConnectionRefusedError(f"uTP connect to {addr}: {conn!r}")
            return conn

    def close(self) -> None:
        with self.cond:
            for conn in list(self.conns.values()):
                if conn.state != "closed" and not conn.muted:
                    self._emit(conn, ST_RESET, conn.seq_nr)
                self._finish(conn)
            self.cond.notify_all()
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.sock.close()
        except OSError:
            pass

    def connections(self) -> List[UtpConnection]:
        with self.cond:
            return list(self.conns.values())

    # -- the reader thread --

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.sock], [], [], TICK)
            except (OSError, ValueError):
                return
            with self.cond:
                if ready:
                    for _ in range(256):
                        try:
                            data, addr = self.sock.recvfrom(MAX_DATAGRAM)
                        except (BlockingIOError, InterruptedError):
                            break
                        except OSError:
                            # ICMP errors (port unreachable) surface here: ignore.
                            break
                        self.datagrams_in += 1
                        self._receive(data, addr)
                    for conn in list(self.conns.values()):
                        if conn.ack_owed:
                            self._send_state(conn)
                self._tick()
                self.cond.notify_all()

    def _receive(self, data: bytes, addr: Tuple[str, int]) -> None:
        try:
            pkt = Packet.decode(data)
        except ValueError:
            self.malformed_in += 1
            return
        if pkt.type == ST_SYN:
            self._receive_syn(pkt, addr)
            return
        conn = self.conns.get((addr, pkt.conn_id))
        if conn is None and pkt.type == ST_RESET:
            # A RESET may carry our send id.
            conn = next((c for (a, _), c in self.conns.items() if a == addr and c.send_id == pkt.conn_id), None)
        if conn is None:
            if pkt.type in (ST_DATA, ST_FIN):
                self._send_raw(addr, Packet(ST_RESET, pkt.conn_id, random.randrange(0x10000), pkt.seq,
                                            timestamp=now_us()))
            return
        self._receive_for(conn, pkt)

    def _receive_syn(self, pkt: Packet, addr: Tuple[str, int]) -> None:
        self.syns_in += 1
        key = (addr, (pkt.conn_id + 1) & 0xFFFF)
        existing = self.conns.get(key)
        if existing is not None:
            if existing.send_id == pkt.conn_id and existing.syn_seq == pkt.seq and not existing.muted:
                existing.reply_micros = (now_us() - pkt.timestamp) & 0xFFFFFFFF
                self._send_state(existing)  # our STATE was lost: the same answer again
            return
        if not self.accepting:
            self._send_raw(addr, Packet(ST_RESET, pkt.conn_id, random.randrange(0x10000), pkt.seq,
                                        timestamp=now_us()))
            return
        conn = UtpConnection(self, addr, key[1], pkt.conn_id, seq=random.randrange(0x10000),
                             state="connected")
        conn.syn_seq = pkt.seq
        conn.ack_nr = pkt.seq
        conn.peer_wnd = pkt.wnd
        conn.reply_micros = (now_us() - pkt.timestamp) & 0xFFFFFFFF
        self.conns[key] = conn
        self._send_state(conn)
        self.backlog.append(conn)

    def _receive_for(self, conn: UtpConnection, pkt: Packet) -> None:
        now = time.monotonic()
        conn.packets_in += 1
        conn.last_packet_at = now
        if conn.muted:
            conn.packets_in_muted += 1
            conn.muted_arrivals.append(now)
            if pkt.type in (ST_DATA, ST_FIN):
                conn.data_in += 1
                if seq_distance(conn.ack_nr, pkt.seq) <= 0:
                    conn.duplicates_in += 1
                elif seq_distance(conn.ack_nr, pkt.seq) == 1 and pkt.type == ST_DATA:
                    # Read it (the stream stays readable), acknowledge nothing.
                    conn.ack_nr = pkt.seq
                    conn.rbuf += pkt.payload
                    conn.muted_bytes_in += len(pkt.payload)
            return
        if conn.state == "closed":
            # Lingering: a late FIN or DATA is acked, nothing more.
            if pkt.type in (ST_DATA, ST_FIN) and not conn.reset:
                self._send_state(conn)
            return
        if pkt.type == ST_RESET:
            conn.reset = True
            self._finish(conn)
            return
        conn.reply_micros = (now_us() - pkt.timestamp) & 0xFFFFFFFF
        conn.peer_wnd = pkt.wnd
        if conn.state == "syn_sent":
            if pkt.type != ST_STATE or pkt.ack != conn.syn_seq:
                return
            conn.state = "connected"
            conn.ack_nr = (pkt.seq - 1) & 0xFFFF
            conn.rto_deadline = None
            conn.timeouts = 0
            return
        self._process_ack(conn, pkt, now)
        if conn.state == "closed":
            return
        if pkt.type in (ST_DATA, ST_FIN):
            self._process_data(conn, pkt)
        self._flush(conn)

    def _process_ack(self, conn: UtpConnection, pkt: Packet, now: float) -> None:
        advance = seq_distance(conn.last_acked, pkt.ack)
        outstanding = seq_distance(conn.last_acked, (conn.seq_nr - 1) & 0xFFFF)
        if advance < 0 or advance > outstanding:
            return  # stale, or an ack of something never sent
        if advance > 0:
            seq = conn.last_acked
            while seq != pkt.ack:
                seq = (seq + 1) & 0xFFFF
                sent = conn.in_flight.pop(seq, None)
                if sent is None:
                    continue
                if sent.transmissions == 1:
                    sample = now - sent.sent_at
                    conn.rtt = sample if conn.rtt is None else conn.rtt + (sample - conn.rtt) / 8
                    conn.rto = min(MAX_RTO, max(MIN_RTO, 4 * conn.rtt))
                if sent.type == ST_FIN:
                    conn.fin_sent = True
            conn.last_acked = pkt.ack
            conn.timeouts = 0
            conn.dup_acks = 0
            if conn.recovery is not None:
                if seq_distance(pkt.ack, conn.recovery) > 0 and conn.in_flight:
                    # A partial ack after a fast retransmit: the next hole is lost too.
                    self._resend(conn, next(iter(conn.in_flight)), now)
                else:
                    conn.recovery = None
            conn.rto_deadline = now + conn.rto if conn.in_flight else None
            if conn.app_closed and conn.fin_sent and not conn.in_flight:
                self._finish(conn)
        elif pkt.type == ST_STATE and conn.in_flight:
            conn.dup_acks += 1
            oldest = next(iter(conn.in_flight))
            # Once per window at most (then partial acks go on, see above): the acks of
            # the packets that left after the lost one keep coming, and are not news.
            if conn.dup_acks >= DUP_ACK_THRESHOLD and conn.recovery is None:
                conn.dup_acks = 0
                conn.recovery = (conn.seq_nr - 1) & 0xFFFF
                self._resend(conn, oldest, now)

    def _process_data(self, conn: UtpConnection, pkt: Packet) -> None:
        if pkt.type == ST_FIN and conn.fin_seq is None:
            conn.fin_seq = pkt.seq
        if conn.fin_seq is not None and seq_distance(conn.fin_seq, pkt.seq) > 0:
            return  # past the end of the stream
        dist = seq_distance(conn.ack_nr, pkt.seq)
        if dist <= 0:
            conn.duplicates_in += 1
            self._send_state(conn)  # our ack was lost: ack again
            return
        conn.data_in += 1
        if dist == 1:
            self._deliver(conn, pkt.type, pkt.payload)
            conn.ack_nr = pkt.seq
            while True:
                nxt = (conn.ack_nr + 1) & 0xFFFF
                held = conn.reorder.pop(nxt, None)
                if held is None:
                    break
                self._deliver(conn, *held)
                conn.ack_nr = nxt
            conn.ack_owed = True
        else:
            if dist < REORDER_PACKETS and len(conn.reorder) < REORDER_PACKETS \
                    and conn._window() >= len(pkt.payload):
                conn.reorder.setdefault(pkt.seq, (pkt.type, pkt.payload))
            self._send_state(conn)  # a gap: say at once what we have
        if conn.fin_seq is not None and conn.ack_nr == conn.fin_seq and not conn.eof:
            conn.eof = True
            conn.pending.clear()
            self._send_state(conn)
            if not conn.fin_sent and not any(s.type == ST_FIN for s in conn.in_flight.values()):
                # Our FIN in answer: the connection is over for both.
                self._emit(conn, ST_FIN, conn.seq_nr)
                conn.seq_nr = (conn.seq_nr + 1) & 0xFFFF
            conn.in_flight.clear()
            self._finish(conn)
        if conn._window() < RECV_WINDOW // 4:
            conn.window_was_small = True

    def _deliver(self, conn: UtpConnection, kind: int, payload: bytes) -> None:
        if kind == ST_DATA:
            conn.rbuf += payload

    # -- sending (lock held) --

    def _flush(self, conn: UtpConnection) -> None:
        if conn.state != "connected" or conn.muted:
            return
        now = time.monotonic()
        while conn.pending and len(conn.in_flight) < SEND_WINDOW_PACKETS:
            size = min(MAX_PAYLOAD, len(conn.pending))
            if conn.in_flight and conn._flight_bytes() + size > conn.peer_wnd:
                break
            payload = bytes(conn.pending[:size])
            del conn.pending[:size]
            self._send_new(conn, ST_DATA, payload, now)
        if conn.fin_queued and not conn.pending and not conn.fin_sent \
                and not any(s.type == ST_FIN for s in conn.in_flight.values()) \
                and len(conn.in_flight) < SEND_WINDOW_PACKETS:
            self._send_new(conn, ST_FIN, b"", now)

    def _send_new(self, conn: UtpConnection, kind: int, payload: bytes, now: float) -> None:
        seq = conn.seq_nr
        conn.seq_nr = (seq + 1) & 0xFFFF
        conn.in_flight[seq] = _Sent(kind, payload, now)
        self._emit(conn, kind, seq, payload)
        if conn.rto_deadline is None:
            conn.rto_deadline = now + conn.rto

    def _resend(self, conn: UtpConnection, seq: int, now: float) -> None:
        sent = conn.in_flight[seq]
        sent.transmissions += 1
        sent.sent_at = now
        conn.retransmissions += 1
        self._emit(conn, sent.type, seq, sent.payload)

    def _send_syn(self, conn: UtpConnection) -> None:
        pkt = Packet(ST_SYN, conn.recv_id, conn.syn_seq, 0, now_us(), 0, conn._window())
        self._send_raw(conn.addr, pkt)
        conn.rto_deadline = time.monotonic() + conn.rto

    def _send_state(self, conn: UtpConnection) -> None:
        conn.ack_owed = False
        if conn.muted:
            return
        self._emit(conn, ST_STATE, conn.seq_nr)

    def _emit(self, conn: UtpConnection, kind: int, seq: int, payload: bytes = b"") -> None:
        if conn.muted:
            return
        pkt = Packet(kind, conn.send_id, seq, conn.ack_nr, now_us(), conn.reply_micros,
                     conn._window(), payload=payload)
        if kind in (ST_DATA, ST_FIN):
            conn.ack_owed = False  # the packet carries the ack
        self._send_raw(conn.addr, pkt)

    def _send_raw(self, addr: Tuple[str, int], pkt: Packet) -> None:
        data = pkt.encode()
        if self.loss and random.random() < self.loss:
            return
        for _ in range(100):
            try:
                self.sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                time.sleep(0.001)  # the socket buffer is full: wait a moment
            except OSError:
                return  # ICMP errors and the like: the packet is lost, timers recover

    # -- timers (lock held) --

    def _tick(self) -> None:
        now = time.monotonic()
        for key, conn in list(self.conns.items()):
            if conn.state == "closed":
                if conn.closed_at is not None and now - conn.closed_at > LINGER:
                    del self.conns[key]
                continue
            if conn.muted or conn.rto_deadline is None or now < conn.rto_deadline:
                continue
            conn.timeouts += 1
            if conn.state == "syn_sent":
                if conn.timeouts >= SYN_ATTEMPTS:
                    conn.failed = "no answer to SYN"
                    self._finish(conn)
                    continue
                conn.rto = min(MAX_RTO, conn.rto * 2)
                self._send_syn(conn)
                continue
            if conn.timeouts > MAX_TIMEOUTS:
                conn.failed = f"{MAX_TIMEOUTS} retransmission timeouts in a row"
                self._finish(conn)
                continue
            conn.rto = min(MAX_RTO, conn.rto * 2)
            conn.recovery = None
            # Everything in flight again (bounded), oldest first.
            for seq in list(conn.in_flight)[:16]:
                self._resend(conn, seq, now)
            conn.rto_deadline = now + conn.rto

    def _finish(self, conn: UtpConnection) -> None:
        if conn.state != "closed":
            conn.state = "closed"
            conn.closed_at = time.monotonic()
            conn.rto_deadline = None
        self.cond.notify_all()


def _selftest(loss: float = 0.0, size: int = 3 << 20) -> None:
    """Two muxes in this process: a connection each way, ``size`` random bytes both
    ways at once, with ``loss`` of every datagram dropped; checks the bytes and the FIN."""
    import hashlib
    import os
    a, b = UtpMux(), UtpMux()
    a.loss = b.loss = loss
    try:
        blob1, blob2 = os.urandom(size), os.urandom(size + 7)
        result = {}
        started = time.monotonic()

        def server():
            c = b.accept(timeout=10)
            c.settimeout(30)
            got = bytearray()
            th = threading.Thread(target=c.sendall, args=(blob2,), daemon=True)
            th.start()
            while len(got) < len(blob1):
                got += c.recv(1 << 16)
            th.join(60)
            result["server"] = hashlib.sha1(got).digest() == hashlib.sha1(blob1).digest()
            result["server_eof"] = c.recv(10) == b""

        th = threading.Thread(target=server, daemon=True)
        th.start()
        c = a.connect(("127.0.0.1", b.port))
        c.settimeout(30)
        sender = threading.Thread(target=c.sendall, args=(blob1,), daemon=True)
        sender.start()
        got = bytearray()
        while len(got) < len(blob2):
            got += c.recv(1 << 16)
        sender.join(60)
        time.sleep(0.5)  # let the last acks arrive before the FIN
        c.close()
        th.join(60)
        ok = got == blob2 and result.get("server") and result.get("server_eof")
        print(f"loss={loss}: {'ok' if ok else 'FAILED'} {result} in {time.monotonic() - started:.2f} s; "
              f"retransmissions {c.retransmissions}")
        assert ok
    finally:
        a.close()
        b.close()


if __name__ == "__main__":
    import sys
    for rate in [float(x) for x in sys.argv[1:]] or [0.0, 0.02, 0.1]:
        _selftest(rate)
