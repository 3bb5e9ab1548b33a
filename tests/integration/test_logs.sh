#!/usr/bin/env bash
# --log-format json: every line the worker, the server and the client write is one JSON
# object with ts, level, prog and event, and key=value data as top-level fields (no logfmt
# string inside "msg"); the worker announces readiness as the worker.listen event.
source "$(dirname "$0")/lib.sh"

# check_json FILE: every line a JSON object with the four fields and no "k=v" msg.
check_json() {
    python3 - "$1" <<'PY'
import json, re, sys
n = 0
for line in open(sys.argv[1]):
    n += 1
    o = json.loads(line)
    for k in ("ts", "level", "prog", "event"):
        assert isinstance(o.get(k), str), (k, line)
    assert not re.match(r"^[a-z_]+=", o.get("msg", "")), ("logfmt inside msg", line)
assert n > 0, "no lines"
PY
}

# The worker: JSON from the first line; the listen event carries the address.
"$CG_BIN/ccgate-worker" --listen 127.0.0.1:0 --model builtin:tiny --threads 1 --ctx 64 \
    --log-format json 2>"$T/worker.json" & PIDS+=($!)
wpid=$!
wait_log "$T/worker.json" '"event":"worker.listen"' 30
waddr=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o["event"] == "worker.listen": print(o["addr"])' "$T/worker.json")
curl -sf "http://$waddr/health" >/dev/null || fail "worker /health at $waddr"
kill -TERM $wpid
wait_exit $wpid
check_json "$T/worker.json" || fail "worker log: $(head -5 "$T/worker.json")"
grep -q '"event":"worker.model".*"layers":[0-9]' "$T/worker.json" || fail "worker.model fields"
grep -q 'listening on' "$T/worker.json" && fail "a plain-text line in JSON mode"
pass "worker logs JSON, fields at the top"

# The pair, through a request and a failed appraisal.
start_upstream
sim_init
write_policy "$T/policy.json"
write_policy "$T/wrong.json" "$(printf '%096d' 0)"
start_server server --log-format json --log-level debug
start_client "$T/policy.json" client --log-format json --log-level debug --access-log off
curl -sf "http://127.0.0.1:$CLI_PORT/v1/models" >/dev/null || fail "request through the pair"
start_client "$T/wrong.json" client2 --log-format json
curl -s "http://127.0.0.1:$CLI_PORT/v1/models" >/dev/null || true
kill -TERM "$SRV_PID"
wait_exit "$SRV_PID"
for f in server client client2; do
    check_json "$T/$f.log" || fail "$f log: $(head -5 "$T/$f.log")"
done
# has_event FILE EVENT FIELD TYPE: some line of FILE is EVENT with FIELD a top-level TYPE.
has_event() {
    python3 - "$@" <<'PY'
import json, sys
path, event, field, kind = sys.argv[1:]
want = {"int": int, "str": str}[kind]
assert any(o["event"] == event and isinstance(o.get(field), want)
           for o in map(json.loads, open(path))), (event, field)
PY
}
has_event "$T/server.log" conn.close id int && has_event "$T/server.log" conn.close reason str ||
    fail "server conn.close fields: $(grep conn.close "$T/server.log" | head -2)"
grep -q '"event":"attest.failed".*"check":"snp.measurement"' "$T/client2.log" ||
    fail "client attest.failed fields: $(grep attest "$T/client2.log" | head -2)"
pass "server and client log JSON, fields at the top"
grep -q '"event":"request"' "$T/client.log" && fail "--access-log off: a request line"
pass "--access-log off: no request line, even at debug"

# The access log: one line per request with top-level method, path (no query), status,
# duration_ms, ...; the request id is the app's x-request-id when valid, else one made here,
# and reaches the server's upstream (the worker logs it in its own request line) and the app.
"$CG_BIN/ccgate-worker" --listen 127.0.0.1:0 --model builtin:tiny --threads 1 --ctx 64 \
    --log-format json 2>"$T/worker2.json" & PIDS+=($!)
wait_log "$T/worker2.json" '"event":"worker.listen"' 30
waddr=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o["event"] == "worker.listen": print(o["addr"])' "$T/worker2.json")
UP_PORT=${waddr##*:}
SRV_PORT=$(free_port)
SRV_ADMIN=$(free_port)
start_server server3 --log-format json
start_client "$T/policy.json" client3 --log-format json
U="http://127.0.0.1:$CLI_PORT"
curl -sf -D "$T/h1" -o /dev/null -H 'X-Request-Id: app-req-42' "$U/v1/models?token=SECRET-Q" ||
    fail "request with an id"
curl -sf -D "$T/h2" -o /dev/null "$U/health" || fail "request without an id"
curl -sf -D "$T/h3" -o /dev/null -H 'X-Request-Id: two words' "$U/v1/models" ||
    fail "request with a bad id"
curl -s -D "$T/h4" -o /dev/null "$U/.well-known/ccgate/nothing" || true
curl -s -D "$T/h5" -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"x": 1}' \
    "$U/v1/completions" || true
sleep 0.2
python3 - "$T" <<'PY' || fail "access log: $(grep '"event":"request"' "$T/client3.log" "$T/worker2.json" | head -8)"
import json, os, re, sys
t = sys.argv[1]
def lines(name):
    return [o for o in map(json.loads, open(os.path.join(t, name))) if o["event"] == "request"]
def rid(h):
    for l in open(os.path.join(t, h)):
        if l.lower().startswith("x-request-id:"):
            return l.split(":", 1)[1].strip()
    raise AssertionError(h + ": no x-request-id")
cl, wk = lines("client3.log"), lines("worker2.json")
assert len(cl) == 5, cl
for o in cl:
    for k, kind in (("forward", str), ("conn", int), ("req", int), ("method", str), ("path", str),
                    ("status", int), ("bytes_in", int), ("bytes_out", int),
                    ("duration_ms", (int, float)), ("request_id", str), ("ts", str)):
        assert isinstance(o.get(k), kind), (k, o)
    assert o["level"] == "info" and o["prog"] == "ccgate-client", o
    assert "SECRET-Q" not in json.dumps(o), o
by = {o["request_id"]: o for o in cl}
wby = {o["request_id"]: o for o in wk}
assert rid("h1") == "app-req-42", rid("h1")
a, w = by["app-req-42"], wby["app-req-42"]
assert (a["method"], a["path"], a["status"]) == ("GET", "/v1/models", 200), a
assert a["bytes_out"] > 0 and isinstance(a.get("upstream_ms"), (int, float)), a
assert (w["method"], w["path"], w["status"]) == ("GET", "/v1/models", 200), w
assert isinstance(w["duration_ms"], (int, float)) and w["bytes_out"] > 0, w
g = rid("h2")
assert re.fullmatch(r"[0-9a-f]{32}", g), g
assert by[g]["path"] == "/health" and wby[g]["path"] == "/health", (by[g], wby.get(g))
b = rid("h3")
assert re.fullmatch(r"[0-9a-f]{32}", b) and b in by and b in wby, b
n = by[rid("h4")]
assert (n["path"], n["status"]) == ("/.well-known/ccgate/nothing", 404) and "upstream_ms" not in n, n
p = by[rid("h5")]
assert (p["method"], p["bytes_in"]) == ("POST", 8) and p["status"] == wby[rid("h5")]["status"], p
PY
pass "access log lines: the interface fields; request ids passed on, made, replaced and returned"

# The worker logs a request it refuses as malformed too.
python3 - "$waddr" <<'PY' || fail "malformed request to the worker"
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(b"GET /bad HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
assert s.recv(4096).startswith(b"HTTP/1.1 400"), "no 400"
PY
sleep 0.2
python3 - "$T/worker2.json" <<'PY' || fail "worker 400 line: $(grep '"event":"request"' "$T/worker2.json" | tail -2)"
import json, sys
ls = [o for o in map(json.loads, open(sys.argv[1])) if o["event"] == "request"]
assert ls[-1]["status"] == 400 and isinstance(ls[-1]["duration_ms"], (int, float)), ls[-1]
assert ls[-1]["method"] in ("GET", "-") and ls[-1]["path"] in ("/bad", "-"), ls[-1]
PY
pass "the worker's line for a refused request"

# A failed appraisal's line names the check (client2 ran with the access log on by default).
python3 - "$T/client2.log" <<'PY' || fail "failed appraisal line: $(grep '"event":"request"' "$T/client2.log")"
import json, sys
ls = [o for o in map(json.loads, open(sys.argv[1])) if o["event"] == "request"]
assert len(ls) == 1 and ls[0]["status"] == 502, ls
assert ls[0]["check"] == "snp.measurement" and ls[0]["error"] == "attestation_failed", ls
assert "upstream_ms" not in ls[0], ls
PY
pass "a failed appraisal's request line names the check"
