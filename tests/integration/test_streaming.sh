#!/usr/bin/env bash
# Streaming through the pair: SSE events reach the app as the worker writes them (per-event
# timestamps), a slow upstream, an upstream that dies mid-body (truncated, not a hang), and
# a slow-reading app (backpressure: the sidecars' memory stays flat).
source "$(dirname "$0")/lib.sh"

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
start_client "$T/policy.json"
URL="http://127.0.0.1:$CLI_PORT"

# SSE: 20 events 100 ms apart; each must arrive soon after the worker stamped it.
timeout 60 python3 - "$CLI_PORT" <<'PY' || fail "SSE timing"
import http.client, json, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
c.request("GET", "/bytes/1")  # warm up: the attested connection exists before timing
c.getresponse().read()
body = json.dumps({"stream": True, "events": 20, "interval_ms": 100, "messages": []})
c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
r = c.getresponse()
assert r.status == 200 and "text/event-stream" in r.getheader("Content-Type", ""), r.getheaders()
delays, arrivals = [], []
while True:
    line = r.readline()
    if not line:
        break
    if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
        continue
    now = time.time() * 1e6
    ev = json.loads(line[6:])
    delays.append((now - ev["t_us"]) / 1000)
    arrivals.append(now / 1000)
assert len(delays) == 20, len(delays)
spread = arrivals[-1] - arrivals[0]
print("SSE per-event delay ms: max %.1f median %.1f; spread %.0f ms"
      % (max(delays), sorted(delays)[10], spread))
assert max(delays) < 250, delays      # no event held back behind the next one
assert spread > 1500, spread          # they were not delivered in one burst
PY
pass "SSE events delivered as written"

# A slow upstream is waited for (response-timeout-s defaults to 300).
out=$(curl -fsS --max-time 20 "$URL/slow?ms=1500") || fail "slow upstream"
grep -q slept_ms <<<"$out" || fail "slow upstream answer: $out"
pass "slow upstream answered"

# The upstream promises more than it sends and closes: the app sees the truncation at once.
t0=$(date +%s%N)
rc=0
curl -sS --max-time 20 -o "$T/die.bin" "$URL/die?after=300000" 2>/dev/null || rc=$?
dt=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" = 18 ] || fail "upstream died mid-body: curl exit $rc, expected 18 (partial transfer)"
[ "$(stat -c %s "$T/die.bin")" -ge 300000 ] || fail "bytes before the death were lost"
[ "$dt" -lt 10000 ] || fail "truncation took ${dt} ms"
curl -fsS --max-time 10 -o /dev/null "$URL/bytes/10" || fail "request after the truncated one"
pass "upstream death mid-body: truncated answer after ${dt} ms, not a hang"

# A slow reader: 64 MB offered, the app stalls after 1 MB; the sidecars must not buffer it.
# Once the kernel's socket buffers along the way are full (2 s), memory must stay flat. While
# they fill, an ASan build's quarantine keeps every freed write buffer (RSS grows with the bytes
# that moved, ~15 MiB here, none with quarantine_size_mb=0 or in a release build), so the bound
# on that phase holds for release builds only.
asan=0
ldd "$CG_BIN/ccgate-server" | grep -q libasan && asan=1
timeout 60 python3 - "$CLI_PORT" "$asan" "$CLI_PID" "$SRV_PID" <<'PY' || fail "slow reader"
import socket, sys, time
port, asan, pids = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3:]
def rss(pid):
    for l in open("/proc/%s/status" % pid):
        if l.startswith("VmRSS"):
            return int(l.split()[1])
s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
size = 64 << 20
s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % size)
got = 0
while got < (1 << 20):
    got += len(s.recv(65536))
before = [rss(p) for p in pids]
time.sleep(2)
full = [rss(p) for p in pids]
time.sleep(3)
after = [rss(p) for p in pids]
filling = [(a - b) // 1024 for a, b in zip(full, before)]
stalled = [(a - b) for a, b in zip(after, full)]
print("RSS growth (client/server): while the buffers fill %s MiB, then stalled %s KiB" %
      (filling, stalled))
assert all(g < 2048 for g in stalled), stalled
assert asan or all(g < 16 for g in filling), filling
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    got += len(b)
assert got > size, got  # head + body
PY
pass "slow reader: backpressure holds memory flat, all 64 MB delivered"
