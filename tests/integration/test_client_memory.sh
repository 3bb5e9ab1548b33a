#!/usr/bin/env bash
# Memory per idle keep-alive app connection on the client at most 24 KiB (VmRSS of an
# optimised build: sanitizers multiply every allocation). Each connection made a request
# (an attested leg, a TLS connection) and went quiet; the memory goes back to the OS after
# the connections closed and the pool let its idle legs go.
source "$(dirname "$0")/lib.sh"

if nm "$CG_BIN/ccgate-client" 2>/dev/null | grep -q __asan_init ||
    ldd "$CG_BIN/ccgate-client" | grep -q libasan; then
    echo "skip: a sanitizer build; run with CG_BIN=build/release/bin"
    exit 0
fi
N=${CG_IDLE_CONNS:-1000}
start_upstream
sim_init
start_server
write_policy "$T/policy.json"
start_client "$T/policy.json" client --pool-idle-timeout-s 2
python3 "$CG_SOURCE_DIR/tests/integration/idle_mem.py" "$CLI_PID" "$CLI_PORT" "$N" /bytes/100 \
    >"$T/mem.json" || fail "idle_mem.py"
cat "$T/mem.json"
python3 - "$T/mem.json" <<'PY' || fail "client memory: $(cat "$T/mem.json")"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["per_conn_kib"] <= 24, "%.1f KiB per idle connection (limit 24)" % m["per_conn_kib"]
grown = m["after"] - m["base"]
assert grown <= (m["loaded"] - m["base"]) / 4, "not returned: %d KiB more after the burst" % grown
PY
pass "idle keep-alive connection: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["per_conn_kib"])' "$T/mem.json") KiB on the client, returned after"
