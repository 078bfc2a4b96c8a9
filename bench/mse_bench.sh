#!/usr/bin/env bash
# MSE micro-benchmark: modexp, 1000 handshakes with ourselves (in process), RC4 speed;
# with arguments `dial HOST PORT INFOHASH COUNT`, our initiator against another client.
# Built with swiftc -O from the BitTorrent sources alone (like the fuzz targets), so it
# needs no package build. Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build-bench
mkdir -p "$out"
# Rebuilt only when a source is newer than the binary (several benches run it).
if [ ! -x "$out/mse-bench" ] || [ -n "$(find Sources/BitTorrent bench/MSEBench.swift -newer "$out/mse-bench" -print -quit)" ]; then
    swiftc -O -parse-as-library -module-name MSEBench Sources/BitTorrent/*.swift bench/MSEBench.swift -o "$out/mse-bench" \
        2> >(grep -v "ld.gold: warning" >&2)
fi
"$out/mse-bench" "$@"
