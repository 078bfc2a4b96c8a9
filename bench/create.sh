#!/usr/bin/env bash
# `make bench` (creation part): `torrentfs create` hashing throughput on a 1 GiB file,
# next to mktorrent (same piece length, all threads) and `openssl speed -evp sha1` on one
# core, measured in the same run. Median of 3 runs each; the file is read once first so
# every tool hashes from the page cache.
set -euo pipefail
bin=${1:-.build/release/torrentfs}
size_mib=${BENCH_SIZE_MIB:-1024}
piece=${BENCH_PIECE:-1048576}
threads=$(nproc)
work=$(mktemp -d /tmp/torrentfs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
file="$work/data.bin"
echo "Preparing a ${size_mib} MiB file…"
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$file"
cat "$file" > /dev/null
bytes=$((size_mib * 1024 * 1024))

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }

ours=$(for i in 1 2 3; do rm -f "$work/o.torrent"; timed "$bin" create "$file" -o "$work/o.torrent" --piece-length "$piece" --no-date; done | median)
mk=$(for i in 1 2 3; do rm -f "$work/m.torrent"; timed mktorrent -l "$(awk -v p="$piece" 'BEGIN{print log(p)/log(2)}')" -t "$threads" -o "$work/m.torrent" "$file"; done | median)
ssl=$(openssl speed -evp sha1 -bytes 1048576 -seconds 3 2>/dev/null | awk '/^sha1/ {print $NF}' | sed 's/k$//')

ours_mbs=$(echo "$bytes / $ours / 1000000" | bc -l)
mk_mbs=$(echo "$bytes / $mk / 1000000" | bc -l)
ssl_mbs=$(echo "$ssl * 1000 / 1000000" | bc -l)
printf '\ntorrent creation, %d MiB file, %d-byte pieces, %d threads (median of 3)\n' "$size_mib" "$piece" "$threads"
printf '  torrentfs create      %8.0f MB/s\n' "$ours_mbs"
printf '  mktorrent -t %d        %8.0f MB/s\n' "$threads" "$mk_mbs"
printf '  openssl sha1, 1 core  %8.0f MB/s\n' "$ssl_mbs"
printf '  ratio torrentfs/mktorrent          %.2f×  (target ≥ 1.0)\n' "$(echo "$ours_mbs / $mk_mbs" | bc -l)"
printf '  ratio torrentfs/openssl single-core %.2f×\n' "$(echo "$ours_mbs / $ssl_mbs" | bc -l)"
# Check that both tools hashed the same pieces: same info hash.
ours_hash=$("$bin" info "$work/o.torrent" --json | awk -F'"' '/"infoHash"/ {print $4}')
mk_hash=$("$bin" info "$work/m.torrent" --json | awk -F'"' '/"infoHash"/ {print $4}')
[ "$ours_hash" = "$mk_hash" ] && echo "  info hashes agree: $ours_hash" || { echo "  info hashes DIFFER: $ours_hash vs $mk_hash"; exit 1; }
