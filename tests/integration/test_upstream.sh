#!/usr/bin/env bash
# 502 when the server sidecar cannot reach the upstream: refused, or the connect does not
# complete within upstream-connect-timeout-ms.
source "$(dirname "$0")/lib.sh"

status() { curl -sS --max-time 20 -o "$T/body" -w '%{http_code}' "$@" || true; }
sim_init
write_policy "$T/policy.json"

# An upstream that refuses connections: 502 from the server sidecar, through the client.
UP_PORT=$(free_port)
start_server server-dead
start_client "$T/policy.json" client-dead
[ "$(status "http://127.0.0.1:$CLI_PORT/")" = 502 ] || fail "refused upstream: expected 502"
grep -q upstream_unreachable "$T/body" || fail "502 body: $(cat "$T/body")"
pass "502 when the upstream refuses"

# An upstream whose accept queue is full never completes the connect: 502 after the timeout.
BH_PORT=$(free_port)
start blackhole python3 -c '
import socket, sys, time
ls = socket.socket(); ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(0)
fill = [socket.socket() for _ in range(3)]
for f in fill:
    f.setblocking(False)
    f.connect_ex(("127.0.0.1", int(sys.argv[1])))
print("listening", flush=True)
time.sleep(600)' "$BH_PORT"
wait_log "$T/blackhole.log" listening
UP_PORT=$BH_PORT SRV_PORT=$(free_port) SRV_ADMIN=$(free_port)
start_server server-bh --upstream-connect-timeout-ms 500
start_client "$T/policy.json" client-bh
t0=$(date +%s%N)
[ "$(status "http://127.0.0.1:$CLI_PORT/")" = 502 ] || fail "connect timeout: expected 502"
dt=$((($(date +%s%N) - t0) / 1000000))
grep -q "connection timed out" "$T/server-bh.log" || fail "server did not log the connect timeout"
pass "502 after upstream-connect-timeout-ms (${dt} ms)"
