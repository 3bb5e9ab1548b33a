#!/usr/bin/env bash
# The client's HTTP edge, with raw bytes from the app: pipelined answers stay in order up to
# a malformed request and then its 400; a bare LF is refused wherever it ends a line; an
# HTTP/1.1 request without Host is a 400; the local path in absolute form is answered here;
# an invalid answer from upstream (Content-Length with Transfer-Encoding, a body after the
# answer to HEAD) reaches the app as a 502, never as a closed connection.
source "$(dirname "$0")/lib.sh"
PEER="$CG_SOURCE_DIR/tests/integration/peer.py"

# raw PORT BYTES: sends BYTES (printf format) on one connection, prints the answer (repr).
raw() {
    python3 "$PEER" raw "$1" "$(printf "$2" | od -An -v -tx1 | tr -d ' \n')"
}

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
start_client "$T/policy.json"

# Pipelining: the POST is answered before the 400 of the garbage that followed it.
out=$(raw "$CLI_PORT" 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nAAAAAgarbage\r\n\r\n')
python3 - "$out" <<'PY' || fail "pipelined POST then garbage: $out"
import ast, sys
b = ast.literal_eval(sys.argv[1])
first = b.find(b"HTTP/1.1 200")
bad = b.find(b"HTTP/1.1 400")
assert 0 == first < bad, (first, bad)
assert b"AAAAA" in b[first:bad], "the POST's body is not in its answer"
PY
pass "pipelined answers in order, then the 400"

# Bare LF: as a line end inside the head and as the blank line that ends it.
for req in 'GET / HTTP/1.1\nHost: x\r\n\r\n' 'GET / HTTP/1.1\r\nHost: x\n\r\n' \
    'GET / HTTP/1.1\r\nHost: x\r\n\n'; do
    out=$(raw "$CLI_PORT" "$req")
    [[ "$out" == "b'HTTP/1.1 400"* ]] || fail "bare LF in $(printf %q "$req"): $out"
done
pass "bare LF refused (400) wherever it ends a line"

out=$(raw "$CLI_PORT" 'GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n')
[[ "$out" == "b'HTTP/1.1 400"* ]] || fail "HTTP/1.1 without Host: $out"
grep -q 'Host' <<<"$out" || fail "the 400 does not name Host: $out"
out=$(raw "$CLI_PORT" 'GET / HTTP/1.0\r\n\r\n')
[[ "$out" == "b'HTTP/1.1 200"* ]] || fail "HTTP/1.0 without Host is allowed: $out"
pass "HTTP/1.1 without Host: 400"

before=$(curl -fsS "http://127.0.0.1:$UP_PORT/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
out=$(raw "$CLI_PORT" 'GET http://x/.well-known/ccgate/verification HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
[[ "$out" == "b'HTTP/1.1 200"* ]] || fail "absolute-form verification: $out"
grep -q '"verified": true' <<<"$out" || fail "absolute-form verification body: $out"
after=$(curl -fsS "http://127.0.0.1:$UP_PORT/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
[ "$after" = "$before" ] || fail "the absolute-form local request went upstream"
pass "absolute-form local path answered locally"

# An upstream that answers badly, behind a real server sidecar.
kill "$CLI_PID" "$SRV_PID"
wait "$CLI_PID" "$SRV_PID" 2>/dev/null || true
UP_PORT=$(free_port)
start bad python3 "$PEER" bad-server "$UP_PORT"
wait_log "$T/bad.log" listening
SRV_PORT=$(free_port)
start_server server-bad
start_client "$T/policy.json" client-bad
URL="http://127.0.0.1:$CLI_PORT"
code=$(curl -sS --max-time 10 -o "$T/clte.json" -w '%{http_code}' "$URL/clte") ||
    fail "Content-Length with Transfer-Encoding: curl failed ($code)"
[ "$code" = 502 ] || fail "Content-Length with Transfer-Encoding: expected 502, got $code"
grep -q '"error"' "$T/clte.json" || fail "502 body: $(cat "$T/clte.json")"
# HEAD then GET on one connection: the HEAD's answer arrives, the bytes after it are nobody's
# answer (that leg is dropped) and the GET is answered over another.
out=$(raw "$CLI_PORT" 'HEAD /headbody HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n')
python3 - "$out" <<'PY' || fail "HEAD with a body, then GET: $out"
import ast, sys
b = ast.literal_eval(sys.argv[1])
assert b.startswith(b"HTTP/1.1 200"), "HEAD"
second = b.find(b"HTTP/1.1 ", 1)
assert second > 0, "no answer to the GET"
assert b[second:].startswith(b"HTTP/1.1 200") or b[second:].startswith(b"HTTP/1.1 502"), b[second:]
PY
pass "invalid upstream answers: 502, not a closed connection"
