"""A BEP 15 UDP tracker for tests that opentracker cannot serve: Debian's
opentracker is built IPv4-only, so announces over [::1] need this one. It
answers connect and announce requests, hands out the peers it was given
(compact, 18 bytes each when it listens on IPv6), and records every request
with its sender, so a test can check where announces came from."""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Callable, List, Optional, Sequence, Tuple

PROTOCOL_ID = 0x41727101980


class UDPTracker:
    def __init__(self, host: str, peers: Sequence[Tuple[str, int]] = (), interval: int = 1800,
                 peers_for_announce: Optional[Callable[[], Sequence[Tuple[str, int]]]] = None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.peers = list(peers)
        self.interval = interval
        # Called at each announce for the peers to answer with (instead of `peers`).
        self.peers_for_announce = peers_for_announce
        # time.monotonic() at which each announce answer was sent.
        self.answered_at: List[float] = []
        # (sender address, sender port, action, announced port or None)
        self.requests: List[Tuple[str, int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"udp://{host}:{self.port}"

    def _compact(self, peers) -> bytes:
        out = b""
        for host, port in peers:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            out += socket.inet_pton(family, host) + struct.pack(">H", port)
        return out

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 16:
                continue
            connection, action, transaction = struct.unpack(">QII", data[:16])
            if action == 0 and connection == PROTOCOL_ID:
                self.requests.append((sender[0], sender[1], 0, None))
                self.sock.sendto(struct.pack(">IIQ", 0, transaction, 0x1234_5678_9ABC), sender)
            elif action == 1 and len(data) >= 98:
                port = struct.unpack(">H", data[96:98])[0]
                self.requests.append((sender[0], sender[1], 1, port))
                peers = list(self.peers_for_announce()) if self.peers_for_announce else self.peers
                reply = struct.pack(">IIIII", 1, transaction, self.interval, 0, len(peers)) + self._compact(peers)
                self.answered_at.append(time.monotonic())
                self.sock.sendto(reply, sender)

    def announces(self) -> List[Tuple[str, int, int, int]]:
        return [r for r in self.requests if r[2] == 1]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
