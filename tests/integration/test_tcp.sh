#!/usr/bin/env bash
# TCP mode (ALPN ccgate-tcp): a binary protocol both ways through the attested pair, with
# half-close in each direction; a failed appraisal closes the app connection without a byte.
source "$(dirname "$0")/lib.sh"
PEER="$CG_SOURCE_DIR/tests/integration/peer.py"

# bytes_back PORT: sends a request to PORT, half-closes, prints how many bytes came back.
bytes_back() {
    timeout 20 python3 - "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
s.sendall(b"E secret")
s.shutdown(socket.SHUT_WR)
print(len(s.recv(100)))
PY
}

UP_PORT=$(free_port)
start tcp-upstream python3 "$PEER" tcp-server "$UP_PORT" "$T"
wait_log "$T/tcp-upstream.log" listening
sim_init
start_server server --mode tcp
write_policy "$T/policy.json"
CLI_PORT=$(free_port)
start client "$CG_BIN/ccgate-client" --listen "127.0.0.1:$CLI_PORT" --server "127.0.0.1:$SRV_PORT" \
    --policy "$T/policy.json" --mode tcp --log-level debug
wait_log "$T/client.log" listening

# App half-closes first: its FIN reaches the upstream as EOF, the answer still comes back.
timeout 30 python3 "$PEER" tcp-client "$CLI_PORT" E || fail "binary round trip with app half-close"
pass "1 MiB binary both ways, app half-closes first"

# Upstream half-closes first: the app reads to EOF, then still sends 1 MiB that arrives.
sent=$(timeout 30 python3 "$PEER" tcp-client "$CLI_PORT" B) || fail "upstream half-close"
for _ in $(seq 100); do [ -f "$T/sink.sha256" ] && break; sleep 0.1; done
[ "$(cat "$T/sink.sha256" 2>/dev/null)" = "$sent" ] || fail "bytes after the upstream's FIN were lost"
pass "upstream half-closes first, app data after it still arrives"
wait_log "$T/client.log" "reason=done"

# A client in HTTP mode cannot talk to a TCP-mode server (ALPN), and vice versa.
HTTP_PORT=$(free_port)
start client-http "$CG_BIN/ccgate-client" --listen "127.0.0.1:$HTTP_PORT" \
    --server "127.0.0.1:$SRV_PORT" --policy "$T/policy.json"
wait_log "$T/client-http.log" listening
code=$(curl -sS --max-time 10 -o "$T/alpn.json" -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/")
[ "$code" = 502 ] || fail "HTTP client to a TCP server: expected 502, got $code"
grep -q '"check": "tls' "$T/alpn.json" || fail "ALPN mismatch: $(cat "$T/alpn.json")"
pass "ALPN keeps HTTP and TCP modes apart"

# Wrong measurement in TCP mode: the app sees the connection close with no byte, the log
# names the check, and the upstream never sees a connection.
write_policy "$T/wrong.json" "$(printf '%096d' 0)"
WRONG_PORT=$(free_port)
start client-wrong "$CG_BIN/ccgate-client" --listen "127.0.0.1:$WRONG_PORT" \
    --server "127.0.0.1:$SRV_PORT" --policy "$T/wrong.json" --mode tcp
wait_log "$T/client-wrong.log" listening
conns_before=$(wc -l <"$T/conns")
got=$(bytes_back "$WRONG_PORT") || fail "app connection did not close after a failed appraisal"
[ "$got" = 0 ] || fail "the app received $got bytes from an unverified server"
wait_log "$T/client-wrong.log" "check=snp.measurement"
[ "$(wc -l <"$T/conns")" = "$conns_before" ] || fail "the upstream saw a connection"
pass "failed appraisal closes the app connection; log names snp.measurement"

# Several servers in TCP mode: a rogue (a sim TEE with another root) listed first, beside the
# genuine server. Every app connection goes to the genuine one; the rogue's upstream never
# sees a connection; with only the rogue left, connections close without a byte.
mkdir "$T/rogue-up"
ROGUE_UP=$(free_port)
start rogue-upstream python3 "$PEER" tcp-server "$ROGUE_UP" "$T/rogue-up"
wait_log "$T/rogue-upstream.log" listening
"$CG_BIN/ccgate" sim-init --state-dir "$T/rogue" >/dev/null
ROGUE_PORT=$(free_port)
start rogue "$CG_BIN/ccgate-server" --listen "127.0.0.1:$ROGUE_PORT" \
    --upstream "127.0.0.1:$ROGUE_UP" --tee sim --state-dir "$T/rogue" --mode tcp --model-query-s 0
wait_log "$T/rogue.log" listening
MULTI_PORT=$(free_port) MULTI_ADMIN=$(free_port)
start client-multi "$CG_BIN/ccgate-client" --listen "127.0.0.1:$MULTI_PORT" \
    --server "127.0.0.1:$ROGUE_PORT,127.0.0.1:$SRV_PORT" --policy "$T/policy.json" --mode tcp \
    --admin "127.0.0.1:$MULTI_ADMIN"
wait_log "$T/client-multi.log" listening
wait_ready "$MULTI_ADMIN"
for i in 1 2 3 4; do
    timeout 30 python3 "$PEER" tcp-client "$MULTI_PORT" E || fail "TCP connection $i beside a rogue"
done
[ ! -s "$T/rogue-up/conns" ] || fail "the rogue's upstream saw a connection"
wait_log "$T/client-multi.log" "server.ejected forward=.* server=127.0.0.1:$ROGUE_PORT"
kill "$SRV_PID"
wait "$SRV_PID" 2>/dev/null || true
got=$(bytes_back "$MULTI_PORT") || fail "app connection did not close with only the rogue left"
[ "$got" = 0 ] || fail "the app received $got bytes with only the rogue left"
[ ! -s "$T/rogue-up/conns" ] || fail "the rogue's upstream saw a connection"
pass "TCP mode, several servers: the rogue gets no connection; none left closes without a byte"
