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

