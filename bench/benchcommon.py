"""Shared by the benchmark scripts: a private network namespace, free ports, random data."""
import ctypes, os, socket, subprocess, sys

CLONE_NEWNET = 0x40000000


def isolate():
    """Moves this process into a new network namespace with only loopback, up."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        sys.exit("bench: unshare(CLONE_NEWNET) failed (run as root): errno %d" % ctypes.get_errno())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 22))
            f.write(chunk)
            left -= len(chunk)
