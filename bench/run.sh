#!/usr/bin/env bash
# ccgate against a direct connection and against the TLS proxy pairs users would pick instead
# (stunnel, haproxy, nginx stream, nginx http), plus a haproxy pair without TLS (the cost of
# the hops alone). Same upstream (ccgate-mock-worker), same load generators (wrk, ccgate-loadgen),
# all on 127.0.0.1, TLS 1.3 with TLS_AES_256_GCM_SHA384 and an ECDSA P-256 key everywhere.
#
#   bench/run.sh [--quick] [--bin DIR] [--rounds N] [--out FILE]
#
# The load generator runs on core 0, everything under test (both proxies, the upstream) on
# core 1. Rounds run the pairs and scenarios in a shuffled order; bench.py prints medians with
# min-max over the valid rounds and the RATIO / METRIC lines. A peer whose program is missing
# is skipped with a notice. A full run writes bench/results/<date>-<host>.txt.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
QUICK=0
BIN="$ROOT/build/release/bin"
ROUNDS=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --bin) BIN=$(cd "$2" && pwd); shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --out) OUT=$2; shift ;;
    *) echo "usage: run.sh [--quick] [--bin DIR] [--rounds N] [--out FILE]" >&2; exit 2 ;;
    esac
    shift
done

WRK_DUR=1 # wrk takes whole seconds
# quick: one round of a subset, short runs, smaller crowds (CI's smoke test; under 4 minutes).
if [ $QUICK -eq 1 ]; then
    # only what the RATIO / METRIC lines need
    ROUNDS=${ROUNDS:-1}; DUR=0.5; SSE_EVENTS=16; IDLE_N=200; IDLE_HOLD=0.5; STORM_N=200; CG_REQS=200
    SCENARIOS=(get1k_c1 get1k_c16 newconn_c16 dl16m_c1 sse_64)
else
    ROUNDS=${ROUNDS:-3}; DUR=1; SSE_EVENTS=256; IDLE_N=1000; IDLE_HOLD=1; STORM_N=1000; CG_REQS=2000
    SCENARIOS=(get1k_c1 get1k_c16 get1k_c64 json_c16 get1k_rate2k newconn_c16 dl1m_c1 dl1m_c4
        dl64m_c1 dl64m_c4 ul1m_c1 ul1m_c4 ul64m_c1 ul64m_c4 sse_1 sse_64)
fi

note() { echo "bench: $*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ccgate-bench.XXXXXX")
RAW="$WORK/raw.jsonl"
declare -A PORT PIDS ADMIN SRV
ALL_PIDS=()

cleanup() {
    for p in "${ALL_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${ALL_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

for tool in taskset python3 openssl; do
    command -v $tool >/dev/null || { note "$tool is missing (scripts/install-deps.sh --bench)"; exit 1; }
done
for b in ccgate ccgate-server ccgate-client ccgate-mock-worker ccgate-loadgen; do
    [ -x "$BIN/$b" ] || { note "$BIN/$b is missing (make bench builds it)"; exit 1; }
done
NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then GEN_CPU=0; SUT_CPU=1; else GEN_CPU=0; SUT_CPU=0; note "one CPU: no pinning apart"; fi
GEN=(taskset -c $GEN_CPU)
SUT=(taskset -c $SUT_CPU)

# N free loopback ports (the kernel picks; a race with another program is unlikely).
free_ports() {
    python3 -c 'import socket,sys
socks=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

wait_port() { # PORT PID LOG
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || { note "process $2 exited; its log:"; tail -5 "$3" >&2; return 1; }
        sleep 0.05
    done
    note "port $1 did not open; log:"; tail -5 "$3" >&2
    return 1
}

spawn() { # LOG CMD... : starts CMD on the core under test; sets SPAWNED
    "${SUT[@]}" "${@:2}" >"$1" 2>&1 &
    SPAWNED=$!
    ALL_PIDS+=("$SPAWNED")
}

stop_pids() {
    for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
    for p in "$@"; do wait "$p" 2>/dev/null; done
}

# ---------------------------------------------------------------- material

C="$WORK/conf"
mkdir -p "$C"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$C/key.pem" -out "$C/cert.pem" 2>/dev/null ||
    { note "openssl could not make the certificate"; exit 1; }
cat "$C/cert.pem" "$C/key.pem" >"$C/both.pem"
CIPHER=TLS_AES_256_GCM_SHA384

read -r UP <<<"$(free_ports 1)"
spawn "$WORK/upstream.log" "$BIN/ccgate-mock-worker" --listen "127.0.0.1:$UP"
UP_PID=$SPAWNED
wait_port "$UP" "$UP_PID" "$WORK/upstream.log" || exit 1

"$BIN/ccgate" sim-init --state-dir "$C/sim" >/dev/null || { note "ccgate sim-init failed"; exit 1; }

# ---------------------------------------------------------------- pairs
# Each start_X sets PORT[X] (where the generator connects) and PIDS[X] (the two proxies),
# or returns non-zero with a notice.

start_direct() { PORT[direct]=$UP; PIDS[direct]=""; }

start_ccgate() {
    local s c sa ca
    read -r s c sa ca <<<"$(free_ports 4)"
    spawn "$WORK/ccgate-server.log" "$BIN/ccgate-server" --listen "127.0.0.1:$s" --upstream "127.0.0.1:$UP" \
        --tee sim --state-dir "$C/sim" --admin "127.0.0.1:$sa" --log-format text
    local sp=$SPAWNED
    wait_port "$s" "$sp" "$WORK/ccgate-server.log" || return 1
    "$BIN/ccgate" policy from-evidence --server "127.0.0.1:$s" --allow-sim >"$C/policy.json" 2>"$WORK/policy.log" ||
        { note "ccgate policy from-evidence failed: $(tail -2 "$WORK/policy.log")"; stop_pids "$sp"; return 1; }
    spawn "$WORK/ccgate-client.log" "$BIN/ccgate-client" --listen "127.0.0.1:$c" --server "127.0.0.1:$s" \
        --policy "$C/policy.json" --admin "127.0.0.1:$ca"
    local cp=$SPAWNED
    wait_port "$c" "$cp" "$WORK/ccgate-client.log" || { stop_pids "$sp"; return 1; }
    PORT[ccgate]=$c; PIDS[ccgate]="$cp $sp"; ADMIN[ccgate]="http://127.0.0.1:$sa/metrics"
}

start_ccgate-tcp() {
    if ! "$BIN/ccgate-client" --help 2>&1 | grep -Eq -- '--mode +http\|tcp'; then
        note "ccgate-client has no --mode tcp yet: the ccgate TCP-mode rows are skipped"
        return 1
    fi
    local s c
    read -r s c <<<"$(free_ports 2)"
    spawn "$WORK/ccgate-tcp-server.log" "$BIN/ccgate-server" --listen "127.0.0.1:$s" --upstream "127.0.0.1:$UP" \
        --tee sim --state-dir "$C/sim" --mode tcp
    local sp=$SPAWNED
    wait_port "$s" "$sp" "$WORK/ccgate-tcp-server.log" || return 1
    spawn "$WORK/ccgate-tcp-client.log" "$BIN/ccgate-client" --listen "127.0.0.1:$c" --server "127.0.0.1:$s" \
        --policy "$C/policy.json" --mode tcp
    local cp=$SPAWNED
    wait_port "$c" "$cp" "$WORK/ccgate-tcp-client.log" || { stop_pids "$sp"; return 1; }
    PORT[ccgate-tcp]=$c; PIDS[ccgate-tcp]="$cp $sp"
}

start_stunnel() {
    command -v stunnel4 >/dev/null || command -v stunnel >/dev/null || { note "stunnel missing: skipped"; return 1; }
    local st s c
    st=$(command -v stunnel4 || command -v stunnel)
    read -r s c <<<"$(free_ports 2)"
    cat >"$C/stunnel-server.conf" <<EOF
foreground = yes
pid =
syslog = no
debug = 3
[srv]
accept = 127.0.0.1:$s
connect = 127.0.0.1:$UP
cert = $C/cert.pem
key = $C/key.pem
sslVersionMin = TLSv1.3
sslVersionMax = TLSv1.3
ciphersuites = $CIPHER
EOF
    cat >"$C/stunnel-client.conf" <<EOF
foreground = yes
pid =
syslog = no
debug = 3
[cli]
client = yes
accept = 127.0.0.1:$c
connect = 127.0.0.1:$s
sslVersionMin = TLSv1.3
sslVersionMax = TLSv1.3
ciphersuites = $CIPHER
verifyChain = no
EOF
    spawn "$WORK/stunnel-server.log" "$st" "$C/stunnel-server.conf"
    local sp=$SPAWNED
    wait_port "$s" "$sp" "$WORK/stunnel-server.log" || return 1
    spawn "$WORK/stunnel-client.log" "$st" "$C/stunnel-client.conf"
    local cp=$SPAWNED
    wait_port "$c" "$cp" "$WORK/stunnel-client.log" || { stop_pids "$sp"; return 1; }
    PORT[stunnel]=$c; PIDS[stunnel]="$cp $sp"; SRV[stunnel]=$s
}

haproxy_pair() { # NAME TLS(0|1)
    command -v haproxy >/dev/null || { note "haproxy missing: $1 skipped"; return 1; }
    local s c bind_ssl="" srv_ssl=""
    read -r s c <<<"$(free_ports 2)"
    if [ "$2" = 1 ]; then
        bind_ssl="ssl crt $C/both.pem ssl-min-ver TLSv1.3 ciphersuites $CIPHER"
        srv_ssl="ssl verify none ssl-min-ver TLSv1.3 ciphersuites $CIPHER"
    fi
    local common="global
    nbthread 1
    maxconn 8192
    tune.ssl.default-dh-param 2048
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
"
    printf '%slisten srv\n    bind 127.0.0.1:%s %s\n    server up 127.0.0.1:%s\n' \
        "$common" "$s" "$bind_ssl" "$UP" >"$C/$1-server.cfg"
    printf '%slisten cli\n    bind 127.0.0.1:%s\n    server s 127.0.0.1:%s %s\n' \
        "$common" "$c" "$s" "$srv_ssl" >"$C/$1-client.cfg"
    spawn "$WORK/$1-server.log" haproxy -db -f "$C/$1-server.cfg"
    local sp=$SPAWNED
    wait_port "$s" "$sp" "$WORK/$1-server.log" || return 1
    spawn "$WORK/$1-client.log" haproxy -db -f "$C/$1-client.cfg"
    local cp=$SPAWNED
    wait_port "$c" "$cp" "$WORK/$1-client.log" || { stop_pids "$sp"; return 1; }
    PORT[$1]=$c; PIDS[$1]="$cp $sp"; SRV[$1]=$s
}
start_haproxy-tls() { haproxy_pair haproxy-tls 1; }
start_haproxy-plain() { haproxy_pair haproxy-plain 0; }

NGINX_STREAM_MOD=/usr/lib/nginx/modules/ngx_stream_module.so
nginx_conf() { # FILE DIR BODY: one process (no master), one worker loop, logs off
    mkdir -p "$2"
    cat >"$1" <<EOF
$3
daemon off;
master_process off;
worker_processes 1;
pid $2/nginx.pid;
error_log $2/error.log warn;
events { worker_connections 8192; }
EOF
}

start_nginx_pair() { # NAME SERVER_BLOCK CLIENT_BLOCK PRELUDE S C
    local sp cp
    nginx_conf "$C/$1-server.conf" "$WORK/$1-server" "$4
$2"
    nginx_conf "$C/$1-client.conf" "$WORK/$1-client" "$4
$3"
    spawn "$WORK/$1-server.log" nginx -c "$C/$1-server.conf" -p "$WORK/$1-server" -e stderr
    sp=$SPAWNED
    wait_port "$5" "$sp" "$WORK/$1-server.log" || return 1
    spawn "$WORK/$1-client.log" nginx -c "$C/$1-client.conf" -p "$WORK/$1-client" -e stderr
    cp=$SPAWNED
    wait_port "$6" "$cp" "$WORK/$1-client.log" || { stop_pids "$sp"; return 1; }
    PORT[$1]=$6; PIDS[$1]="$cp $sp"; SRV[$1]=$5
}

start_nginx-stream() {
    command -v nginx >/dev/null || { note "nginx missing: nginx-stream skipped"; return 1; }
    [ -f "$NGINX_STREAM_MOD" ] || { note "nginx stream module missing (libnginx-mod-stream): nginx-stream skipped"; return 1; }
    local s c
    read -r s c <<<"$(free_ports 2)"
    start_nginx_pair nginx-stream "stream { server {
    listen 127.0.0.1:$s ssl;
    ssl_certificate $C/cert.pem; ssl_certificate_key $C/key.pem;
    ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites $CIPHER;
    proxy_pass 127.0.0.1:$UP; } }" "stream { server {
    listen 127.0.0.1:$c;
    proxy_pass 127.0.0.1:$s;
    proxy_ssl on; proxy_ssl_protocols TLSv1.3; proxy_ssl_conf_command Ciphersuites $CIPHER;
    proxy_ssl_session_reuse on; } }" "load_module $NGINX_STREAM_MOD;" "$s" "$c"
}

start_nginx-http() {
    command -v nginx >/dev/null || { note "nginx missing: nginx-http skipped"; return 1; }
    local s c
    read -r s c <<<"$(free_ports 2)"
    local common="access_log off; client_max_body_size 0; proxy_http_version 1.1;
    proxy_set_header Connection \"\"; proxy_buffering off; proxy_request_buffering off;
    keepalive_requests 1000000; proxy_read_timeout 120s;
    client_body_temp_path $WORK/nginx-http-tmp; proxy_temp_path $WORK/nginx-http-tmp;"
    mkdir -p "$WORK/nginx-http-tmp"
    start_nginx_pair nginx-http "http { $common
    upstream w { server 127.0.0.1:$UP; keepalive 64; }
    server { listen 127.0.0.1:$s ssl;
        ssl_certificate $C/cert.pem; ssl_certificate_key $C/key.pem;
        ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites $CIPHER;
        location / { proxy_pass http://w; } } }" "http { $common
    upstream s { server 127.0.0.1:$s; keepalive 64; }
    server { listen 127.0.0.1:$c;
        location / { proxy_pass https://s; proxy_ssl_protocols TLSv1.3;
            proxy_ssl_conf_command Ciphersuites $CIPHER; proxy_ssl_session_reuse on; } } }" "" "$s" "$c"
}

ACTIVE=()
for p in direct ccgate ccgate-tcp stunnel haproxy-tls nginx-stream nginx-http haproxy-plain; do
    if "start_$p"; then ACTIVE+=("$p"); else note "pair $p not running: its rows are skipped"; fi
done
note "pairs: ${ACTIVE[*]}"
# Every TLS pair must speak TLS 1.3 with the one cipher: ask the server side of each.
for p in "${ACTIVE[@]}"; do
    case $p in stunnel | haproxy-tls | nginx-stream | nginx-http)
        got=$(echo | timeout 5 openssl s_client -connect "127.0.0.1:${SRV[$p]}" 2>/dev/null |
            grep -m1 -o 'TLSv1.3, Cipher is [A-Z0-9_]*')
        note "$p server side: ${got:-could not check}"
        ;;
    esac
done

# ---------------------------------------------------------------- scenarios

JSON_BODY=$(python3 -c 'import json
msgs=[{"role":"system","content":"You are a helpful assistant. Answer briefly and precisely, in plain text."},
      {"role":"user","content":"Summarise the following: " + "the quick brown fox jumps over the lazy dog " * 11}]
print(json.dumps({"model":"mock","temperature":0.2,"max_tokens":256,"messages":msgs}))')
cat >"$C/post.lua" <<EOF
wrk.method = "POST"
wrk.body = [[$JSON_BODY]]
wrk.headers["Content-Type"] = "application/json"
EOF
SSE_BODY="{\"model\":\"mock\",\"stream\":true,\"events\":$SSE_EVENTS,\"interval_ms\":20,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
LG="$BIN/ccgate-loadgen"
HAVE_WRK=0
command -v wrk >/dev/null && HAVE_WRK=1 || note "wrk missing: the wrk scenarios are skipped"


measure() { # PAIR SCENARIO ROUND KIND CMD...
    local pair=$1 scen=$2 round=$3 kind=$4
    shift 4
    python3 "$HERE/bench.py" measure --raw "$RAW" --sut-cpu "$SUT_CPU" --pair "$pair" --scenario "$scen" --round "$round" \
        --kind "$kind" --pids "${PIDS[$pair]} $UP_PID" --metrics "${ADMIN[$pair]:-}" "${EXTRA[@]}" -- "$@" ||
        note "measure $pair $scen failed"
}

run_one() { # PAIR SCENARIO ROUND
    local pair=$1 scen=$2 round=$3 url="http://127.0.0.1:${PORT[$1]}" t="127.0.0.1:${PORT[$1]}"
    EXTRA=()
    case $scen in
    get1k_c*)
        [ $HAVE_WRK = 1 ] || return 0
        local c=${scen#get1k_c}
        measure "$pair" "$scen" "$round" wrk "${GEN[@]}" wrk -t1 -c"$c" -d"${WRK_DUR}s" --latency "$url/bytes/1024" ;;
    json_c16)
        [ $HAVE_WRK = 1 ] || return 0
        measure "$pair" "$scen" "$round" wrk "${GEN[@]}" wrk -t1 -c16 -d"${WRK_DUR}s" --latency -s "$C/post.lua" \
            "$url/v1/chat/completions" ;;
    get1k_rate2k)
        measure "$pair" "$scen" "$round" loadgen "${GEN[@]}" "$LG" --target "$t" --mode rate --rate 2000 \
            --conns 16 --duration "$DUR" ;;
    newconn_c16)
        measure "$pair" "$scen" "$round" loadgen "${GEN[@]}" "$LG" --target "$t" --mode newconn --conns 16 \
            --duration "$DUR" ;;
    dl*|ul*)
        local size=${scen:2} c=${scen##*_c}
        size=${size%_c*}
        case $size in 1m) size=$((1024 * 1024)) ;; 16m) size=$((16 * 1024 * 1024)) ;; 64m) size=$((64 * 1024 * 1024)) ;; esac
        if [ "${scen:0:2}" = dl ]; then
            measure "$pair" "$scen" "$round" loadgen "${GEN[@]}" "$LG" --target "$t" --conns "$c" \
                --duration "$DUR" --path "/bytes/$size"
        else
            measure "$pair" "$scen" "$round" loadgen "${GEN[@]}" "$LG" --target "$t" --conns "$c" \
                --duration "$DUR" --method POST --path /upload --body-size "$size"
        fi ;;
    sse_*)
        measure "$pair" "$scen" "$round" loadgen "${GEN[@]}" "$LG" --target "$t" --mode sse --conns "${scen#sse_}" \
            --method POST --path /v1/chat/completions --body "$SSE_BODY" --timeout 60 ;;
    esac
}

START=$(date +%s)
for round in $(seq "$ROUNDS"); do
    note "round $round of $ROUNDS (shuffled)"
    # Every (pair, scenario) once per round, in a new random order each round.
    while read -r pair scen; do
        run_one "$pair" "$scen" "$round"
    done < <(for p in "${ACTIVE[@]}"; do for s in "${SCENARIOS[@]}"; do echo "$p $s"; done; done | shuf)
done

note "idle connections: $IDLE_N per pair"
for pair in $(printf '%s\n' "${ACTIVE[@]}" | shuf); do
    EXTRA=(--rss)
    measure "$pair" idle 1 loadgen "${GEN[@]}" "$LG" --target "127.0.0.1:${PORT[$pair]}" --mode idle \
        --conns "$IDLE_N" --hold "$IDLE_HOLD" --path /bytes/1024
done

note "connection storm: $STORM_N at once, each pair freshly started"
for pair in $(printf '%s\n' "${ACTIVE[@]}" | shuf); do
    if [ "$pair" != direct ]; then
        stop_pids ${PIDS[$pair]}
        "start_$pair" || { note "restart of $pair failed: no storm row"; continue; }
    fi
    EXTRA=()
    measure "$pair" storm 1 loadgen "${GEN[@]}" "$LG" --target "127.0.0.1:${PORT[$pair]}" --mode storm \
        --conns "$STORM_N" --path /bytes/1024 --timeout 60
done

# Instructions per request of the ccgate pair under callgrind (bench/instr.sh): CG_REQS
# keep-alive 1 KiB GETs, per-connection costs cancelled out; independent of CG_REQS.
INSTR="$WORK/instr.txt"
if [[ " ${ACTIVE[*]} " == *" ccgate "* ]]; then
    bash "$HERE/instr.sh" "$BIN" "$UP" "$C/sim" "$CG_REQS" "$WORK/callgrind" >"$INSTR" 2>"$WORK/instr.log" ||
        { note "callgrind count failed: $(tail -3 "$WORK/instr.log")"; rm -f "$INSTR"; }
fi
ELAPSED=$(($(date +%s) - START))

report() {
    echo "ccgate benchmark ($([ $QUICK = 1 ] && echo quick || echo full)): $(date -u '+%Y-%m-%d %H:%M UTC'), ${ROUNDS} round(s), ${ELAPSED}s"
    echo "machine: $(hostname), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
    echo "pinning: load generator on CPU $GEN_CPU, everything under test on CPU $SUT_CPU"
    echo "versions: ccgate $("$BIN/ccgate-client" --version 2>&1 | head -1); $(openssl version);" \
        "$( (stunnel4 -version 2>&1 || true) | grep -m1 -o 'stunnel [0-9.]*');" \
        "$( (haproxy -v 2>&1 || true) | grep -m1 -o 'version [0-9.]*' | sed 's/^/haproxy /');" \
        "$( (nginx -v 2>&1 || true) | grep -o 'nginx/[0-9.]*');" \
        "$( (wrk -v 2>&1 || true) | grep -m1 -o 'wrk [0-9.]*')"
    echo "pairs: ${ACTIVE[*]}"
    echo "TLS: 1.3, $CIPHER, ECDSA P-256 (ccgate: its own RA-TLS key, P-256)"
    echo "idle: $IDLE_N connections; storm: $STORM_N connections; instructions: $CG_REQS requests"
    python3 "$HERE/bench.py" report --raw "$RAW" --instr "$INSTR"
}

if [ -n "$OUT" ]; then
    mkdir -p "$(dirname "$OUT")"
    report | tee "$OUT"
    cp "$RAW" "${OUT%.txt}.jsonl"
    [ -f "$INSTR" ] && cp "$INSTR" "${OUT%.txt}.instr.txt"
    note "results in $OUT"
else
    report
fi
