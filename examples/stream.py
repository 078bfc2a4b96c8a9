#!/usr/bin/python3
"""Stream a file through a torrentfs mount: add a torrent, wait for its folder, read a
file from it while it downloads, and print the sha256 and the speed. Only the standard
library and the filesystem are used: any program can do the same.

usage: examples/stream.py MOUNTPOINT MAGNET|HASH|/path/to/file.torrent [FILE-IN-TORRENT]
"""
import hashlib, json, os, sys, time

mnt, what = sys.argv[1], sys.argv[2]
wanted = sys.argv[3] if len(sys.argv) > 3 else None

def torrents():
    return json.load(open(os.path.join(mnt, ".status")))["torrents"]

# .add takes a magnet, an info hash, a URL, or the bytes of a .torrent; a refused input
# fails the write or the close with EINVAL, and the reason is in .status.
before = {t["infoHash"] for t in torrents()}
payload = open(what, "rb").read() if os.path.isfile(what) else (what + "\n").encode()
try:
    with open(os.path.join(mnt, ".add"), "wb") as add:
        add.write(payload)
except OSError as error:
    reasons = json.load(open(os.path.join(mnt, ".status")))["addErrors"]
    sys.exit(f"refused: {error.strerror}: {reasons[-1]['error'] if reasons else '?'}")

# Ours is the torrent that appeared (or, added before, the one whose hash we named).
after = torrents()
ours = next((t for t in after if t["infoHash"] not in before), None) \
    or next((t for t in after if t["infoHash"] in what.lower()), None)
if ours is None:
    sys.exit("the torrent is not in .status")

def folder():  # named from dn or the hash, then renamed by the torrent's name
    return os.path.join(mnt, next(t for t in torrents() if t["infoHash"] == ours["infoHash"])["folder"])

for attempt in range(3):
    try:
        os.listdir(folder())  # a listing waits for the metadata; the folder then has its final name
        break
    except FileNotFoundError:
        pass  # renamed by the metadata between .status and the listing: ask again
files = [os.path.join(root, name) for root, _, names in os.walk(folder()) for name in names]
path = os.path.join(folder(), wanted) if wanted else max(files, key=os.path.getsize)

digest = hashlib.sha256()
start = time.monotonic()
size = 0
with open(path, "rb") as source:
    while chunk := source.read(1 << 20):  # each read completes once its pieces are verified
        digest.update(chunk)
        size += len(chunk)
elapsed = time.monotonic() - start
print(f"{os.path.relpath(path, mnt)}: {size} bytes in {elapsed:.2f} s "
      f"({size / max(elapsed, 1e-9) / 1e6:.1f} MB/s)")
print(f"sha256 {digest.hexdigest()}")
print(f"user.torrentfs.progress of the folder: {os.getxattr(folder(), 'user.torrentfs.progress').decode()}")
