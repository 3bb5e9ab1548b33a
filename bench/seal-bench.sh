#!/usr/bin/env bash
# Sealed models: unseal throughput on one core and the load time of a 1 GiB sealed model
# against the same file in plaintext (issue: >= 1.5 GB/s, <= 1.3x). Uses the release build.
#   bench/seal-bench.sh [SIZE_MiB, default 1024] [CPU, default 0]
# Prints the numbers; writes them to bench/results/<date>-seal.txt with the machine's CPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CG_BIN:-$root/build/release/bin}
size=${1:-1024}
cpu=${2:-0}
for b in ccgate ccgate-seal-bench; do
    [ -x "$bin/$b" ] || { echo "seal-bench: $bin/$b missing (make build)" >&2; exit 2; }
done
t=$(mktemp -d "${TMPDIR:-/tmp}/ccgate-seal-bench.XXXXXX")
trap 'rm -rf "$t"' EXIT
# Random bytes (not a sparse file: the page cache would hold zero pages for free).
head -c $((size * 1024 * 1024)) /dev/urandom >"$t/plain"
"$bin/ccgate" seal --in "$t/plain" --out "$t/sealed" --key-out "$t/key.jwk" --name bench >/dev/null
out=$(taskset -c "$cpu" "$bin/ccgate-seal-bench" "$t/plain" "$t/sealed" "$t/key.jwk" 5)
cpu_name=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
flags=$(grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'aes|vaes|vpclmulqdq|sha_ni|avx512f' | sort -u | tr '\n' ' ')
report="# seal-bench $(date -u +%Y-%m-%dT%H:%MZ): ${size} MiB, one core (taskset -c $cpu), page cache warm,
# times = the thread's CPU time (user + system); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)
# cpu: $cpu_name; flags: $flags
# plain = read(2) into one buffer; unseal = cg_unseal_fd into one buffer (read in place,
# AES-256-GCM in place, SHA-256 of the plaintext): what ccgate-worker --kbs does per model
$out"
echo "$report"
mkdir -p "$root/bench/results"
echo "$report" >"$root/bench/results/$(date -u +%Y-%m-%d)-seal.txt"
