#!/usr/bin/env bash
# ccgate-server's access log (on by default): one JSON `request` line per answered request with
# the same top-level fields as the client's (conn, req, method, path without the query, status,
# bytes_in, bytes_out, duration_ms, upstream_ms, request_id: kept when valid by the client's
# rule); byte counts are each request's and answer's body bytes (decoded), also for pipelined
# and chunked messages; --access-log off writes none.
source "$(dirname "$0")/lib.sh"
export PYTHONPATH="$CG_SOURCE_DIR/tests/integration" # tls_peer.py

start_upstream
sim_init
start_server server --log-format json

cat >"$T/pipe.py" <<'PY'
import json, sys
from tls_peer import connect, read_all
s = connect(int(sys.argv[1]))
reqs = [b"GET /bytes/3?q=secret HTTP/1.1\r\nHost: x\r\nx-request-id: abc-1\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nx-request-id: a\tb\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"GET /chunked/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]
s.sendall(b"".join(reqs))
data = read_all(s)
assert data.count(b"HTTP/1.1 200") == 4, data
print(json.dumps({"in": [0, 5, 3, 0], "out": [3, 5, 3, 5]}))  # body bytes
PY
timeout 30 python3 "$T/pipe.py" "$SRV_PORT" >"$T/sizes.json" || fail "pipelined requests: $(cat "$T/sizes.json")"
wait_log "$T/server.log" '"path":"/chunked/5"'
python3 - "$T/sizes.json" "$T/server.log" <<'PY' || fail "access log: $(grep '"event":"request"' "$T/server.log")"
import json, sys
want = json.load(open(sys.argv[1]))
lines = [o for o in map(json.loads, open(sys.argv[2])) if o["event"] == "request"]
assert len(lines) == 4, lines
for i, (o, bi, bo) in enumerate(zip(lines, want["in"], want["out"])):
    assert o["level"] == "info" and o["req"] == i + 1 and o["conn"] == lines[0]["conn"], o
    assert o["status"] == 200, o
    assert (o["bytes_in"], o["bytes_out"]) == (bi, bo), (o, bi, bo)
    assert 0 <= o["upstream_ms"] <= o["duration_ms"], o
assert [o["method"] for o in lines] == ["GET", "POST", "POST", "GET"], lines
assert [o["path"] for o in lines] == ["/bytes/3", "/echo", "/echo", "/chunked/5"], lines
# an id the client's rule refuses (here: a tab in it) is not logged; none is "-"
assert [o["request_id"] for o in lines] == ["abc-1", "-", "-", "-"], lines
PY
grep -q 'secret' "$T/server.log" && fail "the query reached the log"
pass "one line per pipelined request, body bytes each way, path without query, request id"

kill "$SRV_PID"
wait_exit "$SRV_PID"
SRV_PORT=$(free_port) SRV_ADMIN=$(free_port)
start_server server-off --log-format json --access-log off
timeout 30 python3 "$T/pipe.py" "$SRV_PORT" >/dev/null || fail "pipelined requests (log off)"
grep -q '"event":"request"' "$T/server-off.log" && fail "--access-log off: a request line"
pass "--access-log off: no request line"
