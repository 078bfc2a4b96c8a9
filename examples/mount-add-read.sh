#!/usr/bin/env bash
# The whole life of a mount from a shell: mount, add a torrent, list it, read a file at an
# offset, look at .status, remove the torrent, unmount.
#
# usage: examples/mount-add-read.sh MAGNET|HASH|FILE.torrent [DATA_DIR]
#   (torrentfs on PATH, or TORRENTFS=/path/to/torrentfs)
set -euo pipefail
torrentfs=${TORRENTFS:-torrentfs}
what=$1
data=${2:-$(mktemp -d /tmp/torrentfs-data.XXXXXX)}
mnt=$(mktemp -d /tmp/torrentfs-mnt.XXXXXX)
trap 'fusermount3 -u "$mnt" 2>/dev/null || true; rmdir "$mnt"' EXIT

"$torrentfs" mount "$mnt" -o "data=$data,port=0"     # returns once mounted
if [ -f "$what" ]; then cp "$what" "$mnt/.add"; else echo "$what" > "$mnt/.add"; fi
folder=$(ls "$mnt" | head -1)                         # the new torrent's folder
find "$mnt/$folder" -type f -printf '%s\t%P\n'         # waits for the metadata
file=$(find "$mnt/$folder" -type f -printf '%s\t%p\n' | sort -n | tail -1 | cut -f2)
# 64 KiB from the middle of the biggest file: only the pieces under it are fetched.
size=$(stat -c %s "$file")
dd if="$file" bs=64K skip=$(( size / 2 / 65536 )) count=1 status=none | sha256sum
"$torrentfs" status "$mnt"
rmdir "$mnt/$(ls "$mnt" | head -1)"                   # removes the torrent (data kept)
"$torrentfs" status "$mnt"
