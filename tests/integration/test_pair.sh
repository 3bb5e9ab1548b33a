#!/usr/bin/env bash
# The attested pair end to end on the simulated TEE: a request through it, the local
# verification endpoint, openssl s_client seeing the evidence, the admin endpoints, SIGTERM.
source "$(dirname "$0")/lib.sh"

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
start_client "$T/policy.json"

# A request through the pair reaches the upstream and comes back.
out=$(curl -fsS --max-time 10 "http://127.0.0.1:$CLI_PORT/bytes/1000")
[ ${#out} -eq 1000 ] || fail "expected 1000 bytes through the pair, got ${#out}"
pass "GET through the pair"

# A POST with a chunked body is streamed through and echoed.
head -c 300000 /dev/urandom >"$T/body.bin"
curl -fsS --max-time 20 -H 'Transfer-Encoding: chunked' --data-binary @"$T/body.bin" \
    "http://127.0.0.1:$CLI_PORT/echo" -o "$T/echoed.bin"
cmp -s "$T/body.bin" "$T/echoed.bin" || fail "chunked POST not echoed byte for byte"
pass "chunked POST echoed"

# Keep-alive: several requests on one app connection.
n=$(curl -fsS --max-time 10 "http://127.0.0.1:$CLI_PORT/bytes/10" "http://127.0.0.1:$CLI_PORT/bytes/10" \
    "http://127.0.0.1:$CLI_PORT/bytes/10" -w "%{num_connects}\n" -o /dev/null | awk "{s+=\$1} END {print s}")
[ "$n" -eq 1 ] || fail "expected one app connection for three requests, got $n"
pass "keep-alive"

# The verification endpoint answers locally with what was verified.
v=$(curl -fsS --max-time 5 "http://127.0.0.1:$CLI_PORT/.well-known/ccgate/verification")
python3 - "$v" "$(sha384sum "$CG_BIN/ccgate-server" | cut -d' ' -f1)" <<'PY'
import json, sys
v = json.loads(sys.argv[1])
assert v["verified"] is True, v
assert v["tee"] == "sim" and v["insecure"] is True, v
assert v["measurement"] == sys.argv[2], v
for k in ("policy_digest", "cert_sha256", "verified_at", "tcb"):
    assert k in v, k
PY
pass "verification endpoint"
[ "$(metric "http://127.0.0.1:$CLI_ADMIN" ccgate_client_ready)" = 1 ] || fail "client not ready"
curl -fsS "http://127.0.0.1:$CLI_ADMIN/readyz" >/dev/null || fail "client /readyz"
curl -fsS "http://127.0.0.1:$SRV_ADMIN/healthz" >/dev/null || fail "server /healthz"
pass "admin endpoints"

# openssl s_client sees the RA-TLS certificate with the evidence extension.
echo | openssl s_client -connect "127.0.0.1:$SRV_PORT" -tls1_3 -alpn http/1.1 2>/dev/null |
    openssl x509 -noout -text >"$T/cert.txt"
grep -q "2.23.133.5.4.9" "$T/cert.txt" || fail "certificate lacks the evidence extension"
grep -q "ASN1 OID: prime256v1" "$T/cert.txt" || fail "server key is not P-256"
pass "s_client shows the evidence extension"

# TLS 1.2 is refused.
if echo | openssl s_client -connect "127.0.0.1:$SRV_PORT" -tls1_2 >/dev/null 2>&1; then
    fail "server accepted TLS 1.2"
fi
pass "TLS 1.2 refused"

# SIGTERM: both stop cleanly with status 0.
kill -TERM "$CLI_PID"
wait_exit "$CLI_PID" && [ "$EXIT_RC" = 0 ] || fail "client exit status after SIGTERM"
kill -TERM "$SRV_PID"
wait_exit "$SRV_PID" && [ "$EXIT_RC" = 0 ] || fail "server exit status after SIGTERM"
pass "SIGTERM"
