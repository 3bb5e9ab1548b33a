#!/usr/bin/env bash
# The CPU forward pass against an independent numpy implementation (tests/reference/gb_ref.py)
# on builtin:tiny variants covering every weight type, qwen2 (QKV bias, NeoX RoPE, tied
# output) and linear RoPE scaling, both one token per step (KV cache) and whole-prompt prefill;
# the F16, Q8_0 and Q4_0 kernels again in every variant this CPU runs (CCGATE_CPU_ISA); and
# gen-model files (the "small" shape, 32,000 pieces, F16 and Q8_0), which must load and match
# too.
set -euo pipefail
: "${CG_BIN:?}" "${CG_SOURCE_DIR:?}"
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
    echo "python3-numpy missing" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ccgate-test_worker_reference.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
toks=1,50,300,400,7,99,12,13,200,201,202,203,204,205,206,207,208,209,210,211,212
while read -r variant; do
    # shellcheck disable=SC2086
    "$CG_BIN/ccgate-worker" gen-tiny --out "$tmp/m.gguf" $variant
    for mode in decode prefill; do
        echo -n "[$variant] "
        "$PY" "$CG_SOURCE_DIR/tests/reference/gb_ref.py" "$CG_BIN/ccgate-worker" "$tmp/m.gguf" "$toks" "$mode"
    done
done <<'VARIANTS'
--type f32
--type f16
--type bf16
--type q8_0
--type q4_0
--arch qwen2 --type q8_0
--rope-linear 2 --type f16
--bpe --arch qwen2 --type q4_0
VARIANTS
for isa in c avx2 avx512; do
    for t in f16 q8_0 q4_0; do
        "$CG_BIN/ccgate-worker" gen-tiny --out "$tmp/m.gguf" --type $t
        for mode in decode prefill; do
            echo -n "[$isa $t] "
            CCGATE_CPU_ISA=$isa "$PY" "$CG_SOURCE_DIR/tests/reference/gb_ref.py" \
                "$CG_BIN/ccgate-worker" "$tmp/m.gguf" "$toks" "$mode"
        done
    done
done
# 12 tokens: prefill products over more than one tile, in element slices (FF 1408 > 512)
for t in f16 q8_0; do
    "$CG_BIN/ccgate-worker" gen-model --shape small --type $t --seed 7 --out "$tmp/small.gguf"
    echo -n "[gen-model small $t] "
    "$PY" "$CG_SOURCE_DIR/tests/reference/gb_ref.py" "$CG_BIN/ccgate-worker" "$tmp/small.gguf" \
        1,3000,17,31999,400,5,6,7,800,9,10,11 prefill
done
echo PASS
