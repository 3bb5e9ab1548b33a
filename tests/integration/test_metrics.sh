#!/usr/bin/env bash
# Both sidecars' /metrics pass `promtool check metrics` (Debian's prometheus package) with no
# finding, after traffic and after a failed appraisal, and carry ccgate_build_info.
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || fail "promtool missing: scripts/install-deps.sh installs prometheus"

start_upstream
sim_init
write_policy "$T/policy.json"
write_policy "$T/wrong.json" "$(printf '%096d' 0)"
start_server
start_client "$T/policy.json"
curl -sf "http://127.0.0.1:$CLI_PORT/v1/models" >/dev/null || fail "request through the pair"
curl -sf "http://127.0.0.1:$CLI_PORT/v1/chat/completions" \
    -d '{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}' >/dev/null ||
    fail "streamed request through the pair"
ok_port=$CLI_ADMIN
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
