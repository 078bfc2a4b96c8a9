"""One uTP connection of utp_peer.py's UtpMux: the socket-like end a test uses."""

from __future__ import annotations

import socket
import time
from typing import Dict, List, Optional, Tuple

from utp_wire import ST_RESET, INITIAL_RTO, RECV_WINDOW, SEND_BUFFER, _Sent


class UtpConnection:
    """One uTP connection (socket-like). All state is guarded by the mux's condition."""

    def __init__(self, mux: "UtpMux", addr: Tuple[str, int], recv_id: int, send_id: int,
                 seq: int, state: str):
        self.mux = mux
        self.addr = addr
        self.recv_id = recv_id
        self.send_id = send_id
        self.state = state  # "syn_sent", "connected", "closed"
        self.seq_nr = seq  # the next seq_nr a DATA/FIN takes
        self.ack_nr = 0  # the last seq_nr received in order
        self.last_acked = (seq - 1) & 0xFFFF  # everything up to this one was acked
        self.syn_seq = 0
        self.in_flight: Dict[int, _Sent] = {}  # seq -> packet, in seq order
        self.pending = bytearray()
        self.fin_queued = False
        self.fin_sent = False
        self.peer_wnd = RECV_WINDOW
        self.rto = INITIAL_RTO
        self.rtt: Optional[float] = None
        self.rto_deadline: Optional[float] = None
        self.timeouts = 0
        self.dup_acks = 0
        # After a fast retransmit: the last seq_nr sent then (NewReno's recovery point).
        self.recovery: Optional[int] = None
        self.reply_micros = 0
        self.rbuf = bytearray()
        self.reorder: Dict[int, Tuple[int, bytes]] = {}
        self.fin_seq: Optional[int] = None
        self.eof = False  # the peer's FIN and everything before it arrived
        self.reset = False  # the peer sent RESET
        self.failed = ""  # why we gave up (our retransmissions unanswered)
        self.app_closed = False
        self.closed_at: Optional[float] = None
        self.ack_owed = False
        self.window_was_small = False
        self.muted = False
        self.timeout: Optional[float] = None
        # Statistics, for tests.
        self.packets_in = 0
        self.data_in = 0
        self.duplicates_in = 0  # DATA/FIN already received (the peer retransmitted)
        self.packets_in_muted = 0
        self.muted_arrivals: List[float] = []  # when each packet came while muted
        self.muted_bytes_in = 0  # payload bytes that came in order while muted
        self.last_packet_at = time.monotonic()
        self.retransmissions = 0

    # -- socket-like API --

    def settimeout(self, timeout: Optional[float]) -> None:
        self.timeout = timeout

    def gettimeout(self) -> Optional[float]:
        return self.timeout

    def getpeername(self) -> Tuple[str, int]:
        return self.addr

    def getsockname(self) -> Tuple[str, int]:
        return self.mux.sock.getsockname()

    def _raise_if_broken(self, writing: bool) -> None:
        if self.reset:
            raise ConnectionResetError("uTP RESET from the peer")
        if self.failed:
            raise ConnectionAbortedError(f"uTP: {self.failed}")
        if writing and (self.eof or self.fin_seq is not None):
            raise BrokenPipeError("uTP FIN from the peer")
        if writing and self.app_closed:
            raise OSError("uTP connection closed")

    def sendall(self, data: bytes) -> None:
        data = bytes(data)
        deadline = time.monotonic() + (self.timeout if self.timeout is not None else 3600)
        # A write waits for room at most this long without progress (the peer acks nothing).
        deadline = max(deadline, time.monotonic() + 30)
        with self.mux.cond:
            while data:
                self._raise_if_broken(writing=True)
                room = SEND_BUFFER - len(self.pending)
                if room > 0:
                    self.pending += data[:room]
                    data = data[room:]
                    self.mux._flush(self)
                    deadline = max(deadline, time.monotonic() + 30)
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("uTP send buffer full")
                self.mux.cond.wait(min(left, 0.1))

    send = sendall

    def recv(self, n: int) -> bytes:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        with self.mux.cond:
            while True:
                if self.rbuf:
                    out = bytes(self.rbuf[:n])
                    del self.rbuf[:n]
                    if self.window_was_small and self._window() >= RECV_WINDOW // 2:
                        # Tell the peer the window opened again.
                        self.window_was_small = False
                        self.mux._send_state(self)
                    return out
                if self.eof:
                    return b""
                self._raise_if_broken(writing=False)
                if self.app_closed:
                    raise OSError("uTP connection closed")
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise socket.timeout("timed out")
                    self.mux.cond.wait(min(left, 0.1))
                else:
                    self.mux.cond.wait(0.1)

    def close(self) -> None:
        """Sends FIN after whatever is queued (not waited for); reads and writes end."""
        with self.mux.cond:
            if self.app_closed:
                return
            self.app_closed = True
            if self.state == "connected" and not self.reset and not self.failed and not self.muted:
                self.fin_queued = True
                self.mux._flush(self)
            else:
                self.mux._finish(self)
            self.mux.cond.notify_all()

    def abort(self) -> None:
        """Sends RESET and closes at once."""
        with self.mux.cond:
            if self.state != "closed" and not self.muted:
                self.mux._emit(self, ST_RESET, self.seq_nr)
            self.app_closed = True
            self.mux._finish(self)

    def mute(self) -> None:
        """From now on send nothing (no acks, no data, no retransmissions)."""
        with self.mux.cond:
            self.muted = True
            self.packets_in_muted = 0

    # -- helpers (mux lock held) --

    def _window(self) -> int:
        held = len(self.rbuf) + sum(len(p) for _, p in self.reorder.values())
        return max(0, RECV_WINDOW - held)

    def _flight_bytes(self) -> int:
        return sum(len(s.payload) for s in self.in_flight.values())

    def __repr__(self) -> str:
        return (f"UtpConnection({self.addr} recv={self.recv_id} send={self.send_id} {self.state} "
                f"seq={self.seq_nr} ack={self.ack_nr} inflight={len(self.in_flight)} "
                f"eof={self.eof} reset={self.reset} failed={self.failed!r} muted={self.muted})")
