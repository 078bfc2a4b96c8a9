#!/usr/bin/env bash
# Builds each libFuzzer target (the BitTorrent codec sources compiled with
# -sanitize=fuzzer,address) and runs it for a bounded time. A crash leaves its input in
# fuzz-artifacts/; copy it into Fuzz/crashers/KIND/ and `swift test` replays it (FuzzRegressionTests).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
out=.build-fuzz
mkdir -p "$out" fuzz-artifacts
status=0
for target in Bencode Metainfo Magnet; do
    lower=$(echo "$target" | tr 'A-Z' 'a-z')
    echo "== fuzz $lower: building"
    if ! swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name "Fuzz$target" \
        Sources/BitTorrent/*.swift "Fuzz/Fuzz$target.swift" -o "$out/fuzz-$lower" > "$out/build-$lower.log" 2>&1; then
        grep -v "ld.gold: warning" "$out/build-$lower.log"
        exit 1
    fi
    work="$out/corpus-$lower"
    mkdir -p "$work"
    cp -n Fuzz/corpus/"$lower"/* "$work"/ 2>/dev/null || true
    echo "== fuzz $lower: running ${seconds}s"
    if ! "$out/fuzz-$lower" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="fuzz-artifacts/$lower-" -print_final_stats=1 "$work" 2> "$out/fuzz-$lower.log"; then
        echo "fuzz $lower: FAILED — see $out/fuzz-$lower.log and fuzz-artifacts/"
        tail -30 "$out/fuzz-$lower.log"
        status=1
    else
        grep -E "stat::number_of_executed_units|cov:" "$out/fuzz-$lower.log" | tail -2
    fi
done
exit $status
