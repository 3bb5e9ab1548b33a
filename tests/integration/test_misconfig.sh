#!/usr/bin/env bash
# The first mistakes of a new user get an answer that names them: the client pointed at a
# plain HTTP port, the two sidecars in different --mode, `policy from-evidence` at either,
# curl straight at the server's RA-TLS port.
source "$(dirname "$0")/lib.sh"

start_upstream
sim_init
write_policy "$T/policy.json"
start_server server --mode tcp

# The client (http mode) against the tcp-mode server: ALPN refused, in words.
start_client "$T/policy.json" client
curl -s "http://127.0.0.1:$CLI_PORT/v1/models" >"$T/mode.json" || true
grep -q 'different --mode' "$T/mode.json" || fail "mode mismatch: $(cat "$T/mode.json")"
rc=0
"$CG_BIN/ccgate" policy from-evidence --server "127.0.0.1:$SRV_PORT" --allow-sim 2>"$T/fe.err" || rc=$?
[ $rc -eq 1 ] || fail "from-evidence at a tcp-mode server: exit $rc"
grep -q 'different --mode' "$T/fe.err" || fail "from-evidence, mode mismatch: $(cat "$T/fe.err")"
pass "sidecars in different --mode: said so"

# The client pointed at the upstream itself (plain HTTP).
SRV_PORT=$UP_PORT start_client "$T/policy.json" client2
curl -s "http://127.0.0.1:$CLI_PORT/v1/models" >"$T/plain.json" || true
grep -q 'not TLS: the peer answered something else' "$T/plain.json" ||
    fail "plain port: $(cat "$T/plain.json")"
rc=0
"$CG_BIN/ccgate" policy from-evidence --server "127.0.0.1:$UP_PORT" 2>"$T/fe2.err" || rc=$?
[ $rc -eq 1 ] || fail "from-evidence at a plain port: exit $rc"
grep -q 'not TLS' "$T/fe2.err" || fail "from-evidence, plain port: $(cat "$T/fe2.err")"
pass "client at a plain HTTP port: said so"

# Plain HTTP to the server's RA-TLS port: the server's log says what came.
curl -s -m 5 "http://127.0.0.1:$SRV_PORT/v1/models" >/dev/null 2>&1 || true
wait_log "$T/server.log" "handshake.failed .*plain HTTP request: the peer is no ccgate-client"
pass "plain HTTP at the server: logged in words"
