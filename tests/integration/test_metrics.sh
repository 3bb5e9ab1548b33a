#!/usr/bin/env bash
# Both sidecars' /metrics pass `promtool check metrics` (Debian's prometheus package) with no
# finding, after traffic and after a failed appraisal, and carry ccgate_build_info; the
# server counts requests and latency, and bytes while they move.
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || fail "promtool missing: scripts/install-deps.sh installs prometheus"

start_upstream
sim_init
write_policy "$T/policy.json"
write_policy "$T/wrong.json" "$(printf '%096d' 0)"
TOKEN=$(openssl rand -hex 32)
printf '%s' "$TOKEN" | "$CG_BIN/ccgate" token hash --name m >"$T/tokens"
start_server server --tokens "$T/tokens"
start_client "$T/policy.json"
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$CLI_PORT/v1/models" >/dev/null ||
    fail "request through the pair"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CLI_PORT/v1/models")" = 401 ] ||
    fail "a request without the token was not refused"
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$CLI_PORT/v1/chat/completions" \
    -d '{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}' >/dev/null ||
    fail "streamed request through the pair"
ok_port=$CLI_ADMIN
# The server's request metrics, and byte counters that moved while its connection (pooled by
# the client) is still open.
S="http://127.0.0.1:$SRV_ADMIN"
[ "$(metric "$S" 'ccgate_server_requests_total{code="2xx"}')" -ge 2 ] || fail "server 2xx not counted"
[ "$(metric "$S" 'ccgate_server_upstream_latency_seconds_count')" -ge 2 ] || fail "no latency observed"
[ "$(metric "$S" 'ccgate_server_upstream_latency_seconds_bucket{le="+Inf"}')" -ge 2 ] || fail "no +Inf bucket"
[ "$(metric "$S" 'ccgate_server_requests_total{code="4xx"}')" -ge 1 ] || fail "the 401 not counted"
[ "$(metric "$S" 'ccgate_server_auth_failures_total{reason="missing"}')" -ge 1 ] || fail "refusal not counted"
[ "$(metric "$S" 'ccgate_server_connections_active')" = "$(metric "$S" 'ccgate_server_connections_total')" ] ||
    fail "a server connection closed: the byte check below would prove nothing"
[ "$(metric "$S" 'ccgate_server_bytes_total{direction="from_client"}')" -gt 100 ] ||
    fail "server bytes from the client not counted while the connection is open"
[ "$(metric "$S" 'ccgate_server_bytes_total{direction="to_client"}')" -gt 100 ] ||
    fail "server bytes to the client not counted while the connection is open"
start_client "$T/wrong.json" client2
curl -s "http://127.0.0.1:$CLI_PORT/v1/models" >/dev/null || true

for url in "127.0.0.1:$SRV_ADMIN" "127.0.0.1:$ok_port" "127.0.0.1:$CLI_ADMIN"; do
    curl -sf "http://$url/metrics" >"$T/metrics.txt" || fail "GET $url/metrics"
    promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 ||
        fail "promtool on $url: $(cat "$T/promtool.out")"
    [ ! -s "$T/promtool.out" ] || fail "promtool findings on $url: $(cat "$T/promtool.out")"
    grep -Eq '^ccgate_build_info\{program="ccgate-(client|server)",version="[0-9.]+"\} 1$' \
        "$T/metrics.txt" || fail "no ccgate_build_info on $url"
done
grep -q 'check="snp.measurement"' "$T/metrics.txt" || fail "the failed appraisal is not counted"
pass "promtool: no findings on the server's and both clients' /metrics; build_info"
