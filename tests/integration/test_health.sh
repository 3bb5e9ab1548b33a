#!/usr/bin/env bash
# `ccgate health URL`: exit 0 only on a 2xx status; 1 on another status, a refused, silent or
# non-HTTP peer; 2 on a bad URL. The image HEALTHCHECKs rely on it (deploy/).
source "$(dirname "$0")/lib.sh"

# A peer per behaviour: /ok 200, /down 503, /garbage (not HTTP), /silent (never answers).
PEER_PORT=$(free_port)
start peer python3 -c '
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); print("listening", flush=True)
def serve(c):
    req = b""
    while b"\r\n\r\n" not in req:
        d = c.recv(4096)
        if not d: return
        req += d
    path = req.split(b" ")[1]
    if path == b"/silent":
        threading.Event().wait(30); return
    ans = {b"/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
           b"/down": b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
           b"/garbage": b"SSH-2.0-OpenSSH\r\n"}.get(path, b"HTTP/1.0 404 Not Found\r\n\r\n")
    c.sendall(ans); c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
' "$PEER_PORT"
wait_log "$T/peer.log" "listening"

expect() { # RC WHAT ARGS...
    local want=$1 what=$2 rc=0
    shift 2
    "$CG_BIN/ccgate" health "$@" >"$T/out" 2>"$T/err" || rc=$?
    [ $rc -eq "$want" ] || fail "$what: exit $rc, expected $want ($(cat "$T/err"))"
    pass "$what"
}

B="http://127.0.0.1:$PEER_PORT"
expect 0 "2xx is healthy" "$B/ok"
grep -qx 200 "$T/out" || fail "printed '$(cat "$T/out")', expected 200"
expect 1 "503 is unhealthy" "$B/down"
grep -q "status 503, expected 2xx" "$T/err" || fail "503 message: $(cat "$T/err")"
expect 1 "404 is unhealthy" "$B/nowhere"
expect 1 "a non-HTTP answer is unhealthy" "$B/garbage"
grep -q "not an HTTP/1.x status line" "$T/err" || fail "garbage message: $(cat "$T/err")"
start=$(date +%s%N)
expect 1 "a silent peer times out" "$B/silent" --timeout-ms 300
[ $(( ($(date +%s%N) - start) / 1000000 )) -lt 5000 ] || fail "--timeout-ms 300 took over 5 s"
expect 1 "a refused connection is unhealthy" "http://127.0.0.1:$(free_port)/healthz"
expect 2 "https is refused" "https://127.0.0.1:$PEER_PORT/ok"
expect 2 "no port" "http://127.0.0.1/ok"
expect 2 "no URL"
expect 2 "a bad timeout" "$B/ok" --timeout-ms 0
expect 2 "an unknown flag" "$B/ok" --bogus

# The real admin endpoints: the mock worker's /health and ccgate-server's /healthz.
start_upstream
expect 0 "mock worker /health" "http://127.0.0.1:$UP_PORT/health"
sim_init
start_server
expect 0 "ccgate-server /healthz" "http://127.0.0.1:$SRV_ADMIN/healthz"
expect 0 "ccgate-server /readyz" "http://127.0.0.1:$SRV_ADMIN/readyz"
