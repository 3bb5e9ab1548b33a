#!/usr/bin/env bash
# GPU check for ccgate-worker, meant for ONE run on a GPU machine (about 2-5 minutes):
#   1. builds the CUDA path standalone: nvcc + a C compiler, linking only libc, libm,
#      pthreads, cudart and cuBLAS (no CMake, libuv, jansson or OpenSSL needed);
#   2. checks CUDA against the CPU path on builtin:tiny variants (f32, f16, bf16, q8_0, q4_0,
#      qwen2): prefill logits and 4x40 greedy tokens decoded in a batch;
#   3. times synthetic TinyLlama-1.1B and Llama-8B shapes in f16 and q8_0: prefill of 512
#      tokens (cuBLAS tensor-core GEMM), batch-1 decode (GB/s vs the measured bandwidth,
#      target 70 %), batch-32 decode (target 10x batch 1), host<->device copies per token,
#      and METRIC worker_gpu_decode_b1_bw_pct lines;
#   4. when Node >= 20 and node-llama-cpp (bench/llama-compare/run.sh installs it under
#      build/llama-compare) are present: the worker beside llama.cpp's CUDA build on the same
#      gen-model files (LLAMA_COMPARE_MODELS, default tinyllama-1.1b; llama-8b writes 16 GB),
#      RATIO worker_gpu_decode_b1_vs_llamacpp lines.
# Usage: bench/gpu-check.sh [--quick]      Env: NVCC, CC, OUT_DIR (default build/gpu-check)
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
CC=${CC:-$(command -v gcc || command -v cc || true)}
OUT=${OUT_DIR:-build/gpu-check}
[ -x "$NVCC" ] || { echo "gpu-check: nvcc not found (set NVCC)" >&2; exit 2; }
[ -n "$CC" ] || { echo "gpu-check: no C compiler (gcc or cc) found" >&2; exit 2; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$NVCC" --version | tail -1
mkdir -p "$OUT"
CFLAGS=(-O3 -std=c11 -D_GNU_SOURCE -Igpu-backend -Icommon/include -Wall -Wextra)
t0=$(date +%s)
pids=()
mkdir -p "$OUT/lib"
for m in gb_gguf gb_quant gb_kern gb_tok gb_model gb_tiny gb_cpu gb_sample; do
    "$CC" "${CFLAGS[@]}" -c "gpu-backend/$m.c" -o "$OUT/lib/$m.o" &
    pids+=($!)
done
"$CC" "${CFLAGS[@]}" -c bench/gb_bench.c -o "$OUT/gb_bench.o" &
pids+=($!)
"$CC" "${CFLAGS[@]}" -c bench/llama-compare/gb_gen.c -o "$OUT/gb_gen.o" &
pids+=($!)
# sm_80 and sm_90 as in the CMake build; GB_CUDA_ARCH=native builds for this GPU only (faster).
if [ "${GB_CUDA_ARCH:-}" = native ]; then
    ARCH=(-arch=native)
else
    ARCH=(-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90)
fi
"$NVCC" -O3 -std=c++17 "${ARCH[@]}" -Igpu-backend -Icommon/include \
    -c gpu-backend/gb_cuda.cu -o "$OUT/lib/gb_cuda.o"
for p in "${pids[@]}"; do wait "$p"; done
"$NVCC" -o "$OUT/gb-bench" "$OUT"/lib/gb_*.o "$OUT/gb_bench.o" -lcublas -lpthread -lm
"$NVCC" -o "$OUT/gb-gen" "$OUT"/lib/gb_*.o "$OUT/gb_gen.o" -lcublas -lpthread -lm
echo "built in $(( $(date +%s) - t0 )) s"
rc=0
"$OUT/gb-bench" "$@" || rc=$?
if command -v node >/dev/null && [ -f build/llama-compare/node_modules/node-llama-cpp/package.json ]; then
    BIN="$OUT" bash bench/llama-compare/run.sh --device cuda --threads 1 \
        --models "${LLAMA_COMPARE_MODELS:-tinyllama-1.1b}" --types "f16 q8_0" || rc=1
else
    echo "llama-compare: skipped (needs node >= 20 and node-llama-cpp 3.21.1 under" \
        "build/llama-compare; bash bench/llama-compare/run.sh --types f16 installs it)"
fi
exit $rc
