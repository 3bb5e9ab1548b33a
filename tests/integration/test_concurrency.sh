#!/usr/bin/env bash
# 500 concurrent app connections, each with a request answered and then held open: no
# failure, and the sidecars' memory per connection is bounded (measured from VmRSS).
source "$(dirname "$0")/lib.sh"
N=${CG_CONCURRENCY:-500}

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
start_client "$T/policy.json"

# Under ASan freed memory sits in quarantine and every block has redzones: RSS says little
# there, so the bound is loose; a release build must stay under 192 KiB per connection
# (measured: about 90 KiB client, 105 KiB server).
LIMIT=$((192 * 1024))
case $(ldd "$CG_BIN/ccgate-client") in *libasan*) LIMIT=$((1024 * 1024)) ;; esac

timeout 120 python3 - "$CLI_PORT" "$N" "$LIMIT" "$CLI_PID" "$SRV_PID" <<'PY' || fail "$N concurrent connections"
import socket, sys, time
port, n, limit, pids = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
def rss(pid):
    for l in open("/proc/%s/status" % pid):
        if l.startswith("VmRSS"):
            return int(l.split()[1])
def get_one(s):
    s.sendall(b"GET /bytes/1000 HTTP/1.1\r\nHost: x\r\n\r\n")
def read_one(s):
    data = b""
    while b"\r\n\r\n" not in data:
        b = s.recv(65536)
        assert b, "closed in the head"
        data += b
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    while len(body) < 1000:
        b = s.recv(65536)
        assert b, "closed in the body"
        body += b
    assert len(body) == 1000
# Warm up (first verification, allocator pools), then the baseline.
w = socket.create_connection(("127.0.0.1", port), timeout=60)
get_one(w); read_one(w); w.close()
time.sleep(0.5)
base = [rss(p) for p in pids]
socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(n)]
t0 = time.monotonic()
for s in socks:
    get_one(s)
for s in socks:
    read_one(s)
dt = time.monotonic() - t0
time.sleep(0.5)
held = [rss(p) for p in pids]
per = [(h - b) * 1024 / n for h, b in zip(held, base)]
print("%d concurrent requests in %.1f s; RSS before/with %d open (KiB): client %d/%d server %d/%d"
      % (n, dt, n, base[0], held[0], base[1], held[1]))
print("memory per open connection (bytes): client %.0f, server %.0f" % tuple(per))
assert all(p < limit for p in per), (per, limit)
for s in socks:
    s.close()
PY
ADM="http://127.0.0.1:$CLI_ADMIN"
for _ in $(seq 100); do
    [ "$(metric "$ADM" ccgate_client_connections_active)" = 0 ] && break
    sleep 0.1
done
[ "$(metric "$ADM" ccgate_client_connections_active)" = 0 ] || fail "connections left active"
ok=$(metric "$ADM" 'ccgate_client_responses_total{class="2xx"}')
[ "$ok" -ge "$N" ] || fail "expected $N answers, got $ok"
pass "$N concurrent connections answered, all closed afterwards"
