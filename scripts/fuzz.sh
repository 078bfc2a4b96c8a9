#!/usr/bin/env bash
# Builds each libFuzzer target (the decoder's sources compiled with -sanitize=fuzzer,address)
# and runs it for a bounded time (FUZZ_SECONDS, default 60; FUZZ_TARGETS="kind …" picks some).
# A crash leaves its input in fuzz-artifacts/; copy it into Fuzz/crashers/KIND/ and
# `swift test` replays it (the FuzzRegressionTests of each test target).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
out=.build-fuzz
mkdir -p "$out" fuzz-artifacts
# libFuzzer reports a crash itself; Swift's backtracer, run on a fatalError in an ASan
# binary, reports a bogus stack-buffer-underflow and hangs, so no artifact is written.
export SWIFT_BACKTRACE=enable=no

# kind          fuzz target                   modules it imports, besides BitTorrent
# Targets importing no other module are compiled in one module with the BitTorrent sources
# (so they may use internal API); the others link BitTorrent and the modules listed, each
# built from only the files in module_sources (the rest of those modules pulls in NIO,
# swift-crypto and FUSE).
table='
bencode         Fuzz/FuzzBencode.swift
metainfo        Fuzz/FuzzMetainfo.swift
magnet          Fuzz/FuzzMagnet.swift
peerwire        Fuzz/FuzzPeerWire.swift
extension       Fuzz/FuzzExtension.swift
httptracker     Fuzz/FuzzHTTPTracker.swift
udptracker      Fuzz/FuzzUDPTracker.swift
mse             Fuzz/FuzzMSE.swift
utp             Fuzz/FuzzUTP.swift
krpc            Fuzz/FuzzKRPC.swift
lsd             Fuzz/FuzzLSD.swift
natpmp          Fuzz/FuzzNATPMP.swift
upnp            Fuzz/FuzzUPnP.swift
resumedata      Fuzz/FuzzResumeData.swift     TorrentEngine
addinput        Fuzz/FuzzAddInput.swift       TorrentEngine TorrentFSCore
mountoptions    Fuzz/FuzzMountOptions.swift   TorrentEngine TorrentFSCore
'
declare -A module_sources=(
    [BitTorrent]="Sources/BitTorrent/*.swift"
    [TorrentEngine]="Sources/TorrentEngine/ByteSize.swift Sources/TorrentEngine/EngineError.swift
        Sources/TorrentEngine/Storage/PieceStorage.swift Sources/TorrentEngine/Storage/PosixFile.swift
        Sources/TorrentEngine/Storage/ResumeData.swift Sources/TorrentEngine/Transport/EncryptionPolicy.swift"
    [TorrentFSCore]="Sources/TorrentFSCore/AddInput.swift Sources/TorrentFSCore/MountOptions.swift"
)
flags=(-O -sanitize=fuzzer,address -parse-as-library)

# Runs swiftc, its log in $out/build-NAME.log; on failure shows the log and stops.
compile() {
    local name=$1; shift
    if ! swiftc "${flags[@]}" "$@" > "$out/build-$name.log" 2>&1; then
        grep -v "ld.gold: warning" "$out/build-$name.log"
        exit 1
    fi
}

# A module as a static library with its .swiftmodule, once per run.
declare -A built=()
build_module() {
    local module=$1
    [ -n "${built[$module]:-}" ] && return
    echo "== fuzz: building module $module"
    # shellcheck disable=SC2086  # module_sources are globs and lists
    compile "module-$module" -module-name "$module" -emit-module -emit-module-path "$out/modules/$module.swiftmodule" \
        -I "$out/modules" -emit-library -static ${module_sources[$module]} -o "$out/lib/lib$module.a"
    built[$module]=1
}

mkdir -p "$out/modules" "$out/lib"
selected=${FUZZ_TARGETS:-$(echo "$table" | awk 'NF { print $1 }')}
status=0
for kind in $selected; do
    row=$(echo "$table" | awk -v kind="$kind" '$1 == kind')
    if [ -z "$row" ]; then echo "fuzz: no target $kind"; exit 1; fi
    read -r _ source imports <<< "$row"
    imports=${imports:-}
    echo "== fuzz $kind: building"
    if [ -z "$imports" ]; then
        compile "$kind" -module-name "Fuzz_$kind" Sources/BitTorrent/*.swift "$source" -o "$out/fuzz-$kind"
    else
        libraries=()
        for module in BitTorrent $imports; do
            build_module "$module"
            libraries=("$out/lib/lib$module.a" "${libraries[@]}")  # dependents first, for the linker
        done
        compile "$kind" -module-name "Fuzz_$kind" -I "$out/modules" -L "$out/lib" "$source" "${libraries[@]}" \
            -o "$out/fuzz-$kind"
    fi
    work="$out/corpus-$kind"
    mkdir -p "$work"
    # Seeds, and every crasher ever found: a regression fails at once.
    cp -n Fuzz/corpus/"$kind"/* Fuzz/crashers/"$kind"/* "$work"/ 2>/dev/null || true
    echo "== fuzz $kind: running ${seconds}s"
    if ! "$out/fuzz-$kind" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="fuzz-artifacts/$kind-" -print_final_stats=1 "$work" 2> "$out/fuzz-$kind.log"; then
        echo "fuzz $kind: FAILED — see $out/fuzz-$kind.log and fuzz-artifacts/"
        tail -30 "$out/fuzz-$kind.log"
        status=1
    else
        grep -E "stat::number_of_executed_units|cov:" "$out/fuzz-$kind.log" | tail -2
    fi
done
exit $status
