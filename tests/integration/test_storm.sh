#!/usr/bin/env bash
# Evidence is batched: the appraisal at start and 200 new connections at once cost a few
# evidence requests; a server restart (new key) is noticed and re-verified.
source "$(dirname "$0")/lib.sh"

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
# A loaded 2-core CI machine running 200 curl processes at once: allow slow handshakes. The
# storm comes while the client appraises the server at start: that appraisal counts.
before=$(metric "http://127.0.0.1:$SRV_ADMIN" 'ccgate_evidence_requests_total{tee="sim"}')
start_client "$T/policy.json" client --handshake-timeout-ms 60000
seq 200 | xargs -P 200 -I{} curl -fsS --max-time 90 -o /dev/null \
    "http://127.0.0.1:$CLI_PORT/bytes/100" || fail "a request of the storm failed"
after=$(metric "http://127.0.0.1:$SRV_ADMIN" 'ccgate_evidence_requests_total{tee="sim"}')
used=$((after - before))
echo "evidence requests for the start and 200 concurrent new connections: $used"
[ "$used" -ge 1 ] && [ "$used" -le 3 ] || fail "expected 1..3 evidence requests (one per burst), got $used"
ok=$(metric "http://127.0.0.1:$CLI_ADMIN" 'ccgate_client_responses_total{class="2xx"}')
[ "$ok" -ge 200 ] || fail "expected 200 answers, got $ok"
pass "storm batched into $used evidence requests"

# Later connections reuse the verified key: no new evidence.
before=$(metric "http://127.0.0.1:$SRV_ADMIN" 'ccgate_evidence_requests_total{tee="sim"}')
for i in 1 2 3; do curl -fsS --max-time 10 -o /dev/null "http://127.0.0.1:$CLI_PORT/"; done
after=$(metric "http://127.0.0.1:$SRV_ADMIN" 'ccgate_evidence_requests_total{tee="sim"}')
[ "$after" -eq "$before" ] || fail "known key needed new evidence ($before -> $after)"
pass "verified key remembered"

# Restart the server: a new key. The client notices, asks for fresh evidence, goes on.
kill -TERM "$SRV_PID"
wait_exit "$SRV_PID" && [ "$EXIT_RC" = 0 ] || fail "server exit status"
start_server server2
curl -fsS --max-time 10 -o /dev/null "http://127.0.0.1:$CLI_PORT/bytes/5" ||
    fail "request after the server restart failed"
changes=$(metric "http://127.0.0.1:$CLI_ADMIN" ccgate_client_key_changes_total)
[ "$changes" -ge 1 ] || fail "key change not noticed"
pass "server restart re-verified (key changes: $changes)"
