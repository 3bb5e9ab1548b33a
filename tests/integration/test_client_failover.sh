#!/usr/bin/env bash
# The server sidecar dies (kill -9) or restarts (SIGTERM) under 16 keep-alive app connections:
# every request whose head the app sent gets an HTTP status (an idempotent one is retried
# once on a fresh, verified connection; otherwise 502 with a JSON body), and a graceful
# restart costs no request at all.
source "$(dirname "$0")/lib.sh"
LOAD="$CG_SOURCE_DIR/tests/integration/load.py"

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
# Requests may wait for the server through a restart (the server's drain deadline below).
start_client "$T/policy.json" client --server-wait-ms 15000
ADM="http://127.0.0.1:$CLI_ADMIN"
curl -fsS --max-time 10 -o /dev/null "http://127.0.0.1:$CLI_PORT/bytes/10" || fail "first request"

# check_load FILE ALLOWED_STATUSES: every request got a status, and only those.
check_load() {
    python3 - "$1" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
allowed = sys.argv[2].split(",")
assert c.get("nostatus", 0) == 0, "closed without a status: %s" % c
bad = {k: v for k, v in c.items() if k not in allowed + ["errors"]}
assert not bad, "unexpected statuses: %s" % c
assert c.get("200", 0) > 0, "no request succeeded: %s" % c
PY
}

# kill -9 in the middle of the load, then the server comes back.
python3 "$LOAD" "$CLI_PORT" 16 4 /slow?ms=20 >"$T/kill.json" &
LOAD_PID=$!
sleep 1.5
kill -9 "$SRV_PID"
wait "$SRV_PID" 2>/dev/null || true
sleep 0.3
start_server server2 --drain-timeout-s 5
wait "$LOAD_PID" || fail "load generator failed"
cat "$T/kill.json"
check_load "$T/kill.json" 200,502 || fail "kill -9 under load: $(cat "$T/kill.json")"
retries=$(metric "$ADM" ccgate_client_retries_total)
[ "${retries:-0}" -ge 1 ] || fail "no request was retried after kill -9 (retries=$retries)"
pass "kill -9 under 16 keep-alive clients: every request answered, $retries retried"

# A graceful restart: SIGTERM, then the same server again on the same port.
python3 "$LOAD" "$CLI_PORT" 16 4 /slow?ms=20 >"$T/term.json" &
LOAD_PID=$!
sleep 1.5
kill -TERM "$SRV_PID"
wait "$SRV_PID" 2>/dev/null || true
start_server server3
wait "$LOAD_PID" || fail "load generator failed"
cat "$T/term.json"
check_load "$T/term.json" 200 || fail "SIGTERM restart under load: $(cat "$T/term.json")"
pass "graceful server restart under load: no request lost"

# A server that stays away: requests wait --server-wait-ms, then 502 server_unreachable.
start_client "$T/policy.json" client-wait --server-wait-ms 400
kill -9 "$SRV_PID"
wait "$SRV_PID" 2>/dev/null || true
start=$(date +%s%N)
code=$(curl -sS --max-time 10 -o "$T/gone.json" -w '%{http_code}' "http://127.0.0.1:$CLI_PORT/bytes/10")
ms=$((($(date +%s%N) - start) / 1000000))
[ "$code" = 502 ] || fail "server gone: expected 502, got $code"
grep -q '"error": "server_unreachable"' "$T/gone.json" || fail "502 body: $(cat "$T/gone.json")"
[ "$ms" -ge 300 ] && [ "$ms" -lt 5000 ] || fail "server gone: answered after $ms ms (wait 400 ms)"
pass "server gone: 502 server_unreachable after the wait ($ms ms)"
