#!/usr/bin/env bash
# Instructions per request of the ccgate pair (ccgate-client + ccgate-server) under callgrind:
# deterministic, the number to track regressions with. After a warm-up (handshake, evidence,
# first allocations), both counters are zeroed, then two workloads run on new connections,
# each followed by a dump: 100 keep-alive 1 KiB GETs, then 100 + N. The difference of the two
# dumps is N requests' worth with the per-connection costs (app connection, attested
# handshake) cancelled out, so the count does not depend on N. Prints
# "INSTR_PER_REQ CLIENT SERVER N".
# MODE newconn opens a new app connection for every request instead (a profile of the
# attested handshake; N is then a duration in seconds and the count is what got answered);
# MODE download fetches N 16 MiB bodies instead (a profile of the bulk data path).
#   bench/instr.sh BIN_DIR UPSTREAM_PORT SIM_STATE_DIR N OUT_DIR [closed|newconn|download]
set -euo pipefail
BIN=$1 UP=$2 SIM=$3 N=$4 OUT=$5 MODE=${6:-closed}
mkdir -p "$OUT"
PIDS=()
stop() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop EXIT
read -r S C <<<"$(python3 -c 'import socket
a=[socket.socket() for _ in range(2)]
[s.bind(("127.0.0.1",0)) for s in a]
print(*[s.getsockname()[1] for s in a])')"
wait_port() {
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || { echo "instr: process exited" >&2; return 1; }
        sleep 0.1
    done
    return 1
}
VG=(valgrind --tool=callgrind --vgdb=yes --collect-atstart=yes)
"${VG[@]}" --callgrind-out-file="$OUT/server.out" "$BIN/ccgate-server" --listen "127.0.0.1:$S" \
    --upstream "127.0.0.1:$UP" --tee sim --state-dir "$SIM" --access-log off >"$OUT/server.log" 2>&1 &
SP=$!; PIDS+=($SP)
wait_port "$S" "$SP"
"$BIN/ccgate" policy from-evidence --server "127.0.0.1:$S" --allow-sim >"$OUT/policy.json"
"${VG[@]}" --callgrind-out-file="$OUT/client.out" "$BIN/ccgate-client" --listen "127.0.0.1:$C" \
    --server "127.0.0.1:$S" --policy "$OUT/policy.json" --access-log off >"$OUT/client.log" 2>&1 &
CP=$!; PIDS+=($CP)
wait_port "$C" "$CP"
"$BIN/ccgate-loadgen" --target "127.0.0.1:$C" --conns 1 --requests 50 --duration 600 >"$OUT/warm.json"
callgrind_control -z "$CP" >/dev/null
callgrind_control -z "$SP" >/dev/null
BASE=0
if [ "$MODE" = newconn ]; then
    "$BIN/ccgate-loadgen" --target "127.0.0.1:$C" --mode newconn --conns 1 --duration "$N" >"$OUT/run.json"
elif [ "$MODE" = download ]; then
    "$BIN/ccgate-loadgen" --target "127.0.0.1:$C" --conns 1 --requests "$N" --duration 600 \
        --path /bytes/16777216 >"$OUT/run.json"
else
    BASE=100
    "$BIN/ccgate-loadgen" --target "127.0.0.1:$C" --conns 1 --requests $BASE --duration 600 >"$OUT/base.json"
    callgrind_control -d "$CP" >/dev/null
    callgrind_control -d "$SP" >/dev/null
    "$BIN/ccgate-loadgen" --target "127.0.0.1:$C" --conns 1 --requests $((BASE + N)) --duration 600 \
        >"$OUT/run.json"
fi
callgrind_control -d "$CP" >/dev/null
callgrind_control -d "$SP" >/dev/null
sleep 0.5
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$OUT/run.json")
if [ "$MODE" = newconn ]; then
    N=$got
elif [ "$got" != $((BASE + N)) ]; then
    echo "instr: $got of $((BASE + N)) requests answered" >&2
    exit 1
fi
ir() { # FILE: the instructions in one dump
    [ -f "$1" ] || { echo "instr: no dump $1" >&2; exit 1; }
    awk '/^(summary|totals):/ {print $2; exit}' "$1"
}
if [ $BASE -gt 0 ]; then
    ci=$(($(ir "$OUT/client.out.2") - $(ir "$OUT/client.out.1")))
    si=$(($(ir "$OUT/server.out.2") - $(ir "$OUT/server.out.1")))
else
    ci=$(ir "$OUT/client.out.1")
    si=$(ir "$OUT/server.out.1")
fi
python3 -c 'import sys; c,s,n=map(int,sys.argv[1:]); print(f"{(c+s)/n:.0f} {c/n:.0f} {s/n:.0f} {n}")' "$ci" "$si" "$N"
