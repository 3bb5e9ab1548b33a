#!/usr/bin/env bash
# ccgate-server --tokens: bearer tokens checked inside the attested TLS. Each check of the token
# path fails on its own (no header, another scheme, an unknown token, a token revoked by
# SIGHUP, a malformed or unreadable file, --tokens in TCP mode); a refused request never reaches
# the upstream, an accepted one reaches it without its Authorization header, the connection
# stays usable after a 401, the token never appears in a log, and the refusals are counted.
source "$(dirname "$0")/lib.sh"
export PYTHONPATH="$CG_SOURCE_DIR/tests/integration" # tls_peer.py

ALICE=$(openssl rand -hex 32)
BOB=$(openssl rand -base64 33 | tr -d '\n')
printf '%s\n' "$ALICE" | "$CG_BIN/ccgate" token hash --name alice >"$T/alice.line"
printf '%s' "$BOB" | "$CG_BIN/ccgate" token hash --name bob >"$T/bob.line"
want="sha256:$(printf '%s' "$ALICE" | sha256sum | cut -d' ' -f1) alice"
[ "$(cat "$T/alice.line")" = "$want" ] || fail "token hash printed '$(cat "$T/alice.line")', want '$want'"
{ echo "# test tokens"; cat "$T/alice.line"; } >"$T/tokens"

# ---- start-up refusals: each names the flag, the file line and what was expected ----
sim_init
UP_PORT=$(free_port)
expect_fatal() { # PATTERN ARGS...: ccgate-server exits 2 with PATTERN on stderr
    local pattern=$1 rc=0
    shift
    timeout 20 "$CG_BIN/ccgate-server" --listen "127.0.0.1:$(free_port)" \
        --upstream "127.0.0.1:$UP_PORT" --tee sim --state-dir "$STATE" "$@" >"$T/fatal.out" 2>&1 ||
        rc=$?
    [ "$rc" -eq 2 ] || fail "ccgate-server $* exited $rc, want 2: $(cat "$T/fatal.out")"
    grep -qF -- "$pattern" "$T/fatal.out" || fail "ccgate-server $*: no '$pattern' in: $(cat "$T/fatal.out")"
}
expect_fatal "--tokens: only with --mode http" --mode tcp --tokens "$T/tokens"
printf '%s\nsha256:%s\n' "$(cat "$T/alice.line")" "0123" >"$T/bad1"
expect_fatal "--tokens $T/bad1: line 2: digest: expected 64 hex digits, got 4" --tokens "$T/bad1"
printf '# c\n%s extra words\n' "$(cat "$T/alice.line")" >"$T/bad2"
expect_fatal "line 2: expected \`sha256:<64 hex digits> [NAME]\`" --tokens "$T/bad2"
printf 'Bearer %s\n' "$ALICE" >"$T/bad3"
expect_fatal "line 1: expected \`sha256:" --tokens "$T/bad3"
grep -qF "$ALICE" "$T/fatal.out" && fail "the refusal of a file holding a token printed it"
expect_fatal "--tokens $T/absent: cannot read" --tokens "$T/absent"
expect_fatal "--tokens $T: cannot read" --tokens "$T"
: >"$T/empty"
expect_fatal "no entry: expected at least one" --tokens "$T/empty"
pass "start-up refusals: TCP mode, bad lines (named), absent, a folder, empty"

# ---- an upstream that answers with the request's header names and its own count ----
cat >"$T/upstream.py" <<'PY'
import http.server, json, sys, threading
seen = {"requests": 0}
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with lock:
            seen["requests"] += 1
            count = seen["requests"]
        out = json.dumps({"path": self.path, "headers": sorted(k.lower() for k in self.headers),
                          "body": len(body), "count": count}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = answer
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("listening", flush=True)
s.serve_forever()
PY
start upstream python3 "$T/upstream.py" "$UP_PORT"
wait_log "$T/upstream.log" listening
write_policy "$T/policy.json"
start_server server --tokens "$T/tokens" --access-log on --log-format json
wait_log "$T/server.log" '"tokens":1'
start_client "$T/policy.json"
URL="http://127.0.0.1:$CLI_PORT"

# ---- refusals through the pair ----
refused() { # NAME PATH [CURL ARGS]: expects 401 with WWW-Authenticate: Bearer
    local name=$1 path=$2
    shift 2
    curl -sS -D "$T/$name.h" -o "$T/$name.b" "$@" "$URL$path" || fail "$name: curl failed"
    head -n1 "$T/$name.h" | grep -q ' 401' || fail "$name: $(head -n1 "$T/$name.h"), want 401"
    grep -qi '^www-authenticate: Bearer realm="ccgate"' "$T/$name.h" || fail "$name: no WWW-Authenticate: Bearer"
}
refused missing /v1/models
python3 - "$T/missing.b" <<'PY' || fail "the 401 on /v1/ is not OpenAI-shaped: $(cat "$T/missing.b")"
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert set(e) == {"message", "type", "code", "param"}, e
assert e["code"] == "auth.token" and e["param"] is None and "ccgate" in e["type"], e
assert "Bearer" in e["message"], e
PY
refused plain /health
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["error"]=="auth.token", d' \
    "$T/plain.b" || fail "the 401 off /v1/ is not plain JSON: $(cat "$T/plain.b")"
refused scheme /v1/models -H "Authorization: Basic $ALICE"
refused wrong /v1/models -H "Authorization: Bearer ${ALICE%?}0"
grep -qi 'error="invalid_token"' "$T/wrong.h" || fail "an unknown token's 401 says no invalid_token"
refused twice /v1/models -H "Authorization: Bearer $ALICE" -H "Authorization: Bearer $ALICE"
refused post /v1/chat/completions -H "Authorization: Bearer nope" -d '{"model":"m","messages":[]}'
[ "$(curl -sS "http://127.0.0.1:$UP_PORT/x" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')" = 1 ] ||
    fail "a refused request reached the upstream"
pass "401 + WWW-Authenticate for no header, Basic, an unknown token, two headers, a POST; none reached the upstream"

# ---- accepted: the upstream sees no Authorization ----
curl -sS -f -H "Authorization: Bearer $ALICE" "$URL/v1/models?x=1" >"$T/ok.json" || fail "a listed token was refused"
python3 - "$T/ok.json" <<'PY' || fail "accepted request: $(cat "$T/ok.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["path"] == "/v1/models?x=1", d
assert "authorization" not in d["headers"], d
PY
curl -sS -f -H "authorization: bearer   $ALICE" -d 'abc' "$URL/v1/completions" >/dev/null ||
    fail "a lower-case scheme with spaces was refused"
pass "a listed token passes; its Authorization header does not reach the upstream"

# ---- one connection, straight to the server: 401 then 200, pipelined, in order ----
cat >"$T/direct.py" <<'PY'
import sys
from tls_peer import connect, read_all
port, tok = int(sys.argv[1]), sys.argv[2]
s = connect(port)
def req(path, auth=None, body=b"", close=False):
    h = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % (path, len(body))
    if auth:
        h += "Authorization: %s\r\n" % auth
    if close:
        h += "Connection: close\r\n"
    return h.encode() + b"\r\n" + body
# refused with a body, accepted, a HEAD refused, refused, accepted (closing): in one write
s.sendall(req("/v1/a", "Bearer wrong-token-wrong-token-wrong-token", b"x" * 5000) +
          req("/v1/b", "Bearer " + tok, b"yy") + b"HEAD /v1/h HTTP/1.1\r\nHost: x\r\n\r\n" +
          req("/v1/c", None, b"z") + req("/v1/d", "Bearer " + tok, close=True))
data = read_all(s)
statuses = [int(x[:3]) for x in data.split(b"HTTP/1.1 ")[1:]]
assert statuses == [401, 200, 401, 401, 200], (statuses, data)
assert data.split(b"HTTP/1.1 ")[3].endswith(b"\r\n\r\n"), data  # no body for HEAD
assert b'"path": "/v1/b"' in data and b'"path": "/v1/d"' in data, data
print("ok")
PY
timeout 30 python3 "$T/direct.py" "$SRV_PORT" "$ALICE" >"$T/direct.out" 2>&1 || fail "pipelined: $(cat "$T/direct.out")"
pass "pipelined 401, 200, 401 (HEAD: no body), 401, 200 on one connection, in order, bodies of refused requests dropped"

# More of the gate, straight to the server: a head split over several TLS records is held and
# forwarded whole; 100 pipelined requests (over the 64 the server follows) all answered in order;
# a request that does not parse gets 400 and the connection ends, nothing forwarded.
cat >"$T/direct2.py" <<'PY'
import sys, time
from tls_peer import connect, read_all
port, tok = int(sys.argv[1]), sys.argv[2]
s = connect(port)
head = ("GET /v1/split HTTP/1.1\r\nHost: x\r\nAuthor" "ization: Bearer " + tok +
        "\r\nConnection: close\r\n\r\n").encode()
for piece in (head[:20], head[20:40], head[40:]):
    s.sendall(piece)
    time.sleep(0.1)
data = read_all(s)
assert data.startswith(b"HTTP/1.1 200") and b"/v1/split" in data, data
assert b"authorization" not in data.lower(), data
s = connect(port)
n = 100
reqs = b"".join(b"GET /v1/p%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s\r\n" %
                (i, tok.encode(), b"Connection: close\r\n" if i == n - 1 else b"") for i in range(n))
s.sendall(reqs)
data = read_all(s)
paths = [int(x.split(b'"')[0]) for x in data.split(b'"path": "/v1/p')[1:]]
assert paths == list(range(n)), (paths, data[-500:])
s = connect(port)
s.sendall(b"GET /v1/bad HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok.encode() +
          b"\r\nBad Header\r\n\r\nGET /v1/after HTTP/1.1\r\nHost: x\r\n\r\n")
data = read_all(s)
assert data.startswith(b"HTTP/1.1 400") and data.count(b"HTTP/1.1 ") == 1, data
print("ok")
PY
before=$(curl -sS "http://127.0.0.1:$UP_PORT/x" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
timeout 60 python3 "$T/direct2.py" "$SRV_PORT" "$ALICE" >"$T/direct2.out" 2>&1 || fail "gate: $(cat "$T/direct2.out")"
after=$(curl -sS "http://127.0.0.1:$UP_PORT/x" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
[ "$after" -eq $((before + 1 + 100 + 1)) ] || fail "the upstream got $((after - before - 1)) requests, want 101"
pass "a head split over records, 100 pipelined requests in order, a bad request answered 400 and not forwarded"

# An Upgrade with a token that the upstream answers without 101: the bytes behind it (here a
# request without a token) are never forwarded, and the connection ends after the answer.
cat >"$T/smuggle.py" <<'PY'
import sys
from tls_peer import connect, read_all
port, tok = int(sys.argv[1]), sys.argv[2]
s = connect(port)
s.sendall(b"GET /v1/up HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\nConnection: Upgrade\r\n"
          b"Authorization: Bearer " + tok.encode() + b"\r\n\r\n"
          b"GET /v1/smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
data = read_all(s)
assert data.count(b"HTTP/1.1 ") == 1 and data.startswith(b"HTTP/1.1 200"), data
assert b"/v1/up" in data and b"smuggled" not in data, data
print("ok")
PY
timeout 30 python3 "$T/smuggle.py" "$SRV_PORT" "$ALICE" >"$T/smuggle.out" 2>&1 ||
    fail "bytes behind a refused upgrade: $(cat "$T/smuggle.out")"
pass "bytes behind an Upgrade answered without 101 never reach the upstream"

# Expect: 100-continue without a token: 401 at once, then the connection ends.
curl -sS -D "$T/expect.h" -o /dev/null --max-time 10 -H 'Expect: 100-continue' \
    --data-binary @"$T/upstream.py" "$URL/v1/completions" || fail "expect: curl failed"
head -n1 "$T/expect.h" | grep -q ' 401' || fail "expect: $(head -n1 "$T/expect.h")"
pass "Expect: 100-continue without a token gets its 401 without sending the body"

# ---- SIGHUP: revoke alice, add bob; a bad file keeps the last good one ----
cp "$T/bob.line" "$T/tokens"
kill -HUP "$SRV_PID"
wait_log "$T/server.log" '"event":"tokens.reloaded"'
refused revoked /v1/models -H "Authorization: Bearer $ALICE"
curl -sS -f -H "Authorization: Bearer $BOB" "$URL/v1/models" >/dev/null || fail "bob refused after reload"
printf 'garbage\n' >>"$T/tokens"
kill -HUP "$SRV_PID"
wait_log "$T/server.log" '"event":"tokens.reload_failed"'
grep '"event":"tokens.reload_failed"' "$T/server.log" | grep -q 'line 2: expected' ||
    fail "the failed reload does not name the line"
curl -sS -f -H "Authorization: Bearer $BOB" "$URL/v1/models" >/dev/null || fail "bob refused after a bad reload"
rm "$T/tokens"
kill -HUP "$SRV_PID"
wait_log "$T/server.log" '"err":"cannot read'
curl -sS -f -H "Authorization: Bearer $BOB" "$URL/v1/models" >/dev/null || fail "bob refused after the file went"
pass "SIGHUP revokes alice and adds bob; a bad or unreadable file is refused (line named) and the last good set stays"

# ---- metrics, access log, no token in any log ----
m() { metric "http://127.0.0.1:$SRV_ADMIN" "$1"; }
[ "$(m 'ccgate_server_auth_failures_total{reason="missing"}')" -ge 5 ] || fail "missing not counted"
[ "$(m 'ccgate_server_auth_failures_total{reason="scheme"}')" -ge 1 ] || fail "scheme not counted"
[ "$(m 'ccgate_server_auth_failures_total{reason="unknown"}')" -ge 3 ] || fail "unknown not counted"
[ "$(m 'ccgate_server_auth_failures_total{reason="malformed"}')" -ge 1 ] || fail "malformed not counted"
[ "$(m 'ccgate_server_requests_total{code="4xx"}')" -ge 9 ] || fail "401s not counted in requests_total"
grep '"event":"request"' "$T/server.log" | grep '"status":401' | grep -q '"auth":"unknown"' ||
    fail "no access log line for a refused request"
grep '"event":"request"' "$T/server.log" | grep '"status":200' | grep -q '"token":"bob"' ||
    fail "no access log line naming the token"
for f in "$T/server.log" "$T/client.log"; do
    grep -qF "$ALICE" "$f" && fail "$f holds alice's token"
    grep -qF "$BOB" "$f" && fail "$f holds bob's token"
done
pass "refusals counted by reason; access log names tokens, never logs one"
