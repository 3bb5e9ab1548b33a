#!/usr/bin/env bash
# Retries: a pooled connection that the server closed just as it was reused. An idempotent
# request goes again over a new connection, verified first; a POST is not sent twice (502).
source "$(dirname "$0")/lib.sh"
PEER="$CG_SOURCE_DIR/tests/integration/peer.py"

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
RELAY_PORT=$(free_port)
start relay python3 "$PEER" stale-relay "$RELAY_PORT" "$SRV_PORT"
wait_log "$T/relay.log" listening
SRV_PORT=$RELAY_PORT
start_client "$T/policy.json"
URL="http://127.0.0.1:$CLI_PORT"
ADM="http://127.0.0.1:$CLI_ADMIN"

curl -fsS --max-time 10 -o /dev/null "$URL/bytes/10" || fail "first request"
sleep 4
out=$(curl -fsS --max-time 10 "$URL/bytes/10") || fail "GET on a dead pooled connection was not retried"
[ ${#out} = 10 ] || fail "retried GET answered ${#out} bytes"
wait_log "$T/relay.log" "dropped a reused connection"
[ "$(metric "$ADM" ccgate_client_retries_total)" = 1 ] || fail "retry not counted"
[ "$(metric "$ADM" ccgate_client_handshakes_total)" = 2 ] || fail "the retry did not use a new handshake"
pass "idempotent request retried over a new attested connection"

sleep 4
before=$(curl -fsS "http://127.0.0.1:$UP_PORT/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
code=$(curl -sS --max-time 10 -o "$T/post.json" -w '%{http_code}' --data-binary 'once' "$URL/echo")
[ "$code" = 502 ] || fail "POST on a dead pooled connection: expected 502, got $code"
grep -q server_ "$T/post.json" || fail "502 body: $(cat "$T/post.json")"
[ "$(metric "$ADM" ccgate_client_retries_total)" = 1 ] || fail "a POST was retried"
after=$(curl -fsS "http://127.0.0.1:$UP_PORT/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
[ "$after" = "$before" ] || fail "the upstream saw the POST ($before -> $after requests)"
pass "POST not retried: 502, and the upstream never saw it"
