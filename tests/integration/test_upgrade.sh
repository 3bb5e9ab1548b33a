#!/usr/bin/env bash
# Upgrade (WebSocket) through the pair: the 101 turns both legs into a raw tunnel; bytes the
# app sends behind the request wait for the 101; a refused upgrade ends the connection.
source "$(dirname "$0")/lib.sh"
PEER="$CG_SOURCE_DIR/tests/integration/peer.py"

UP_PORT=$(free_port)
start ws-upstream python3 "$PEER" ws-server "$UP_PORT"
wait_log "$T/ws-upstream.log" listening
sim_init
start_server
write_policy "$T/policy.json"
start_client "$T/policy.json"

timeout 30 python3 "$PEER" ws-client "$CLI_PORT" || fail "WebSocket echo through the pair"
pass "101 through the pair, raw bytes both ways (1 B .. 300 KB), half-close"

# upgrade_with_early PORT [HEADER]: an Upgrade request with bytes right behind it (same
# segment): expects the 101, then those bytes reach the upstream (echoed XOR 0x5A).
upgrade_with_early() {
    timeout 30 python3 - "$@" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
extra = (sys.argv[2] + "\r\n").encode() if len(sys.argv) > 2 else b""
s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          extra + b"\r\nEARLY")
data = b""
while b"hello-from-upstream" not in data or len(data.split(b"hello-from-upstream")[1]) < 5:
    b = s.recv(4096)
    assert b, data
    data += b
assert data.startswith(b"HTTP/1.1 101"), data
assert data.split(b"hello-from-upstream")[1][:5] == bytes(x ^ 0x5A for x in b"EARLY"), data
PY
}
upgrade_with_early "$CLI_PORT" || fail "bytes behind the upgrade request"
pass "bytes behind the Upgrade request wait for the 101 and then pass"

# The upstream refuses the upgrade: the app gets its answer and the connection ends.
timeout 30 python3 - "$CLI_PORT" <<'PY' || fail "refused upgrade"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\nNOT-HTTP")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
assert data.startswith(b"HTTP/1.1 400"), data
assert b"NOT-HTTP" not in data, data
PY
pass "refused upgrade answered, then the connection ends"

ok=$(metric "http://127.0.0.1:$CLI_ADMIN" 'ccgate_client_responses_total{class="1xx"}')
[ "${ok:-0}" -ge 2 ] || fail "101 answers not counted ($ok)"
pass "101s counted in /metrics"

# With --tokens: an Upgrade with a listed token switches (bytes behind it wait for the 101);
# one without is answered 401 and never reaches the upstream.
TOKEN=$(openssl rand -hex 32)
printf '%s' "$TOKEN" | "$CG_BIN/ccgate" token hash --name ws >"$T/tokens"
SRV_PORT=$(free_port) SRV_ADMIN=$(free_port)
start_server server-tokens --tokens "$T/tokens"
start_client "$T/policy.json" client-tokens
upgrade_with_early "$CLI_PORT" "Authorization: Bearer $TOKEN" || fail "upgrade with a token"
out=$(timeout 30 python3 "$PEER" raw "$CLI_PORT" "$(printf 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nEARLY' | od -An -v -tx1 | tr -d ' \n')") ||
    fail "upgrade without a token"
[[ "$out" == "b'HTTP/1.1 401"* && "$out" != *hello-from-upstream* ]] || fail "upgrade without a token: $out"
pass "--tokens: an Upgrade with a token switches protocols; one without gets 401"
