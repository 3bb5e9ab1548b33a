#!/usr/bin/env bash
# Message framing through the pair: Expect: 100-continue with a large body, HEAD, 204 and 304
# without bodies on one kept-alive connection, and pipelined requests answered in order.
source "$(dirname "$0")/lib.sh"
PEER="$CG_SOURCE_DIR/tests/integration/peer.py"

start_upstream
MOCK_PORT=$UP_PORT
sim_init
start_server
write_policy "$T/policy.json"
start_client "$T/policy.json"
URL="http://127.0.0.1:$CLI_PORT"

# curl waits for the 100 (10 s allowed); the body goes only after it.
head -c 3000000 /dev/urandom >"$T/body.bin"
t0=$(date +%s%N)
curl -sS -v --max-time 30 --expect100-timeout 10 -H 'Expect: 100-continue' \
    --data-binary @"$T/body.bin" "$URL/echo" -o "$T/echoed.bin" 2>"$T/curl.err" ||
    fail "100-continue upload failed"
dt=$((($(date +%s%N) - t0) / 1000000))
grep -q '< HTTP/1.1 100' "$T/curl.err" || fail "no 100 Continue reached curl"
cmp -s "$T/body.bin" "$T/echoed.bin" || fail "3 MB body not echoed after 100-continue"
[ "$dt" -lt 9000 ] || fail "the upload waited for curl's expect timeout (${dt} ms)"
pass "Expect: 100-continue passes, 3 MB echoed (${dt} ms)"

# Pipelining: three requests in one write, three answers in order.
timeout 30 python3 - "$CLI_PORT" <<'PY' || fail "pipelining"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /chunked/5 HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /bytes/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
parts = data.split(b"HTTP/1.1 200")
assert len(parts) == 4, data
assert b"Content-Length: 3" in parts[1] and b"Content-Length: 7" in parts[3], data
assert b"chunked" in parts[2].lower(), data
PY
pass "three pipelined requests answered in order"

# HEAD, 204, 304: no body on the wire whatever the headers say; the next answer parses.
UP_PORT=$(free_port) SRV_PORT=$(free_port) SRV_ADMIN=$(free_port)
start http-upstream python3 "$PEER" http-server "$UP_PORT"
wait_log "$T/http-upstream.log" listening
start_server server-py
start_client "$T/policy.json" client-py
timeout 30 python3 - "$CLI_PORT" "$MOCK_PORT" <<'PY' || fail "HEAD/204/304 framing"
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=20)
c.request("HEAD", "/len")
r = c.getresponse()
assert r.status == 200 and r.getheader("Content-Length") == "5000", r.getheaders()
assert r.read() == b""
c.request("GET", "/204")
r = c.getresponse()
assert r.status == 204 and r.read() == b"", r.getheaders()
assert r.getheader("Transfer-Encoding") is None, r.getheaders()
c.request("GET", "/304")
r = c.getresponse()
assert r.status == 304 and r.read() == b"", r.getheaders()
assert r.getheader("Content-Length") == "1234", r.getheaders()
assert r.getheader("ETag") == '"v1"', r.getheaders()
c.request("GET", "/after")
r = c.getresponse()
assert r.status == 200 and r.read() == b"ok /after", "framing broke after 204/304"
# Raw bytes: nothing follows the 204 and 304 heads.
import socket
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\n"
          b"HEAD /len HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
heads = data.split(b"\r\n\r\n")
assert heads[-1] == b"", data       # the stream ends right after the last head
assert len(heads) == 4, data        # three heads, no bytes between them
assert heads[0].startswith(b"HTTP/1.1 204") and heads[1].startswith(b"HTTP/1.1 304"), data
assert heads[2].startswith(b"HTTP/1.1 200") and b"Content-Length: 5000" in heads[2], data
PY
pass "HEAD, 204 and 304 carry no body through the pair"
