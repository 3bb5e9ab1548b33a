#!/usr/bin/env bash
# The whole thing on the embedded defaults: an upstream, ccgate-server on the simulated TEE,
# ccgate-client, and a real request through the attested pair with curl.
#   scripts/demo.sh [--once] BIN_DIR
set -euo pipefail

once=0
if [ "${1:-}" = "--once" ]; then
    once=1
    shift
fi
BIN=${1:?usage: demo.sh [--once] BIN_DIR}
BIN=$(cd "$BIN" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ccgate-demo.XXXXXX")
PIDS=()

UP_PORT=${CCGATE_DEMO_UPSTREAM_PORT:-18000}
SRV_PORT=${CCGATE_DEMO_SERVER_PORT:-18443}
CLI_PORT=${CCGATE_DEMO_CLIENT_PORT:-18080}
CLI_ADMIN=${CCGATE_DEMO_CLIENT_ADMIN:-18081}

stop() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap stop EXIT
trap 'exit 0' INT TERM

wait_line() { # FILE PATTERN
    for _ in $(seq 400); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        if ! kill -0 "${PIDS[-1]}" 2>/dev/null; then
            echo "demo: a component stopped; its log:" >&2
            cat "$1" >&2
            exit 1
        fi
        sleep 0.05
    done
    echo "demo: timed out waiting for '$2' in $1" >&2
    cat "$1" >&2
    exit 1
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. simulated TEE (INSECURE, for development): sim ARK/ASK/VCEK chain"
ROOT=$("$BIN/ccgate" sim-init --state-dir "$WORK/state")
echo "sim ARK sha256: $ROOT"

say "2. upstream inference service on 127.0.0.1:$UP_PORT"
if [ -x "$BIN/ccgate-worker" ]; then
    "$BIN/ccgate-worker" --listen "127.0.0.1:$UP_PORT" --model builtin:tiny >"$WORK/upstream.log" 2>&1 &
else
    "$BIN/ccgate-mock-worker" --listen "127.0.0.1:$UP_PORT" >"$WORK/upstream.log" 2>&1 &
fi
PIDS+=($!)
wait_line "$WORK/upstream.log" "listening"

say "3. ccgate-server on the simulated TEE, RA-TLS on 127.0.0.1:$SRV_PORT"
"$BIN/ccgate-server" --listen "127.0.0.1:$SRV_PORT" --upstream "127.0.0.1:$UP_PORT" \
    --tee sim --state-dir "$WORK/state" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
wait_line "$WORK/server.log" "listening"

say "4. policy: trust on first use, pinning the measurement the server shows"
"$BIN/ccgate" policy from-evidence --server "127.0.0.1:$SRV_PORT" --allow-sim >"$WORK/policy.json"
cat "$WORK/policy.json"

say "5. ccgate-client for the app on 127.0.0.1:$CLI_PORT"
"$BIN/ccgate-client" --listen "127.0.0.1:$CLI_PORT" --server "127.0.0.1:$SRV_PORT" \
    --policy "$WORK/policy.json" --admin "127.0.0.1:$CLI_ADMIN" >"$WORK/client.log" 2>&1 &
PIDS+=($!)
wait_line "$WORK/client.log" "listening"

say "6. a real request through the attested pair"
if [ -x "$BIN/ccgate-worker" ]; then
    set -x
    curl -sS -N "http://127.0.0.1:$CLI_PORT/v1/chat/completions" -H 'Content-Type: application/json' \
        -d '{"model": "tiny", "stream": true, "max_tokens": 24, "messages": [{"role": "user", "content": "Hello from inside the TEE?"}]}'
    { set +x; } 2>/dev/null
else
    set -x
    curl -sS "http://127.0.0.1:$CLI_PORT/v1/chat/completions" -H 'Content-Type: application/json' \
        -d '{"model": "mock", "messages": [{"role": "user", "content": "Hello from inside the TEE?"}]}'
    { set +x; } 2>/dev/null
fi
echo

say "7. what the client verified (GET /.well-known/ccgate/verification)"
curl -sS "http://127.0.0.1:$CLI_PORT/.well-known/ccgate/verification" |
    python3 -c 'import json,sys
v = json.load(sys.stdin)
if "tcb" in v:
    v["tcb"] = {k: v["tcb"]["reported"][k] for k in ("bootloader", "tee", "snp", "microcode")}
for k in ("verified", "tee", "insecure", "warning", "measurement", "tcb", "policy_digest", "cert_sha256", "verified_at"):
    if k in v:
        print("  %-14s %s" % (k, json.dumps(v[k])))'

if [ $once -eq 1 ]; then
    say "done"
    exit 0
fi
say "the stack stays up: try  curl http://127.0.0.1:$CLI_PORT/v1/models   (Ctrl-C to stop)"
wait "${PIDS[0]}"
