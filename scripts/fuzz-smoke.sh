#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/fuzz_*.c) with clang-14 in its own build folder
# and runs each for a while from its seed corpus (tests/fuzz/corpus/<target>/).
# Usage: scripts/fuzz-smoke.sh [seconds per target, default 20] [build dir]
# New findings are written to <build dir>/findings/<target>/, never into the source tree.
set -euo pipefail

secs=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${2:-$root/build/fuzz}
jobs=${FUZZ_JOBS:-2}

case $secs in
'' | *[!0-9]*)
    echo "fuzz-smoke: seconds must be a number, got '$secs'" >&2
    exit 2
    ;;
esac
command -v clang-14 >/dev/null || {
    echo "fuzz-smoke: clang-14 not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 2
}

CC=clang-14 cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCCGATE_FUZZ=ON >/dev/null

targets=()
for src in "$root"/tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    targets+=("$(basename "$src" .c)")
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz-smoke: no tests/fuzz/fuzz_*.c targets" >&2
    exit 1
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

status=0
for t in "${targets[@]}"; do
    corpus=$build/corpus/$t
    findings=$build/findings/$t
    mkdir -p "$corpus" "$findings"
    # A scratch copy: libFuzzer adds what it learns to the first corpus folder it is given.
    seeds=$root/tests/fuzz/corpus/$t
    if [ -d "$seeds" ]; then
        cp -r "$seeds"/. "$corpus"/
    else
        echo "fuzz-smoke: $t has no seed corpus in tests/fuzz/corpus/$t" >&2
    fi
    # Inputs up to 8 KiB, but RIMs (20 KiB) and RA-TLS claims with GPU evidence are larger.
    max_len=8192
    case $t in fuzz_rim | fuzz_gpuev | fuzz_ratls) max_len=131072 ;; esac
    echo "fuzz-smoke: $t for ${secs}s"
    if ! "$build/bin/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" \
        >"$build/$t.log" 2>&1; then
        echo "fuzz-smoke: $t FAILED, see $build/$t.log and $findings/" >&2
        tail -n 40 "$build/$t.log" >&2
        status=1
    else
        grep -E '^stat::number_of_executed_units|^Done' "$build/$t.log" || true
    fi
done
exit $status
