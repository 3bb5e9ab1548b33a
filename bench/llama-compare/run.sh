#!/usr/bin/env bash
# ccgate-worker beside llama.cpp on the same GGUF files (bench/llama-compare/README.md).
#   1. installs node-llama-cpp 3.21.1 (prebuilt llama.cpp) under build/llama-compare once;
#   2. writes each model once (gb-gen --write = `ccgate-worker gen-model`: random weights,
#      real shapes);
#   3. per model and type, runs llama.cpp (llama.mjs) and the worker (gb-gen) alternately,
#      REPS times each: the same prompt of PROMPT token ids, GEN greedy tokens (16 by default,
#      a few minutes in all here; --full: 64, for the agreement of longer generations);
#   4. prints medians, the load average seen with each run, greedy-token agreement, and
#        RATIO worker_cpu_decode_vs_llamacpp <v> model=NAME type=TYPE
#        RATIO worker_cpu_prefill_vs_llamacpp <v> model=NAME type=TYPE
#      (worker tok/s over llama.cpp tok/s), or the worker_gpu_decode_b1 line with --device cuda.
# Usage: bench/llama-compare/run.sh [--models "small tinyllama-1.1b"] [--types "f16 q8_0 q4_0"]
#          [--reps 3] [--prompt 128] [--gen 16] [--full] [--threads 2] [--device cpu|cuda]
#          [--out FILE]
# Env: BIN (default build/release/bin), WORK (default build/llama-compare).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/release/bin}
WORK=${WORK:-build/llama-compare}
MODELS="small tinyllama-1.1b"
TYPES="f16 q8_0 q4_0"
REPS=3 PROMPT=128 GEN=16 THREADS=2 DEVICE=cpu OUT=
while [ $# -gt 0 ]; do
    case "$1" in
    --models) MODELS=$2; shift 2 ;;
    --types) TYPES=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --prompt) PROMPT=$2; shift 2 ;;
    --gen) GEN=$2; shift 2 ;;
    --full) GEN=64; shift ;;
    --threads) THREADS=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "llama-compare: unknown argument $1 (see the head of $0)" >&2; exit 2 ;;
    esac
done
case "$DEVICE" in cpu | cuda) ;; *) echo "llama-compare: --device cpu or cuda" >&2; exit 2 ;; esac
[ -x "$BIN/gb-gen" ] || { echo "llama-compare: $BIN/gb-gen missing (make build)" >&2; exit 2; }
command -v node >/dev/null || { echo "llama-compare: node missing (scripts/install-deps.sh --bench)" >&2; exit 2; }
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' ||
    { echo "llama-compare: node-llama-cpp 3.21.1 needs Node >= 20, this is $(node --version)" >&2; exit 2; }

mkdir -p "$WORK/models"
[ -z "$OUT" ] || exec > >(tee "$OUT")
if [ ! -f "$WORK/node_modules/node-llama-cpp/package.json" ]; then
    echo "llama-compare: installing node-llama-cpp 3.21.1 into $WORK (prebuilt llama.cpp)"
    (cd "$WORK" && { [ -f package.json ] || npm init -y >/dev/null; } &&
        npm i -E --no-audit --no-fund node-llama-cpp@3.21.1 >npm.log 2>&1) ||
        { echo "llama-compare: npm install failed, see $WORK/npm.log" >&2; exit 2; }
fi
cp bench/llama-compare/llama.mjs "$WORK/llama.mjs"

raw="$WORK/runs-$(date -u +%Y%m%dT%H%M%S).jsonl"
: >"$raw"
echo "llama-compare: $(date -u '+%F %T') UTC, $(nproc) CPUs, $THREADS threads, device $DEVICE," \
    "prompt $PROMPT, generate $GEN (greedy), $REPS runs each, alternating; raw: $raw"
echo "llama.cpp: node-llama-cpp $(node -p "require('./$WORK/node_modules/node-llama-cpp/package.json').version")"
for model in $MODELS; do
    for type in $TYPES; do
        f="$WORK/models/$model-$type.gguf"
        if [ ! -f "$f" ]; then
            t0=$(date +%s)
            "$BIN/gb-gen" --write "$model" "$type" "$f"
            echo "wrote $f ($(du -h "$f" | cut -f1), $(($(date +%s) - t0)) s)"
        fi
        for rep in $(seq 1 "$REPS"); do
            # alternate which program runs first so that neither always gets the warmer cache
            if [ $((rep % 2)) -eq 1 ]; then order="llama worker"; else order="worker llama"; fi
            for prog in $order; do
                load=$(cut -d' ' -f1 /proc/loadavg)
                if [ "$prog" = llama ]; then
                    line=$(node "$WORK/llama.mjs" "$f" "$PROMPT" "$GEN" "$THREADS" "$DEVICE")
                else
                    line=$("$BIN/gb-gen" "$f" "$PROMPT" "$GEN" "$THREADS" "$DEVICE")
                fi
                echo "{\"model\":\"$model\",\"type\":\"$type\",\"prog\":\"$prog\",\"rep\":$rep,\"load\":$load,\"run\":$line}" >>"$raw"
            done
        done
    done
done
python3 bench/llama-compare/report.py "$raw" "$DEVICE"
