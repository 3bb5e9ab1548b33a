#!/usr/bin/env bash
# ccgate-mock-worker against curl (and a little Python for raw sockets): every route,
# keep-alive, pipelining, backpressure, flags, SIGTERM. Needs CG_BIN (the build's bin dir).
set -euo pipefail

: "${CG_BIN:?CG_BIN must name the bin directory}"
MW=$CG_BIN/ccgate-mock-worker
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ccgate-test_mock_worker.XXXXXX")
pids=()

cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.err; do
        [ -e "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }
    done
    exit 1
}

# Starts the worker on $1 and waits (up to 10 s) for its "listening on" line; sets PID, ADDR.
start_worker() {
    local name=$1 listen=$2
    "$MW" --listen "$listen" 2>"$tmp/$name.err" &
    PID=$!
    pids+=("$PID")
    for _ in $(seq 200); do
        ADDR=$(sed -n 's/^listening on //p' "$tmp/$name.err")
        [ -n "$ADDR" ] && return 0
        kill -0 "$PID" 2>/dev/null || fail "$name exited early"
        sleep 0.05
    done
    fail "$name never said it was listening"
}

# Waits (up to 10 s) for our child $1 to exit; sets EXIT to its status, or "timeout".
wait_exit() {
    EXIT=timeout
    for _ in $(seq 200); do
        if ! kill -0 "$1" 2>/dev/null; then
            EXIT=0
            wait "$1" || EXIT=$?
            return 0
        fi
        sleep 0.05
    done
}

# Flags.
"$MW" --help | grep -q "/v1/chat/completions" || fail "--help"
"$MW" --version | grep -q "ccgate-mock-worker" || fail "--version"
rc=0; "$MW" --bogus 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "bad flag exit $rc, want 2"
rc=0; "$MW" --listen nonsense 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "bad --listen exit $rc, want 2"
rc=0; "$MW" --listen 127.0.0.1:99999 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "bad port exit $rc, want 2"

start_worker tcp 127.0.0.1:0
W=$PID
U=http://$ADDR
case $ADDR in 127.0.0.1:[0-9]*) ;; *) fail "odd address '$ADDR'" ;; esac

stat_field() { curl -sS "$U/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
[ "$(stat_field requests)" = 0 ] || fail "fresh worker has requests"

# Small routes.
[ "$(curl -sS "$U/")" = "ccgate mock worker" ] || fail "GET /"
curl -sS "$U/health" | grep -q '"ok"' || fail "/health"
curl -sS "$U/v1/models" | grep -q '"object":"list"' || fail "/v1/models"

# Sizes, with Content-Length and chunked.
out=$(curl -sS -D "$tmp/h1" -o "$tmp/b1" -w '%{size_download}' "$U/bytes/100000")
[ "$out" = 100000 ] || fail "/bytes/100000 gave $out bytes"
grep -qi '^content-length: 100000' "$tmp/h1" || fail "/bytes without Content-Length"
out=$(curl -sS -D "$tmp/h2" -o /dev/null -w '%{size_download}' "$U/chunked/70000")
[ "$out" = 70000 ] || fail "/chunked/70000 gave $out bytes"
grep -qi '^transfer-encoding: chunked' "$tmp/h2" || fail "/chunked not chunked"
out=$(curl -sS -o /dev/null -w '%{size_download}' "$U/bytes/0")
[ "$out" = 0 ] || fail "/bytes/0"
# HEAD: headers only.
curl -sS -I "$U/bytes/5000" | grep -qi '^content-length: 5000' || fail "HEAD /bytes"

# Echo and upload, larger than any buffer of the worker.
head -c 3000000 /dev/urandom >"$tmp/rand"
curl -sS --data-binary @"$tmp/rand" -H 'Content-Type: application/octet-stream' \
    -D "$tmp/h3" -o "$tmp/echoed" "$U/echo"
cmp -s "$tmp/rand" "$tmp/echoed" || fail "/echo changed the body"
grep -qi '^transfer-encoding: chunked' "$tmp/h3" || fail "/echo not chunked"
want=$(sha256sum "$tmp/rand" | cut -d' ' -f1)
got=$(curl -sS --data-binary @"$tmp/rand" "$U/upload")
[ "$got" = "{\"bytes\":3000000,\"sha256\":\"$want\"}" ] || fail "/upload said $got"
# A chunked upload (curl streams stdin with Transfer-Encoding: chunked).
got=$(curl -sS -H 'Transfer-Encoding: chunked' --data-binary @- "$U/upload" <"$tmp/rand")
[ "$got" = "{\"bytes\":3000000,\"sha256\":\"$want\"}" ] || fail "chunked /upload said $got"

# Completions.
curl -sS -d '{"model":"m1","messages":[]}' "$U/v1/chat/completions" >"$tmp/chat"
curl -sSN -d '{"stream":true,"events":5,"interval_ms":30}' "$U/v1/chat/completions" >"$tmp/sse"
python3 - "$tmp/chat" "$tmp/sse" 5 30 <<'EOF' || fail "chat answer or SSE stream"
import json, sys
raw = open(sys.argv[1], "rb").read()
j = json.loads(raw)
assert j["object"] == "chat.completion" and j["model"] == "m1", j
assert j["choices"][0]["message"]["role"] == "assistant"
assert 700 < len(raw) < 1500, len(raw)
lines = [l for l in open(sys.argv[2]).read().split("\n\n") if l]
n, gap = int(sys.argv[3]), int(sys.argv[4])
assert lines[-1] == "data: [DONE]", lines[-1]
events = [json.loads(l[len("data: "):]) for l in lines[:-1]]
assert len(events) == n, len(events)
t = [e["t_us"] for e in events]
assert all(b - a >= gap * 1000 * 0.8 for a, b in zip(t, t[1:])), t
assert events[-1]["choices"][0]["finish_reason"] == "stop"
assert events[0]["object"] == "chat.completion.chunk"
EOF
curl -sS -d '{}' "$U/v1/completions" | grep -q '"text_completion"' || fail "completions"
curl -sSN -d '{"stream":true}' "$U/v1/completions?events=3&interval_ms=0" >"$tmp/sse2"
[ "$(grep -c '^data: ' "$tmp/sse2")" = 4 ] || fail "SSE via query: $(cat "$tmp/sse2")"
# A client that goes away mid-stream: counted as cancelled, and no event is made after it.
ev0=$(stat_field stream_events)
c0=$(stat_field streams_cancelled)
[ "$c0" = 0 ] || fail "streams_cancelled before any cancel: $c0"
timeout 0.5 curl -sSN -d '{"stream":true,"events":1000,"interval_ms":20}' "$U/v1/chat/completions" \
    >/dev/null 2>&1 || true # timeout ends it (exit 124)
for _ in $(seq 50); do [ "$(stat_field streams_cancelled)" = 1 ] && break; sleep 0.05; done
[ "$(stat_field streams_cancelled)" = 1 ] || fail "cancelled stream not counted"
ev1=$(stat_field stream_events)
sleep 0.2
ev2=$(stat_field stream_events)
[ "$ev1" -gt "$ev0" ] && [ "$ev1" -lt $((ev0 + 1000)) ] || fail "stream events $ev0 -> $ev1"
[ "$ev2" = "$ev1" ] || fail "events still generated after the cancel: $ev1 -> $ev2"
code=$(curl -sS -o /dev/null -w '%{http_code}' -d 'not json' "$U/v1/chat/completions")
[ "$code" = 400 ] || fail "bad JSON gave $code"

# Errors.
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$U/nope")" = 404 ] || fail "404"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -d x "$U/bytes/3")" = 405 ] || fail "405"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$U/bytes/x")" = 400 ] || fail "400 bytes"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$U/slow?ms=-1")" = 400 ] || fail "400 slow"

# Slow and dying answers.
ms=$(curl -sS -o /dev/null -w '%{time_total}' "$U/slow?ms=300")
awk -v t="$ms" 'BEGIN {exit !(t >= 0.29)}' || fail "/slow took $ms s"
rc=0; curl -sS -o "$tmp/die" "$U/die?after=5" 2>/dev/null || rc=$?
[ "$rc" = 18 ] || fail "/die: curl exit $rc, want 18 (partial transfer)"
[ "$(wc -c <"$tmp/die")" = 5 ] || fail "/die sent $(wc -c <"$tmp/die") bytes"

# Keep-alive: two requests, one connection.
before=$(stat_field connections)
n=$(curl -sS -o /dev/null -o /dev/null -w '%{num_connects}\n' "$U/" "$U/bytes/10" | awk '{s += $1} END {print s}')
[ "$n" = 1 ] || fail "keep-alive: $n connects"
after=$(stat_field connections)
[ $((after - before)) = 2 ] || fail "keep-alive: connections went $before -> $after"

# Raw sockets: pipelining and HTTP/1.0 (answers in request order), a malformed request
# (400 with the reason, then close), and backpressure (a client that sends to /echo and never
# reads gets stalled, and the worker's memory stays bounded instead of holding the echo).
python3 - "${ADDR%:*}" "${ADDR##*:}" "$W" <<'EOF' || fail "raw socket checks"
import socket, sys
host, port, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def exchange(req):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(req)
    data = b""
    while True:
        x = s.recv(65536)
        if not x:
            return data.decode("latin-1")
        data += x

text = exchange(b"GET /slow?ms=100 HTTP/1.1\r\nHost: a\r\n\r\n"
                b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                b"GET /bytes/3 HTTP/1.1\r\nHost: a\r\n\r\n"
                b"GET / HTTP/1.0\r\n\r\n")
order = [text.find(m) for m in ('{"slept_ms":100}', "5\r\nhello\r\n0\r\n\r\n", "\r\n\r\nxxx",
                                "ccgate mock worker")]
assert -1 not in order and order == sorted(order), (order, text)
assert text.count("HTTP/1.1 200 OK") == 4, text
assert text.rstrip().endswith("ccgate mock worker"), text

# Many more pipelined requests than the worker keeps pending: it stops reading, then resumes.
text = exchange(b"GET /slow?ms=1 HTTP/1.1\r\nHost: a\r\n\r\n" * 300 + b"GET / HTTP/1.0\r\n\r\n")
assert text.count('{"slept_ms":1}') == 300 and text.endswith("ccgate mock worker\n"), text[-300:]

text = exchange(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\n")
assert text.startswith("HTTP/1.1 400 ") and "Transfer-Encoding" in text, text

def rss_kb():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

rss0 = rss_kb()
s = socket.create_connection((host, port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
total = 256 << 20
s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % total)
s.settimeout(3)
sent, block = 0, b"y" * 65536
try:
    while sent < total:
        sent += s.send(block)
except socket.timeout:
    pass
assert sent < 64 << 20, "worker kept reading: %d bytes accepted" % sent
grown = rss_kb() - rss0
assert grown < 64 << 10, "worker RSS grew by %d kB" % grown
print("echo stalled after %d bytes, RSS +%d kB" % (sent, grown), file=sys.stderr)
EOF
[ "$(stat_field bad_requests)" -ge 1 ] || fail "bad request not counted"

# Unix socket.
start_worker unix "unix:$tmp/mw.sock"
WU=$PID
[ "$ADDR" = "unix:$tmp/mw.sock" ] || fail "unix address '$ADDR'"
[ "$(curl -sS --unix-socket "$tmp/mw.sock" http://x/)" = "ccgate mock worker" ] || fail "unix GET /"
kill -TERM "$WU"
wait_exit "$WU"
[ "$EXIT" = 0 ] || fail "unix worker: exit $EXIT on SIGTERM, want 0"
[ ! -e "$tmp/mw.sock" ] || fail "socket file left behind"

# SIGTERM while an answer is on its way: it finishes, then the worker exits 0.
curl -sS -o "$tmp/slow" "$U/slow?ms=500" &
cpid=$!
inflight=0
for _ in $(seq 200); do
    # Ours plus the one asking.
    [ "$(stat_field active_connections)" -ge 2 ] && { inflight=1; break; }
    sleep 0.05
done
[ "$inflight" = 1 ] || fail "the slow request never reached the worker"
kill -TERM "$W"
wait "$cpid" || fail "in-flight request failed at SIGTERM"
grep -q slept_ms "$tmp/slow" || fail "in-flight answer lost"
wait_exit "$W"
[ "$EXIT" = 0 ] || fail "worker: exit $EXIT on SIGTERM, want 0"
rc=0; curl -sS -o /dev/null "$U/" 2>/dev/null || rc=$?
[ "$rc" != 0 ] || fail "still answering after SIGTERM"

echo "test_mock_worker: ok"
