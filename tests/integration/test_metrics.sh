#!/usr/bin/env bash
# Both sidecars' /metrics pass `promtool check metrics` (Debian's prometheus package) with no
# finding, after traffic and after a failed appraisal, and carry ccgate_build_info; so does a
# client with two forwards (each family once, every sample labelled forward=NAME).
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
curl -sf "http://127.0.0.1:$F1/v1/models" >/dev/null || fail "request through forward ok"
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
