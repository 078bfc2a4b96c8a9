"""The responder side of an MSE/PE handshake in plain Python, for scripted peers
(hostile.py): it takes our client's encrypted handshake and selects plaintext for the
stream after it, so the scripted peer's plaintext behaviour runs unchanged behind an
encrypted handshake. Written from the MSE specification: 768-bit DH with generator 2,
HASH = SHA-1, RC4 with 1024 bytes discarded; reads exactly the bytes it needs."""

from __future__ import annotations

import hashlib
import os

P = int("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B2251"
        "4A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F4"
        "4C42E9A63A36210000000000090563", 16)
VC = bytes(8)
MAX_PAD = 512


def _sha1(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


class RC4:
    def __init__(self, key: bytes):
        s = list(range(256))
        j = 0
        for i in range(256):
            j = (j + s[i] + key[i % len(key)]) & 0xFF
            s[i], s[j] = s[j], s[i]
        self.s, self.i, self.j = s, 0, 0
        self.apply(bytes(1024))

    def apply(self, data: bytes) -> bytes:
        s, i, j = self.s, self.i, self.j
        out = bytearray(len(data))
        for n, byte in enumerate(data):
            i = (i + 1) & 0xFF
            j = (j + s[i]) & 0xFF
            s[i], s[j] = s[j], s[i]
            out[n] = byte ^ s[(s[i] + s[j]) & 0xFF]
        self.i, self.j = i, j
        return bytes(out)


def accept(conn, first: bytes, info_hash: bytes) -> bytes:
    """Runs the responder's side on ``conn`` (``recv_exact``/``send``), ``first`` being
    bytes already read; returns the initiator's initial payload (its BitTorrent
    handshake). Raises ValueError when the handshake is not for ``info_hash`` or offers
    no plaintext."""
    ya = int.from_bytes(first + conn.recv_exact(96 - len(first), 10), "big")
    xb = int.from_bytes(os.urandom(20), "big") | (1 << 159)
    conn.send(pow(2, xb, P).to_bytes(96, "big") + os.urandom(os.urandom(1)[0]))
    secret = pow(ya, xb, P).to_bytes(96, "big")
    marker = _sha1(b"req1", secret)
    window = b""
    while not window.endswith(marker):
        if len(window) >= MAX_PAD + len(marker):
            raise ValueError("MSE: no req1 marker")
        window += conn.recv_exact(1, 10)
    obfuscated = conn.recv_exact(20, 10)
    expected = bytes(a ^ b for a, b in zip(_sha1(b"req2", info_hash), _sha1(b"req3", secret)))
    if obfuscated != expected:
        raise ValueError("MSE: another torrent")
    decrypt = RC4(_sha1(b"keyA", secret, info_hash))
    encrypt = RC4(_sha1(b"keyB", secret, info_hash))
    fields = decrypt.apply(conn.recv_exact(14, 10))
    provide = int.from_bytes(fields[8:12], "big")
    if fields[:8] != VC or not provide & 1:
        raise ValueError(f"MSE: bad VC or no plaintext offered ({provide})")
    decrypt.apply(conn.recv_exact(int.from_bytes(fields[12:14], "big"), 10))
    length = int.from_bytes(decrypt.apply(conn.recv_exact(2, 10)), "big")
    payload = decrypt.apply(conn.recv_exact(length, 10)) if length else b""
    conn.send(encrypt.apply(VC + (1).to_bytes(4, "big") + bytes(2)))
    return payload
