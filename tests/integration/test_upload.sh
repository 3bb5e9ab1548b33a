#!/usr/bin/env bash
# A large chunked upload streams through the pair: the worker's SHA-256 of what it received
# matches. CG_UPLOAD_MB sets the size (default 100; the issue asks for 100 MB).
source "$(dirname "$0")/lib.sh"
MB=${CG_UPLOAD_MB:-100}

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
start_client "$T/policy.json"

head -c $((MB * 1000000)) /dev/urandom >"$T/big.bin"
want=$(sha256sum "$T/big.bin" | cut -d' ' -f1)
t0=$(date +%s%N)
out=$(curl -fsS --max-time 240 -H 'Transfer-Encoding: chunked' -T "$T/big.bin" -X POST \
    "http://127.0.0.1:$CLI_PORT/upload") || fail "chunked upload of $MB MB failed"
dt=$((($(date +%s%N) - t0) / 1000000))
rm -f "$T/big.bin"
python3 - "$out" "$want" "$((MB * 1000000))" <<'PY' || fail "upload digest: $out"
import json, sys
r = json.loads(sys.argv[1])
assert r["bytes"] == int(sys.argv[3]), r
assert r["sha256"] == sys.argv[2], r
PY
echo "upload of $MB MB: ${dt} ms ($((MB * 1000 / (dt + 1))) MB/s)"
pass "chunked upload of $MB MB, digest matches"
for p in "$CLI_PID" "$SRV_PID"; do
    echo "VmHWM of $p: $(awk '/VmHWM/ {print $2, $3}' /proc/$p/status)"
done
