#!/usr/bin/env bash
# Failed appraisals: 502 naming the check, and not one byte reaches the server's upstream.
source "$(dirname "$0")/lib.sh"

start_upstream
sim_init
start_server

# A policy pinning another measurement.
write_policy "$T/wrong.json" "$(printf '%096d' 0)"
start_client "$T/wrong.json" client-wrong
code=$(curl -sS --max-time 10 -o "$T/resp.json" -w '%{http_code}' -X POST -d 'secret prompt' \
    "http://127.0.0.1:$CLI_PORT/echo")
[ "$code" = 502 ] || fail "wrong measurement: expected 502, got $code"
python3 - "$T/resp.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["error"] == "attestation_failed", r
assert r["check"] == "snp.measurement", r
assert r["expected"] and r["actual"], r
PY
stats=$(curl -fsS "http://127.0.0.1:$UP_PORT/stats")
python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert s["requests"] == 0, s' "$stats" ||
    fail "the upstream saw a request despite the failed appraisal: $stats"
failed=$(metric "http://127.0.0.1:$CLI_ADMIN" 'ccgate_attestation_verifications_total{result="failed",check="snp.measurement"}')
[ "${failed:-0}" -ge 1 ] || fail "failed check not counted in /metrics"
pass "wrong measurement rejected, upstream untouched"

# A plain TLS server without evidence.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=plain \
    -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 2>/dev/null
PLAIN_PORT=$(free_port)
start plain openssl s_server -accept "127.0.0.1:$PLAIN_PORT" -cert "$T/cert.pem" \
    -key "$T/key.pem" -tls1_3 -alpn http/1.1 -www
wait_log "$T/plain.log" "ACCEPT"
write_policy "$T/good.json"
SRV_PORT_SAVED=$SRV_PORT
SRV_PORT=$PLAIN_PORT
start_client "$T/good.json" client-plain
SRV_PORT=$SRV_PORT_SAVED
code=$(curl -sS --max-time 10 -o "$T/resp2.json" -w '%{http_code}' "http://127.0.0.1:$CLI_PORT/")
[ "$code" = 502 ] || fail "plain TLS server: expected 502, got $code"
grep -q '"check": "cert.extension"' "$T/resp2.json" || fail "plain TLS: wrong check: $(cat "$T/resp2.json")"
pass "plain TLS server without evidence rejected"

# A policy that does not accept the sim TEE at all.
cat >"$T/nosim.json" <<JSON
{"snp": {"measurements": ["$(sha384sum "$CG_BIN/ccgate-server" | cut -d' ' -f1)"]}}
JSON
start_client "$T/nosim.json" client-nosim
code=$(curl -sS --max-time 10 -o "$T/resp3.json" -w '%{http_code}' "http://127.0.0.1:$CLI_PORT/")
[ "$code" = 502 ] || fail "sim not allowed: expected 502, got $code"
grep -q '"check": "evidence.tee"' "$T/resp3.json" || fail "sim not allowed: wrong check: $(cat "$T/resp3.json")"
pass "sim evidence refused when the policy does not allow it"

# Another sim root (someone else's simulated chain).
STATE2="$T/state2"
ROOT2=$("$CG_BIN/ccgate" sim-init --state-dir "$STATE2")
sed "s/$SIM_ROOT/$ROOT2/" "$T/good.json" >"$T/otherroot.json"
start_client "$T/otherroot.json" client-otherroot
code=$(curl -sS --max-time 10 -o "$T/resp4.json" -w '%{http_code}' "http://127.0.0.1:$CLI_PORT/")
[ "$code" = 502 ] || fail "other sim root: expected 502, got $code"
grep -q '"check": "sim.root"' "$T/resp4.json" || fail "other root: wrong check: $(cat "$T/resp4.json")"
pass "sim chain with another root refused"

# Nothing reached the upstream in all of this.
stats=$(curl -fsS "http://127.0.0.1:$UP_PORT/stats")
python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert s["requests"] == 0, s' "$stats" ||
    fail "the upstream saw requests: $stats"
pass "upstream saw nothing"
