#!/usr/bin/env bash
# Both sidecars' /metrics pass `promtool check metrics` (Debian's prometheus package) with no
# finding, after traffic and after a failed appraisal, and carry ccgate_build_info; so does a
# client with two forwards (each family once, every sample labelled forward=NAME). The server
# counts requests and latency, and bytes while they move.
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
wrong_port=$CLI_ADMIN

# One client, two forwards to the same server: one passing, one refusing.
F1=$(free_port) F2=$(free_port) TWO_ADMIN=$(free_port)
cat >"$T/two.json" <<JSON
{"admin": "127.0.0.1:$TWO_ADMIN", "forwards": [
  {"name": "ok", "listen": "127.0.0.1:$F1", "servers": ["127.0.0.1:$SRV_PORT"], "policy": "policy.json"},
  {"name": "wrong", "listen": "127.0.0.1:$F2", "servers": ["127.0.0.1:$SRV_PORT"], "policy": "wrong.json"}]}
JSON
start client-two "$CG_BIN/ccgate-client" --config "$T/two.json"
wait_log "$T/client-two.log" "forward=wrong"
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$F1/v1/models" >/dev/null ||
    fail "request through forward ok"
curl -s "http://127.0.0.1:$F2/v1/models" >/dev/null || true

for url in "127.0.0.1:$SRV_ADMIN" "127.0.0.1:$ok_port" "127.0.0.1:$wrong_port" \
    "127.0.0.1:$TWO_ADMIN"; do
    curl -sf "http://$url/metrics" >"$T/metrics.txt" || fail "GET $url/metrics"
    promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 ||
        fail "promtool on $url: $(cat "$T/promtool.out")"
    [ ! -s "$T/promtool.out" ] || fail "promtool findings on $url: $(cat "$T/promtool.out")"
    grep -Eq '^ccgate_build_info\{program="ccgate-(client|server)",version="[0-9.]+"\} 1$' \
        "$T/metrics.txt" || fail "no ccgate_build_info on $url"
done
grep -q 'forward="wrong",result="failed",check="snp.measurement"' "$T/metrics.txt" ||
    fail "the failed appraisal is not counted for its forward"
grep -q '^ccgate_client_requests_total{forward="ok"} [1-9]' "$T/metrics.txt" ||
    fail "forward ok: its request is not counted"
[ "$(grep -c '^# HELP ccgate_client_requests_total ' "$T/metrics.txt")" = 1 ] ||
    fail "a family repeated per forward"
pass "promtool: no findings on the server's and three clients' /metrics (one with two forwards)"

# Byte counters move with the bytes: a keep-alive connection still open is counted.
python3 - "$F1" "127.0.0.1:$TWO_ADMIN" <<'PY' || fail "byte counters of an open connection"
import re, socket, sys, urllib.request
def sample(direction):
    text = urllib.request.urlopen("http://%s/metrics" % sys.argv[2], timeout=10).read().decode()
    m = re.search(r'^ccgate_client_bytes_total\{forward="ok",direction="%s"\} (\d+)$' % direction,
                  text, re.M)
    return int(m.group(1))
before_in, before_out = sample("from_app"), sample("to_app")
req = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(req)
got = b""
while b"\r\n\r\n" not in got:
    got += s.recv(65536)
after_in, after_out = sample("from_app"), sample("to_app")
assert after_in - before_in == len(req), (before_in, after_in, len(req))
assert after_out > before_out, (before_out, after_out)
s.close()
PY
pass "byte counters include a connection still open"
