#!/usr/bin/env bash
# `make run`: the main job of torrentfs, on this machine alone. Makes a sample (a few files,
# one of ~100 MiB), seeds it with `torrentfs seed` on 127.0.0.1, mounts torrentfs at a fresh
# folder, copies the magnet link into `.add`, lists the torrent's folder, streams the big
# file through the mount and checks its sha256 against the original, then shows how to
# look around and unmount. Only loopback is used (no trackers, no DHT). Ctrl-C cleans up.
set -euo pipefail
bin=$(realpath "${1:-.build/debug/torrentfs}")
work=$(mktemp -d /tmp/torrentfs-demo.XXXXXX)
mnt="$work/mnt"
seeder=""
mounted=""
cleanup() {
    set +e
    if [ -n "$mounted" ] && mountpoint -q "$mnt"; then
        fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
        for _ in $(seq 50); do [ -n "$(pgrep -f "torrentfs mount $mnt" || true)" ] || break; sleep 0.1; done
    fi
    if [ -n "$seeder" ] && kill -0 "$seeder" 2>/dev/null; then kill -INT "$seeder"; wait "$seeder"; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: unmounting and cleaning up"; exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

sample="$work/Sample Album"
mkdir -p "$sample/extras"
head -c $((100 * 1024 * 1024 + 12345)) /dev/urandom > "$sample/video.bin"
printf 'torrentfs demo: these files are streamed from a local seeder\n' > "$sample/README.txt"
head -c 70000 /dev/urandom > "$sample/extras/cover.jpg"
step "Sample content in $sample"
find "$sample" -type f -printf '%10s  %P\n' | sort -k2

port=$(( 20000 + RANDOM % 20000 ))
step "torrentfs seed \"$sample\" --port $port --lsd off --natpmp off --upnp off --dht off   (in the background)"
"$bin" seed "$sample" --port "$port" --state "$work/seed-state" --lsd off --natpmp off --upnp off --dht off > "$work/seed.out" 2> "$work/seed.err" &
seeder=$!
for _ in $(seq 200); do grep -q "verified" "$work/seed.err" 2>/dev/null && break; sleep 0.1; done
magnet="$(head -1 "$work/seed.out")&x.pe=127.0.0.1:$port"
echo "$magnet"

mkdir -p "$mnt"
step "torrentfs mount \"$mnt\" -o data=$work/data,port=0,lsd=off,natpmp=off,upnp=off,dht=off"
"$bin" mount "$mnt" -o "data=$work/data,port=0,lsd=off,natpmp=off,upnp=off,dht=off"
mounted=1
mount | grep " $mnt " || true

step "echo '<magnet>' > \"$mnt/.add\""
echo "$magnet" > "$mnt/.add"
ls -la "$mnt"

step "ls -lR \"$mnt/Sample Album\"   (waits for the metadata from the seeder)"
ls -lR "$mnt/Sample Album"

step "cat \"$mnt/Sample Album/README.txt\""
cat "$mnt/Sample Album/README.txt"

step "sha256sum of the big file, streamed through the mount, and of the original"
start=$(date +%s.%N)
streamed=$(sha256sum < "$mnt/Sample Album/video.bin" | cut -d' ' -f1)
end=$(date +%s.%N)
original=$(sha256sum < "$sample/video.bin" | cut -d' ' -f1)
echo "mount:    $streamed"
echo "original: $original"
echo "streamed $(stat -c %s "$sample/video.bin") bytes in $(echo "$end - $start" | bc) s"
[ "$streamed" = "$original" ] && echo "identical: every byte verified" || { echo "MISMATCH"; exit 1; }

step "A read at an offset (dd skip=50 MiB) and the file's extended attributes"
dd if="$mnt/Sample Album/video.bin" bs=1M skip=50 count=1 status=none | sha256sum
python3 -c 'import os,sys; p=sys.argv[1]; [print(n, os.getxattr(p, n).decode()) for n in os.listxattr(p)]' \
    "$mnt/Sample Album/video.bin"

step "torrentfs status \"$mnt\"   (a summary of the JSON in $mnt/.status)"
"$bin" status "$mnt"

cat <<EOF

Look around while it is mounted:
  ls -l "$mnt"                       # one folder per torrent, plus .add and .status
  cat "$mnt/.status"                 # JSON: state, progress, rates, peers, errors
  torrentfs status "$mnt" --watch    # live view
  echo 'magnet:?xt=…' > "$mnt/.add"  # add more (magnet, info hash, .torrent bytes, URL, path)
  rmdir "$mnt/Sample Album"          # remove a torrent
Unmount with:
  fusermount3 -u "$mnt"              # or: umount "$mnt"
EOF
if [ -t 0 ]; then
    read -r -p "Press Enter (or Ctrl-C) to unmount and clean up… " _ || true
fi
step "fusermount3 -u \"$mnt\""
fusermount3 -u "$mnt"
mounted=""
for _ in $(seq 50); do [ -n "$(pgrep -f "torrentfs mount $mnt" || true)" ] || break; sleep 0.1; done
echo "unmounted; the daemon has exited"
