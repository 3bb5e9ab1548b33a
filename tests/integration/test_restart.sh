#!/usr/bin/env bash
# Graceful server stop: on SIGTERM ccgate-server finishes the requests in flight, says
# "Connection: close" on their responses (so that clients stop reusing the connection) and
# closes with close_notify.
source "$(dirname "$0")/lib.sh"

start_upstream
sim_init
start_server server --log-level debug
write_policy "$T/policy.json"
start_client "$T/policy.json"
URL="http://127.0.0.1:$CLI_PORT"

# On the wire (the server's TLS, no verification needed to look): a response that begins
# after SIGTERM carries Connection: close, then the server ends the connection cleanly.
python3 - "$SRV_PORT" "$SRV_PID" <<'PY' || fail "no Connection: close on the response after SIGTERM"
import os, signal, socket, ssl, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
s.sendall(b"GET /bytes/10 HTTP/1.1\r\nHost: up\r\n\r\n")
first = b""
while not (b"\r\n\r\n" in first and len(first.split(b"\r\n\r\n", 1)[1]) >= 10):
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("closed before the first answer")
    first += chunk
assert b"connection: close" not in first.lower(), first
s.sendall(b"GET /slow?ms=700 HTTP/1.1\r\nHost: up\r\n\r\n")
time.sleep(0.2)
os.kill(pid, signal.SIGTERM)
data = b""
while True:
    try:
        chunk = s.recv(4096)
    except ssl.SSLEOFError:
        sys.exit("truncated: no close_notify")
    if not chunk:
        break
    data += chunk
head = data.split(b"\r\n\r\n", 1)[0].lower()
assert head.startswith(b"http/1.1 200"), data
assert b"\r\nconnection: close" in head, head
assert b"slept_ms" in data, data
PY
wait_exit "$SRV_PID" 10 && [ "$EXIT_RC" = 0 ] || fail "server exit status $EXIT_RC after SIGTERM"
grep -q "reason=shutdown" "$T/server.log" || fail "no graceful close logged"
pass "SIGTERM: the request in flight finished with Connection: close, then close_notify"

# Through the client: requests in flight at SIGTERM all finish; the server then exits.
start_server server2 --log-level debug
curl -fsS --max-time 10 -o /dev/null "$URL/bytes/10" || fail "request before the stop"
CURLS=()
for i in 1 2 3 4; do
    (curl -fsS --max-time 10 -o "$T/slow.$i" "$URL/slow?ms=800" && touch "$T/ok.$i") &
    CURLS+=("$!")
done
sleep 0.3
kill -TERM "$SRV_PID"
for pid in "${CURLS[@]}"; do wait "$pid" || true; done
for i in 1 2 3 4; do
    [ -f "$T/ok.$i" ] || fail "request $i in flight at SIGTERM failed"
    grep -q slept_ms "$T/slow.$i" || fail "request $i: incomplete answer"
done
wait_exit "$SRV_PID" 10 && [ "$EXIT_RC" = 0 ] || fail "server exit status $EXIT_RC"
pass "requests in flight at SIGTERM all answered; the server exited cleanly"
