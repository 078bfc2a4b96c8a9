#!/usr/bin/env bash
# `make run`: makes a sample file tree, turns it into a torrent with `torrentfs create`,
# and shows `torrentfs info` of the result. (The streaming mount demo arrives with the
# FUSE filesystem.)
set -euo pipefail
bin=${1:-.build/debug/torrentfs}
work=$(mktemp -d /tmp/torrentfs-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
sample="$work/Sample Album"
mkdir -p "$sample/extras"
head -c $((24 * 1024 * 1024 + 12345)) /dev/urandom > "$sample/video.bin"
printf 'torrentfs demo\n' > "$sample/README.txt"
head -c 70000 /dev/urandom > "$sample/extras/cover.jpg"
echo "== Sample content in $sample"
find "$sample" -type f -printf '%10s  %P\n' | sort -k2
echo
echo "== torrentfs create \"$sample\" --tracker http://127.0.0.1:6969/announce -o \"$work/sample.torrent\""
"$bin" create "$sample" --tracker http://127.0.0.1:6969/announce -o "$work/sample.torrent"
echo
echo "== torrentfs info \"$work/sample.torrent\""
"$bin" info "$work/sample.torrent"
