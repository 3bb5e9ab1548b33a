#!/usr/bin/env bash
# A failed appraisal shows: after a rogue simulated TEE (another root) takes over the server's
# port, /.well-known/ccgate/verification says verified false with the failing check and
# /readyz is not ready, until an appraisal of the genuine server passes again.
source "$(dirname "$0")/lib.sh"

start_upstream
sim_init
GOOD_STATE=$STATE
start_server
write_policy "$T/policy.json"
start_client "$T/policy.json" client --pool-max 0
URL="http://127.0.0.1:$CLI_PORT"
ADM="http://127.0.0.1:$CLI_ADMIN"
VER="$URL/.well-known/ccgate/verification"

curl -fsS --max-time 10 -o /dev/null "$URL/bytes/10" || fail "first request"
curl -fsS "$VER" | grep -q '"verified": true' || fail "not verified after a good appraisal"
curl -fsS -o /dev/null "$ADM/readyz" || fail "not ready after a good appraisal"

# The rogue: a sim TEE with another root on the same port.
kill "$SRV_PID"
wait "$SRV_PID" 2>/dev/null || true
"$CG_BIN/ccgate" sim-init --state-dir "$T/rogue" >/dev/null
STATE="$T/rogue" start_server rogue
for i in 1 2; do
    code=$(curl -sS --max-time 10 -o "$T/r$i.json" -w '%{http_code}' "$URL/bytes/10")
    [ "$code" = 502 ] || fail "request $i to the rogue: expected 502, got $code"
done
code=$(curl -sS --max-time 10 -o "$T/ver.json" -w '%{http_code}' "$VER")
[ "$code" = 503 ] || fail "verification after failed appraisals: expected 503, got $code: $(cat "$T/ver.json")"
python3 - "$T/ver.json" "$T/r2.json" <<'PY' || fail "verification: $(cat "$T/ver.json")"
import json, sys
v, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert v["verified"] is False, v
assert v["last_failure"]["check"] == r["check"], (v, r)
PY
code=$(curl -sS -o "$T/ready.txt" -w '%{http_code}' "$ADM/readyz")
[ "$code" = 503 ] || fail "/readyz after failed appraisals: $code $(cat "$T/ready.txt")"
grep -q "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["check"])' "$T/r2.json")" \
    "$T/ready.txt" || fail "/readyz does not name the failing check: $(cat "$T/ready.txt")"
pass "failed appraisal: verification and readyz say so, with the check"

kill "$LAST_PID"
wait "$LAST_PID" 2>/dev/null || true
STATE=$GOOD_STATE start_server genuine
curl -fsS --max-time 10 -o /dev/null "$URL/bytes/10" || fail "request after the genuine server came back"
curl -fsS "$VER" | grep -q '"verified": true' || fail "not verified after a passing appraisal"
curl -fsS -o /dev/null "$ADM/readyz" || fail "not ready after a passing appraisal"
pass "a later passing appraisal makes it verified and ready again"
