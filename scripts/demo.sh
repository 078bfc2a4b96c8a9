#!/usr/bin/env bash
# `make run`: makes a sample file tree, turns it into a torrent with `torrentfs create`,
# shows `torrentfs info`, then seeds it on 127.0.0.1 and downloads it again from the magnet
# link alone (metadata over ut_metadata), checking every byte. Only loopback is used: no
# trackers, no DHT. (The streaming mount demo arrives with the FUSE filesystem.)
set -euo pipefail
bin=$(realpath "${1:-.build/debug/torrentfs}")
work=$(mktemp -d /tmp/torrentfs-demo.XXXXXX)
seeder=""
cleanup() {
    if [ -n "$seeder" ] && kill -0 "$seeder" 2>/dev/null; then kill -INT "$seeder"; wait "$seeder" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
sample="$work/Sample Album"
mkdir -p "$sample/extras"
head -c $((96 * 1024 * 1024 + 12345)) /dev/urandom > "$sample/video.bin"
printf 'torrentfs demo\n' > "$sample/README.txt"
head -c 70000 /dev/urandom > "$sample/extras/cover.jpg"
echo "== Sample content in $sample"
find "$sample" -type f -printf '%10s  %P\n' | sort -k2
echo
echo "== torrentfs create \"$sample\" -o \"$work/sample.torrent\""
"$bin" create "$sample" -o "$work/sample.torrent"
echo
echo "== torrentfs info \"$work/sample.torrent\""
"$bin" info "$work/sample.torrent"
echo
port=$(( 20000 + RANDOM % 20000 ))
echo "== torrentfs seed \"$sample\" --port $port   (in the background)"
"$bin" seed "$sample" --port "$port" --state "$work/seed-state" > "$work/seed.out" 2> "$work/seed.err" &
seeder=$!
for _ in $(seq 100); do [ -s "$work/seed.out" ] && break; sleep 0.1; done
magnet=$(head -1 "$work/seed.out")
echo "$magnet"
echo
echo "== torrentfs download '<magnet>' --peer 127.0.0.1:$port -o \"$work/downloads\""
"$bin" download "$magnet" --peer "127.0.0.1:$port" -o "$work/downloads" --state "$work/dl-state"
echo
echo "== sha256 of the original and the downloaded copy"
(cd "$sample" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$work/a.sha"
(cd "$work/downloads/Sample Album" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$work/b.sha"
cat "$work/b.sha"
cmp -s "$work/a.sha" "$work/b.sha" && echo "identical: every byte verified" || { echo "MISMATCH"; exit 1; }
