#!/usr/bin/env bash
# The pool of attested connections: the one the appraisal at start made, reused across app
# connections without a new handshake, closed when idle, dropped when the server closes it; a
# draining server ends idle pooled connections at once; after a server restart the client
# re-attests.
source "$(dirname "$0")/lib.sh"

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
CLI_PORT=$(free_port) CLI_ADMIN=$(free_port)
start client "$CG_BIN/ccgate-client" --listen "127.0.0.1:$CLI_PORT" --server "127.0.0.1:$SRV_PORT" \
    --policy "$T/policy.json" --admin "127.0.0.1:$CLI_ADMIN" --pool-idle-timeout-s 5
wait_log "$T/client.log" listening
# Ready: the server was appraised at start; that attested connection waits in the pool.
wait_ready "$CLI_ADMIN"
[ "$(metric "http://127.0.0.1:$CLI_ADMIN" ccgate_client_pool_connections)" = 1 ] ||
    fail "the appraisal at start left no pooled connection"
URL="http://127.0.0.1:$CLI_PORT"
ADM="http://127.0.0.1:$CLI_ADMIN"

for i in 1 2 3 4; do
    curl -fsS --max-time 10 -o /dev/null "$URL/bytes/100" || fail "request $i"
done
[ "$(metric "$ADM" ccgate_client_pool_connections)" = 1 ] || fail "pool should hold one"
[ "$(metric "$ADM" ccgate_client_handshakes_total)" = 1 ] ||
    fail "expected one handshake for four app connections, got $(metric "$ADM" ccgate_client_handshakes_total)"
[ "$(metric "$ADM" ccgate_client_pool_reused_total)" = 4 ] || fail "pool not reused"
conns=$(curl -fsS "http://127.0.0.1:$UP_PORT/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"])')
[ "$conns" = 2 ] || fail "the upstream saw $conns connections (this query included) for four requests"
pass "four app connections, one attested connection, one upstream connection"

# Idle in the pool past pool-idle-timeout-s: closed.
sleep 6
[ "$(metric "$ADM" ccgate_client_pool_connections)" = 0 ] || fail "idle pooled connection kept"
pass "pooled connection closed after pool-idle-timeout-s"

# A draining server closes the pooled connection at once and exits without waiting for the
# drain deadline; the client notices and drops it.
curl -fsS --max-time 10 -o /dev/null "$URL/bytes/100" || fail "request before restart"
[ "$(metric "$ADM" ccgate_client_pool_connections)" = 1 ] || fail "pool should hold one again"
kill -TERM "$SRV_PID"
wait_exit "$SRV_PID" 8 && [ "$EXIT_RC" = 0 ] || fail "server did not drain its idle pooled connection quickly"
for _ in $(seq 50); do
    [ "$(metric "$ADM" ccgate_client_pool_connections)" = 0 ] && break
    sleep 0.1
done
[ "$(metric "$ADM" ccgate_client_pool_connections)" = 0 ] || fail "client kept a connection the server closed"
pass "server drain closes idle pooled connections; the client drops them"

start_server server2
curl -fsS --max-time 10 -o /dev/null "$URL/bytes/5" || fail "request after the server restart"
[ "$(metric "$ADM" ccgate_client_key_changes_total)" -ge 1 ] || fail "key change not noticed"
pass "after the restart the client re-attests (new key)"
