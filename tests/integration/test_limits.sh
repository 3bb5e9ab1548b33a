#!/usr/bin/env bash
# Every client-side limit and timeout with the status the app gets: 431, 413, 503 over
# max-connections, 408 for a slow head, idle close, 504 for a slow server
# (test_upstream.sh: 502 when the upstream cannot be reached).
source "$(dirname "$0")/lib.sh"

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
CLI_PORT=$(free_port)
start client "$CG_BIN/ccgate-client" --listen "127.0.0.1:$CLI_PORT" --server "127.0.0.1:$SRV_PORT" \
    --policy "$T/policy.json" --max-header-bytes 1024 --max-body-bytes 1000 \
    --max-connections 4 --header-timeout-s 1 --idle-timeout-s 2 --response-timeout-s 2
CLI_PID=$LAST_PID
wait_log "$T/client.log" listening
URL="http://127.0.0.1:$CLI_PORT"

status() { curl -sS --max-time 20 -o "$T/body" -w '%{http_code}' "$@" || true; }

[ "$(status "$URL/bytes/10")" = 200 ] || fail "a plain request failed"
[ "$(status -H "X-Big: $(printf 'a%.0s' $(seq 1500))" "$URL/bytes/10")" = 431 ] ||
    fail "header over max-header-bytes: expected 431"
pass "431 for a head over max-header-bytes"

head -c 2000 /dev/urandom >"$T/big.bin"
head -c 500 /dev/urandom >"$T/small.bin"
[ "$(status --data-binary @"$T/big.bin" "$URL/echo")" = 413 ] || fail "Content-Length body: expected 413"
[ "$(status -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.bin" "$URL/echo")" = 413 ] ||
    fail "chunked body: expected 413"
[ "$(status --data-binary @"$T/small.bin" "$URL/echo")" = 200 ] || fail "body under the limit refused"
cmp -s "$T/body" "$T/small.bin" || fail "body under the limit not echoed"
pass "413 for bodies over max-body-bytes (length and chunked)"

# On an OpenAI path the same refusals are in the OpenAI shape, with X-Should-Retry: false.
openai_shape() { # WHAT CODE TYPE RETRY: checks the answer in $T/body and $T/hdr
    python3 - "$T/body" "$T/hdr" "$2" "$3" "$4" <<'PY' || fail "$1: $(cat "$T/hdr" "$T/body")"
import json, sys
body, hdr, code, typ, retry = sys.argv[1:]
e = json.load(open(body))["error"]
assert e["code"] == code and e["type"] == typ and e["param"] is None, e
assert e["message"].startswith("ccgate: ") and e["ccgate"]["error"] == code, e
h = open(hdr).read().lower()
assert "x-should-retry: " + retry in h and "x-request-id: " in h, h
PY
}
[ "$(status -D "$T/hdr" -H "X-Big: $(printf 'a%.0s' $(seq 1500))" "$URL/v1/models")" = 431 ] ||
    fail "OpenAI path, header over max-header-bytes: expected 431"
openai_shape "431 on /v1/models" bad_request ccgate_request_error false
[ "$(status -D "$T/hdr" --data-binary @"$T/big.bin" "$URL/v1/chat/completions")" = 413 ] ||
    fail "OpenAI path, body over max-body-bytes: expected 413"
openai_shape "413 on /v1/chat/completions" bad_request ccgate_request_error false
[ "$(status -D "$T/hdr" -H "X-Big: $(printf 'a%.0s' $(seq 1500))" "$URL/bytes/10")" = 431 ] ||
    fail "431 again"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["error"] == "bad_request"' \
    "$T/body" || fail "plain shape off the OpenAI paths: $(cat "$T/body")"
pass "431 and 413 on OpenAI paths in the OpenAI shape; plain elsewhere"

python3 - "$CLI_PORT" <<'PY' || fail "max-connections"
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
time.sleep(0.2)
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
assert data.startswith(b"HTTP/1.1 503"), data[:100]
assert b"too_many_connections" in data, data
PY
pass "503 over max-connections"

# SIGTERM while connections are held and a refused one still lingers: a clean exit.
python3 - "$CLI_PORT" >"$T/held.log" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
print("holding", flush=True)
time.sleep(4)
PY
HOLDER=$!
wait_log "$T/held.log" holding
sleep 0.3
kill -TERM "$CLI_PID"
wait_exit "$CLI_PID" 10 && [ "$EXIT_RC" = 0 ] || fail "client exit status $EXIT_RC after SIGTERM with held connections"
wait "$HOLDER" || true
pass "SIGTERM with held and refused connections: clean exit"
CLI_PORT=$(free_port)
start client2 "$CG_BIN/ccgate-client" --listen "127.0.0.1:$CLI_PORT" --server "127.0.0.1:$SRV_PORT" \
    --policy "$T/policy.json" --max-header-bytes 1024 --max-body-bytes 1000 \
    --max-connections 4 --header-timeout-s 1 --idle-timeout-s 2 --response-timeout-s 2
wait_log "$T/client2.log" listening
URL="http://127.0.0.1:$CLI_PORT"

python3 - "$CLI_PORT" <<'PY' || fail "header timeout"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
t0 = time.monotonic()
s.sendall(b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\n")
for _ in range(3):  # a trickle must not extend the deadline
    time.sleep(0.2)
    s.sendall(b"X-A: b\r\n")
data = s.recv(4096)
dt = time.monotonic() - t0
assert data.startswith(b"HTTP/1.1 408"), data[:100]
assert 0.8 < dt < 4, dt
PY
pass "408 when the head does not arrive within header-timeout-s"

python3 - "$CLI_PORT" <<'PY' || fail "header timeout on an OpenAI path"
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
data = b""
while b"}}}" not in data:
    chunk = s.recv(4096)
    assert chunk, data
    data += chunk
head, body = data.split(b"\r\n\r\n", 1)
assert head.startswith(b"HTTP/1.1 408") and b"X-Should-Retry: true" in head, head
e = json.loads(body)["error"]
assert e["code"] == "request_timeout" and e["type"] == "ccgate_request_error", e
PY
pass "408 on an OpenAI path (head not complete) in the OpenAI shape"

python3 - "$CLI_PORT" <<'PY' || fail "idle timeout"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while not data.endswith(b"0123456789") and b"\r\n\r\n" not in data:
    data += s.recv(4096)
t0 = time.monotonic()
while s.recv(4096):
    pass
dt = time.monotonic() - t0
assert 1.5 < dt < 5, dt
PY
pass "idle keep-alive connection closed after idle-timeout-s"

t0=$(date +%s%N)
[ "$(status "$URL/slow?ms=6000")" = 504 ] || fail "slow server: expected 504"
dt=$((($(date +%s%N) - t0) / 1000000))
grep -q upstream_timeout "$T/body" || fail "504 body: $(cat "$T/body")"
[ "$dt" -lt 5000 ] || fail "504 came after ${dt} ms"
[ "$(status "$URL/bytes/10")" = 200 ] || fail "a request after the 504 failed"
pass "504 when no response head comes within response-timeout-s (${dt} ms)"

