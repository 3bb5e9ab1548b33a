#!/usr/bin/env bash
# ccgate against a direct connection and against the TLS proxy pairs users would pick instead
# (stunnel, haproxy, nginx stream, nginx http), plus a haproxy pair without TLS (the cost of
# the hops alone). Same upstream (ccgate-mock-worker), same load generator (ccgate-loadgen),
# all on 127.0.0.1, TLS 1.3 with TLS_AES_256_GCM_SHA384 and an ECDSA P-256 key everywhere.
#
#   bench/run.sh [--quick] [--calibrate] [--bin DIR] [--rounds N] [--out FILE]
#
# The load generator runs on core 0, everything under test (both proxies, the upstream) on
# core 1. Rounds run the pairs and scenarios in a shuffled order; each timed run has a warm-up
# outside its measured window. bench.py prints medians with min-max over the valid rounds and
# the RATIO lines as the median of per-round ratios with a bootstrap interval (nan, with the
# reason, unless ccgate and every TLS peer have >= 2 valid rounds), then the METRIC lines. A
# peer whose program is missing is skipped with a notice and its ratios say so. A full run
# also runs the hand-tuned reference peers once (calibration) and writes
# bench/results/<date>-<host>.txt. bench/NOTES.md describes the method and the time budget.
set -uo pipefail

# This machine kind is shared: the scheduler's autogroups share a CPU equally between login
# sessions whatever a process's nice value. Where allowed, the run takes a session (and so
# an autogroup) of its own and raises that group's weight (nice -20), so that the processes
# under test win the contention and other programs fill only the idle time. Every run is
# still checked (bench.py). CCGATE_BENCH_NO_PRIORITY=1 leaves the priority alone.
if [ -z "${CCGATE_BENCH_NO_PRIORITY:-}" ] && [ -z "${CCGATE_BENCH_SESSION:-}" ] && [ -w /proc/self/autogroup ] &&
    command -v setsid >/dev/null; then
    CCGATE_BENCH_SESSION=1 exec setsid -w bash "$0" "$@"
fi
if [ -n "${CCGATE_BENCH_SESSION:-}" ]; then
    echo -20 >/proc/self/autogroup 2>/dev/null || echo "bench: could not raise the autogroup's priority" >&2
fi

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
QUICK=0
CALIBRATE="" # full runs calibrate; quick ones only with --calibrate
BIN="$ROOT/build/release/bin"
ROUNDS=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --calibrate) CALIBRATE=1 ;;
    --bin) BIN=$(cd "$2" && pwd); shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --out) OUT=$2; shift ;;
    *) echo "usage: run.sh [--quick] [--calibrate] [--bin DIR] [--rounds N] [--out FILE]" >&2; exit 2 ;;
    esac
    shift
done

# Measured window per scenario (seconds, after WARM seconds of warm-up) and which rounds run
# it. CORE scenarios run in every round, EXT ones in the first EXT_ROUNDS rounds, INFO ones
# (no ratio reads them) in round 1 only; INFO_PAIRS (no ratio reads them) run only there too.
# The time budget behind these choices is in bench/NOTES.md ("Time budget").
declare -A WIN
if [ $QUICK -eq 1 ]; then
    # CI's smoke test: two short rounds of what the RATIO / METRIC lines need (~3 minutes).
    ROUNDS=${ROUNDS:-2}; EXT_ROUNDS=$ROUNDS; WARM=0.3; RETRIES=0; RETRY_BUDGET_S=0; SSE_EVENTS=32; OAI_EVENTS=30
    IDLE_N=200; IDLE_HOLD=0.5; STORM_N=200; CG_REQS=200
    CORE=(get1k_c1 get1k_c16 newconn_c16 sse_64); EXT=(dl16m_c1 openai_stream_c64 get1k_rate2k get1k_c16_debuglog)
    INFO=()
    for s in "${CORE[@]}" "${EXT[@]}"; do WIN[$s]=1; done
else
    ROUNDS=${ROUNDS:-5}; EXT_ROUNDS=$(( ROUNDS < 3 ? ROUNDS : 3 )); WARM=1; RETRIES=1; RETRY_BUDGET_S=600; SSE_EVENTS=128; OAI_EVENTS=30
    IDLE_N=1000; IDLE_HOLD=1; STORM_N=1000; CG_REQS=2000
    CORE=(get1k_c1 get1k_c16 newconn_c16 sse_64)
    EXT=(dl1m_c1 dl1m_c4 dl64m_c1 dl64m_c4 ul1m_c1 ul1m_c4 ul64m_c1 ul64m_c4 openai_stream_c64 get1k_rate2k
        get1k_c16_debuglog)
    INFO=(get1k_c64 json_c16 sse_1)
    WIN=([get1k_c1]=3 [get1k_c16]=10 [newconn_c16]=5 [openai_stream_c64]=5 [get1k_rate2k]=10
        [get1k_c64]=3 [json_c16]=3)
    for s in dl1m_c1 dl1m_c4 dl64m_c1 dl64m_c4 ul1m_c1 ul1m_c4 ul64m_c1 ul64m_c4; do WIN[$s]=2; done
fi
INFO_PAIRS=" ccgate-tcp haproxy-plain nginx-http-old "
# Scenarios whose pair set is narrower than every running pair.
scenario_pairs() { # SCENARIO: prints the pairs that run it
    case $1 in
    get1k_rate2k) echo "ccgate ccgate-flush" ;;
    newconn_c16) echo "ccgate ccgate-cold stunnel haproxy-tls nginx-stream nginx-http" ;;
    # (direct saturates the generator here: no row)
    get1k_c16) echo "ccgate stunnel haproxy-tls nginx-stream nginx-http" ;;
    # ccgate-debuglog: what the production log level changed
    get1k_c16_debuglog) echo "ccgate-debuglog" ;;
    dl* | ul*) echo "ccgate stunnel haproxy-tls nginx-stream nginx-http" ;;
    *) echo "direct ccgate stunnel haproxy-tls nginx-stream nginx-http" ;;
    esac
}

note() { echo "bench: $*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ccgate-bench.XXXXXX")
RAW="$WORK/raw.jsonl"
declare -A PORT PIDS ADMIN SRV ALPN
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
# On this shared machine other programs compete for both CPUs: where allowed (root or
# CAP_SYS_NICE), the generator and everything under test run at nice -20, so that they win
# the contention and others fill only the idle time. bench.py still checks every run.
PRIO=()
if [ -z "${CCGATE_BENCH_NO_PRIORITY:-}" ] && [ "$(nice -n -20 nice 2>/dev/null)" = -20 ]; then PRIO=(nice -n -20); else note "cannot raise priority: runs at nice 0"; fi
# The generator only offers load: as a real-time task (where allowed) it answers each wake-up
# at once instead of after another program's time slice, which would starve the pair.
GEN_RT=()
if [ ${#PRIO[@]} -gt 0 ] && chrt -f 1 true 2>/dev/null; then GEN_RT=(chrt -f 1); fi
GEN=("${GEN_RT[@]}" "${PRIO[@]}" taskset -c $GEN_CPU)
SUT=("${PRIO[@]}" taskset -c $SUT_CPU)

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
# Every evidence request of the simulated TEE takes as long as an SNP report on hardware.
EVIDENCE_DELAY_MS=8
# ccgate runs at its production log level with the client's access log off (docs/guide.md
# "Logs": no line per request, like the peers' access_log off).
CG_LOG=(--log-level info)
CG_ACCESS=(--access-log off)

# ---------------------------------------------------------------- pairs
# Each start_X sets PORT[X] (where the generator connects) and PIDS[X] (the two proxies),
# or returns non-zero with a notice.

start_direct() { PORT[direct]=$UP; PIDS[direct]=""; }

ccgate_pair() { # NAME [client flags...]: a ccgate pair with its own policy file
    local name=$1 s c sa ca
    shift
    read -r s c sa ca <<<"$(free_ports 4)"
    spawn "$WORK/$name-server.log" "$BIN/ccgate-server" --listen "127.0.0.1:$s" --upstream "127.0.0.1:$UP" \
        --tee sim --state-dir "$C/sim" --admin "127.0.0.1:$sa" --log-format text "${CG_LOG[@]}" \
        --sim-evidence-delay-ms "$EVIDENCE_DELAY_MS" --access-log off
    local sp=$SPAWNED
    wait_port "$s" "$sp" "$WORK/$name-server.log" || return 1
    "$BIN/ccgate" policy from-evidence --server "127.0.0.1:$s" --allow-sim >"$C/$name-policy.json" 2>"$WORK/policy.log" ||
        { note "ccgate policy from-evidence failed: $(tail -2 "$WORK/policy.log")"; stop_pids "$sp"; return 1; }
    cp "$C/$name-policy.json" "$C/policy.json"
    spawn "$WORK/$name-client.log" "$BIN/ccgate-client" --listen "127.0.0.1:$c" --server "127.0.0.1:$s" \
        --policy "$C/$name-policy.json" --admin "127.0.0.1:$ca" "${CG_LOG[@]}" "${CG_ACCESS[@]}" "$@"
    local cp=$SPAWNED
    wait_port "$c" "$cp" "$WORK/$name-client.log" || { stop_pids "$sp"; return 1; }
    PORT[$name]=$c; PIDS[$name]="$cp $sp"; ADMIN[$name]="http://127.0.0.1:$sa/metrics"; SRV[$name]=$s
    ALPN[$name]=http/1.1
}
start_ccgate() { ccgate_pair ccgate; }
# What the production log level changed: ccgate as before, a line per request (the access
# log) and per connection.
start_ccgate-debuglog() {
    local CG_LOG=(--log-level debug) CG_ACCESS=(--access-log on)
    ccgate_pair ccgate-debuglog
}
# attested_handshake: no pool, so every app connection makes an attested handshake.
start_ccgate-cold() { ccgate_pair ccgate-cold --pool-max 0; }

start_ccgate-tcp() {
    if ! "$BIN/ccgate-client" --help 2>&1 | grep -Eq -- '--mode +http\|tcp'; then
        note "ccgate-client has no --mode tcp yet: the ccgate TCP-mode rows are skipped"
        return 1
    fi
    local s c
    read -r s c <<<"$(free_ports 2)"
    spawn "$WORK/ccgate-tcp-server.log" "$BIN/ccgate-server" --listen "127.0.0.1:$s" --upstream "127.0.0.1:$UP" \
        --tee sim --state-dir "$C/sim" --mode tcp "${CG_LOG[@]}" --sim-evidence-delay-ms "$EVIDENCE_DELAY_MS"
    local sp=$SPAWNED
    wait_port "$s" "$sp" "$WORK/ccgate-tcp-server.log" || return 1
    spawn "$WORK/ccgate-tcp-client.log" "$BIN/ccgate-client" --listen "127.0.0.1:$c" --server "127.0.0.1:$s" \
        --policy "$C/policy.json" --mode tcp "${CG_LOG[@]}" "${CG_ACCESS[@]}"
    local cp=$SPAWNED
    wait_port "$c" "$cp" "$WORK/ccgate-tcp-client.log" || { stop_pids "$sp"; return 1; }
    PORT[ccgate-tcp]=$c; PIDS[ccgate-tcp]="$cp $sp"; SRV[ccgate-tcp]=$s; ALPN[ccgate-tcp]=ccgate-tcp
}

# Peer clients verify the server's certificate (the one the harness made) as ccgate verifies
# evidence. NAME ref-X starts X with the hand-tuned reference configuration (calibration).
stunnel_pair() { # NAME
    command -v stunnel4 >/dev/null || command -v stunnel >/dev/null || { note "stunnel missing: $1 skipped"; return 1; }
    local st s c
    st=$(command -v stunnel4 || command -v stunnel)
    read -r s c <<<"$(free_ports 2)"
    cat >"$C/$1-server.conf" <<EOF
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
    cat >"$C/$1-client.conf" <<EOF
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
verifyChain = yes
CAfile = $C/cert.pem
checkIP = 127.0.0.1
EOF
    spawn "$WORK/$1-server.log" "$st" "$C/$1-server.conf"
    local sp=$SPAWNED
    wait_port "$s" "$sp" "$WORK/$1-server.log" || return 1
    spawn "$WORK/$1-client.log" "$st" "$C/$1-client.conf"
    local cp=$SPAWNED
    wait_port "$c" "$cp" "$WORK/$1-client.log" || { stop_pids "$sp"; return 1; }
    PORT[$1]=$c; PIDS[$1]="$cp $sp"; SRV[$1]=$s
}
start_stunnel() { stunnel_pair stunnel; }
start_ref-stunnel() { stunnel_pair ref-stunnel; } # stunnel: default socket options in both

haproxy_pair() { # NAME TLS(0|1)
    command -v haproxy >/dev/null || { note "haproxy missing: $1 skipped"; return 1; }
    local s c bind_ssl="" srv_ssl=""
    read -r s c <<<"$(free_ports 2)"
    if [ "$2" = 1 ]; then
        bind_ssl="ssl crt $C/both.pem ssl-min-ver TLSv1.3 ciphersuites $CIPHER"
        srv_ssl="ssl verify required ca-file $C/cert.pem ssl-min-ver TLSv1.3 ciphersuites $CIPHER"
    fi
    # The reference configuration is this one: nbthread 1, default-dh-param 2048, mode tcp.
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
start_ref-haproxy-tls() { haproxy_pair ref-haproxy-tls 1; }
start_haproxy-plain() { haproxy_pair haproxy-plain 0; }

NGINX_STREAM_MOD=/usr/lib/nginx/modules/ngx_stream_module.so
nginx_conf() { # FILE DIR BODY CONNS: one process (no master), one worker loop, logs off
    mkdir -p "$2"
    cat >"$1" <<EOF
$3
daemon off;
master_process off;
worker_processes 1;
pid $2/nginx.pid;
error_log $2/error.log warn;
events { worker_connections $4; }
EOF
}

start_nginx_pair() { # NAME SERVER_BLOCK CLIENT_BLOCK PRELUDE S C CONNS
    local sp cp
    nginx_conf "$C/$1-server.conf" "$WORK/$1-server" "$4
$2" "$7"
    nginx_conf "$C/$1-client.conf" "$WORK/$1-client" "$4
$3" "$7"
    spawn "$WORK/$1-server.log" nginx -c "$C/$1-server.conf" -p "$WORK/$1-server" -e stderr
    sp=$SPAWNED
    wait_port "$5" "$sp" "$WORK/$1-server.log" || return 1
    spawn "$WORK/$1-client.log" nginx -c "$C/$1-client.conf" -p "$WORK/$1-client" -e stderr
    cp=$SPAWNED
    wait_port "$6" "$cp" "$WORK/$1-client.log" || { stop_pids "$sp"; return 1; }
    PORT[$1]=$6; PIDS[$1]="$cp $sp"; SRV[$1]=$5
}

NGINX_VERIFY="proxy_ssl_verify on; proxy_ssl_trusted_certificate $C/cert.pem; proxy_ssl_name 127.0.0.1;"

nginx_stream_pair() { # NAME
    command -v nginx >/dev/null || { note "nginx missing: $1 skipped"; return 1; }
    [ -f "$NGINX_STREAM_MOD" ] || { note "nginx stream module missing (libnginx-mod-stream): $1 skipped"; return 1; }
    local s c cache="" conns=8192
    # reference: worker_connections 4096, a shared session cache on the server side
    if [ "${1#ref-}" != "$1" ]; then cache="ssl_session_cache shared:S:1m;"; conns=4096; fi
    read -r s c <<<"$(free_ports 2)"
    start_nginx_pair "$1" "stream { server {
    listen 127.0.0.1:$s ssl;
    ssl_certificate $C/cert.pem; ssl_certificate_key $C/key.pem; $cache
    ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites $CIPHER;
    proxy_pass 127.0.0.1:$UP; } }" "stream { server {
    listen 127.0.0.1:$c;
    proxy_pass 127.0.0.1:$s;
    proxy_ssl on; proxy_ssl_protocols TLSv1.3; proxy_ssl_conf_command Ciphersuites $CIPHER;
    $NGINX_VERIFY
    proxy_ssl_session_reuse on; } }" "load_module $NGINX_STREAM_MOD;" "$s" "$c" "$conns"
}
start_nginx-stream() { nginx_stream_pair nginx-stream; }
start_ref-nginx-stream() { nginx_stream_pair ref-nginx-stream; }

nginx_http_pair() { # NAME
    command -v nginx >/dev/null || { note "nginx missing: $1 skipped"; return 1; }
    local s c conns=8192 ka=64
    local extra="proxy_buffering off; proxy_request_buffering off; proxy_buffer_size 16k; proxy_buffers 4 16k;"
    # keepalive_requests belongs in upstream{} (at http{} level it only limits the app side,
    # and the pool would re-handshake every 1000 requests); with proxy_buffering off a 4 KiB
    # proxy_buffer_size doubles the bulk CPU, hence 16k.
    local ka_req="keepalive_requests 1000000;" verify=$NGINX_VERIFY
    if [ "${1#ref-}" != "$1" ]; then
        # reference: default buffering, keepalive 128, a shared session cache, 4096 connections
        conns=4096; ka=128; extra="ssl_session_cache shared:S:1m;"
    elif [ "$1" = nginx-http-old ]; then
        # this harness before issue 13 (what the level configuration changed): keepalive_requests
        # only at http{} level, the default proxy_buffer_size, no certificate check
        extra="proxy_buffering off; proxy_request_buffering off;"; ka_req=""; verify=""
    fi
    read -r s c <<<"$(free_ports 2)"
    local common="access_log off; client_max_body_size 0; proxy_http_version 1.1;
    proxy_set_header Connection \"\"; $extra
    keepalive_requests 1000000; proxy_read_timeout 120s;
    client_body_temp_path $WORK/$1-tmp; proxy_temp_path $WORK/$1-tmp;"
    mkdir -p "$WORK/$1-tmp"
    start_nginx_pair "$1" "http { $common
    upstream w { server 127.0.0.1:$UP; keepalive $ka; $ka_req }
    server { listen 127.0.0.1:$s ssl;
        ssl_certificate $C/cert.pem; ssl_certificate_key $C/key.pem;
        ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites $CIPHER;
        location / { proxy_pass http://w; } } }" "http { $common
    upstream s { server 127.0.0.1:$s; keepalive $ka; $ka_req }
    server { listen 127.0.0.1:$c;
        location / { proxy_pass https://s; proxy_ssl_protocols TLSv1.3; $verify
            proxy_ssl_conf_command Ciphersuites $CIPHER; proxy_ssl_session_reuse on; } } }" "" "$s" "$c" "$conns"
}
start_nginx-http() { nginx_http_pair nginx-http; }
start_ref-nginx-http() { nginx_http_pair ref-nginx-http; }
start_nginx-http-old() { nginx_http_pair nginx-http-old; }

ACTIVE=()
missing() { # PAIR WHY: a pair that does not run is said so in the results, never dropped
    note "pair $1 not running: $2"
    python3 -c 'import json,sys; print(json.dumps({"missing": sys.argv[1], "why": sys.argv[2]}))' "$1" "$2" >>"$RAW"
}
for p in direct ccgate ccgate-cold ccgate-debuglog stunnel haproxy-tls nginx-stream nginx-http ccgate-tcp \
    haproxy-plain nginx-http-old; do
    if "start_$p"; then ACTIVE+=("$p"); else missing "$p" "did not start (see the notices above)"; fi
done
is_active() { [[ " ${ACTIVE[*]} " == *" $1 "* ]]; }
# ccgate-flush is the ccgate pair measured while a flusher empties its pool every second.
if is_active ccgate; then
    PORT[ccgate-flush]=${PORT[ccgate]}; PIDS[ccgate-flush]=${PIDS[ccgate]}; ACTIVE+=(ccgate-flush)
fi
note "pairs: ${ACTIVE[*]}"

# Version, cipher and resumption of every TLS server side (ccgate's included), from
# openssl s_client: a first handshake saves the session, a second offers it back.
TLS_LINES=()
tls_check() { # PAIR
    local p=$1 a=() first second got
    [ -n "${ALPN[$p]:-}" ] && a=(-alpn "${ALPN[$p]}")
    first=$( (sleep 0.3) | timeout 5 openssl s_client -connect "127.0.0.1:${SRV[$p]}" "${a[@]}" \
        -sess_out "$C/$p.sess" 2>/dev/null)
    second=$( (sleep 0.3) | timeout 5 openssl s_client -connect "127.0.0.1:${SRV[$p]}" "${a[@]}" \
        -sess_in "$C/$p.sess" 2>/dev/null)
    got=$(grep -m1 -o 'New, TLSv1.3, Cipher is [A-Z0-9_]*' <<<"$first" | sed 's/^New, //')
    local resumed=no
    grep -q '^Reused, TLSv1.3' <<<"$second" && resumed=yes
    local ok=ok
    [ "$got" = "TLSv1.3, Cipher is $CIPHER" ] || ok="MISMATCH: expected TLSv1.3 $CIPHER"
    TLS_LINES+=("$p server side: ${got:-no handshake}; resumption offered and accepted: $resumed; $ok")
    note "${TLS_LINES[-1]}"
}
for p in "${ACTIVE[@]}"; do
    case $p in direct | haproxy-plain | ccgate-flush) ;; *) tls_check "$p" ;; esac
done

# ---------------------------------------------------------------- scenarios

JSON_BODY=$(python3 -c 'import json
msgs=[{"role":"system","content":"You are a helpful assistant. Answer briefly and precisely, in plain text."},
      {"role":"user","content":"Summarise the following: " + "the quick brown fox jumps over the lazy dog " * 11}]
print(json.dumps({"model":"mock","temperature":0.2,"max_tokens":256,"messages":msgs}))')
SSE_BODY="{\"model\":\"mock\",\"stream\":true,\"events\":$SSE_EVENTS,\"interval_ms\":20,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
# OpenAI-style streaming request: ~1 KB, stream: true; the worker answers with OAI_EVENTS
# chunks of ~200 B, one every 20 ms.
OAI_BODY=$(python3 -c 'import json,sys
msgs=[{"role":"system","content":"You are a helpful assistant. Answer briefly and precisely, in plain text."},
      {"role":"user","content":"Summarise the following: " + "the quick brown fox jumps over the lazy dog " * 18}]
print(json.dumps({"model":"mock","stream":True,"events":int(sys.argv[1]),"interval_ms":20,"max_tokens":256,"messages":msgs}))' "$OAI_EVENTS")
LG="$BIN/ccgate-loadgen"

measure() { # PAIR SCENARIO ROUND CMD...
    local pair=$1 scen=$2 round=$3
    shift 3
    python3 "$HERE/bench.py" measure --raw "$RAW" --sut-cpu "$SUT_CPU" --pair "$pair" --scenario "$scen" --round "$round" \
        --pids "${PIDS[$pair]} $UP_PID" --metrics "${ADMIN[$pair]:-}" --retries "$RETRIES" \
        --deadline "$RETRY_DEADLINE" "${EXTRA[@]}" -- "${GEN[@]}" "$LG" "$@" ||
        note "measure $pair $scen failed"
}

# ccgate-flush: every second the client's policy file alternates between two equivalent
# versions (max_age_s 600/601) and SIGHUP reloads it; a changed policy flushes the pool, so
# the next requests make new attested handshakes (with a nonce: evidence, its delay included).
flusher() { # CLIENT_PID POLICY_FILE
    python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); p.setdefault("freshness",{})["max_age_s"]=601
json.dump(p,open(sys.argv[2],"w"))' "$2" "$2.alt" || return
    cp "$2" "$2.orig"
    local i=0
    while :; do
        sleep 1
        i=$((i + 1))
        if [ $((i % 2)) = 1 ]; then cp "$2.alt" "$2"; else cp "$2.orig" "$2"; fi
        kill -HUP "$1" 2>/dev/null || return
    done
}

run_one() { # PAIR SCENARIO ROUND
    local pair=$1 scen=$2 round=$3 t="127.0.0.1:${PORT[$1]}" win=${WIN[$2]:-1}
    local timed=(--duration "$win" --warmup "$WARM")
    EXTRA=()
    case $scen in
    get1k_c*)
        local c=${scen#get1k_c}
        [ "$c" -gt 1 ] && EXTRA=(--throughput)
        measure "$pair" "$scen" "$round" --target "$t" --conns "$c" "${timed[@]}" --path /bytes/1024 ;;
    json_c16)
        EXTRA=(--throughput)
        measure "$pair" "$scen" "$round" --target "$t" --conns 16 "${timed[@]}" --method POST \
            --path /v1/chat/completions --body "$JSON_BODY" ;;
    get1k_rate2k)
        local fl=""
        if [ "$pair" = ccgate-flush ]; then
            flusher "${PIDS[ccgate]%% *}" "$C/ccgate-policy.json" &
            fl=$!
        fi
        measure "$pair" "$scen" "$round" --target "$t" --mode rate --rate 2000 --conns 16 "${timed[@]}"
        if [ -n "$fl" ]; then kill "$fl" 2>/dev/null; wait "$fl" 2>/dev/null; fi ;;
    newconn_c16)
        EXTRA=(--throughput)
        measure "$pair" "$scen" "$round" --target "$t" --mode newconn --conns 16 "${timed[@]}" ;;
    dl* | ul*)
        local size=${scen:2} c=${scen##*_c}
        size=${size%_c*}
        case $size in 1m) size=$((1024 * 1024)) ;; 16m) size=$((16 * 1024 * 1024)) ;; 64m) size=$((64 * 1024 * 1024)) ;; esac
        # CPU per MiB needs no saturated CPU (a c=1 transfer has turn-around gaps)
        if [ "${scen:0:2}" = dl ]; then
            measure "$pair" "$scen" "$round" --target "$t" --conns "$c" "${timed[@]}" --path "/bytes/$size"
        else
            measure "$pair" "$scen" "$round" --target "$t" --conns "$c" "${timed[@]}" --method POST \
                --path /upload --body-size "$size"
        fi ;;
    sse_1)
        measure "$pair" "$scen" "$round" --target "$t" --mode sse --conns 1 --method POST \
            --path /v1/chat/completions --body "$SSE_BODY" --timeout 60 ;;
    sse_64)
        # Starts spread over 1 s and the first 8 events of each stream not sampled, so that
        # the pairs' handshake spread does not decide how bunched the events are.
        measure "$pair" "$scen" "$round" --target "$t" --mode sse --conns 64 --stagger 1 --skip-events 8 \
            --method POST --path /v1/chat/completions --body "$SSE_BODY" --timeout 60 ;;
    openai_stream_c64)
        measure "$pair" "$scen" "$round" --target "$t" --mode sse --keepalive --conns 64 --stagger "$WARM" \
            "${timed[@]}" --method POST --path /v1/chat/completions --body "$OAI_BODY" ;;
    esac
}

plan_round() { # ROUND: prints "pair scenario" for every run of the round
    local r=$1 s p
    local scens=("${CORE[@]}")
    [ "$r" -le "$EXT_ROUNDS" ] && scens+=("${EXT[@]}")
    [ "$r" -eq 1 ] && scens+=("${INFO[@]}")
    for s in "${scens[@]}"; do
        for p in $(scenario_pairs "$s"); do is_active "$p" && echo "$p ${s%_debuglog}"; done
    done
    if [ "$r" -eq 1 ]; then
        for p in $INFO_PAIRS; do
            is_active "$p" || continue
            echo "$p get1k_c16"
            [ $QUICK = 0 ] && [ "$p" = nginx-http-old ] && echo "$p dl64m_c1"
        done
    fi
}

START=$(date +%s)
# An invalid run (this machine is shared) is run again RETRIES times, but only while the
# rounds are within their share of the time budget.
RETRY_DEADLINE=$((START + RETRY_BUDGET_S))
for round in $(seq "$ROUNDS"); do
    note "round $round of $ROUNDS (shuffled): $(plan_round "$round" | wc -l) runs"
    while read -r pair scen; do
        run_one "$pair" "$scen" "$round"
    done < <(plan_round "$round" | shuf)
done

if is_active ccgate-flush; then
    note "ccgate-flush: $(grep -c ' reload ' "$WORK/ccgate-client.log") policy reloads (each a pool flush) in ccgate-client's log"
fi

if [ "${CALIBRATE:-$((1 - QUICK))}" = 1 ]; then
    note "calibration: the hand-tuned reference configurations, get1k_c16"
    for p in stunnel haproxy-tls nginx-stream nginx-http; do
        if "start_ref-$p"; then
            run_one "ref-$p" get1k_c16 1
            stop_pids ${PIDS[ref-$p]}
        else
            missing "ref-$p" "the reference configuration did not start"
        fi
    done
fi

note "cancel: 16 streams each closed by the client after 3 events"
for pair in direct ccgate stunnel haproxy-tls nginx-stream nginx-http; do
    is_active "$pair" || continue
    python3 "$HERE/bench.py" cancel --raw "$RAW" --pair "$pair" --stats "http://127.0.0.1:$UP/stats" -- \
        "${GEN[@]}" "$LG" --target "127.0.0.1:${PORT[$pair]}" --mode sse --conns 16 --cancel-after 3 \
        --method POST --path /v1/chat/completions \
        --body '{"model":"mock","stream":true,"events":1000,"interval_ms":20}' --timeout 30 ||
        note "cancel $pair failed"
done

note "idle connections: $IDLE_N per pair"
NOT_AGAIN='ccgate-flush\|ccgate-cold\|ccgate-debuglog\|nginx-http-old'
for pair in $(printf '%s\n' "${ACTIVE[@]}" | grep -vx "$NOT_AGAIN" | shuf); do
    EXTRA=(--rss)
    measure "$pair" idle 1 --target "127.0.0.1:${PORT[$pair]}" --mode idle \
        --conns "$IDLE_N" --hold "$IDLE_HOLD" --path /bytes/1024
done

note "connection storm: $STORM_N at once, each pair freshly started"
for pair in $(printf '%s\n' "${ACTIVE[@]}" | grep -vx "$NOT_AGAIN" | shuf); do
    if [ "$pair" != direct ]; then
        stop_pids ${PIDS[$pair]}
        "start_$pair" || { note "restart of $pair failed: no storm row"; continue; }
    fi
    EXTRA=()
    measure "$pair" storm 1 --target "127.0.0.1:${PORT[$pair]}" --mode storm \
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
        "$( (nginx -v 2>&1 || true) | grep -o 'nginx/[0-9.]*')"
    echo "pairs: ${ACTIVE[*]}"
    echo "TLS: 1.3, $CIPHER, ECDSA P-256 (ccgate: its own RA-TLS key, P-256); peer clients verify the certificate"
    printf 'TLS check: %s\n' "${TLS_LINES[@]}"
    echo "ccgate: --log-level info (production: no line per request), --sim-evidence-delay-ms $EVIDENCE_DELAY_MS"
    echo "rounds: $ROUNDS (core: ${CORE[*]}), the first $EXT_ROUNDS also: ${EXT[*]}; round 1 also: ${INFO[*]:-} and$INFO_PAIRS"
    echo "windows (s, after a ${WARM} s warm-up outside the window): $(for s in "${!WIN[@]}"; do printf '%s=%s ' "$s" "${WIN[$s]}"; done)"
    echo "idle: $IDLE_N connections; storm: $STORM_N connections; instructions: $CG_REQS requests"
    python3 "$HERE/bench.py" report --raw "$RAW" --instr "$INSTR"
}

cp "$RAW" "${TMPDIR:-/tmp}/ccgate-bench-last.jsonl" 2>/dev/null &&
    note "raw records also in ${TMPDIR:-/tmp}/ccgate-bench-last.jsonl (bench.py report --raw ... prints the tables again)"
if [ -n "$OUT" ]; then
    mkdir -p "$(dirname "$OUT")"
    report | tee "$OUT"
    cp "$RAW" "${OUT%.txt}.jsonl"
    [ -f "$INSTR" ] && cp "$INSTR" "${OUT%.txt}.instr.txt"
    note "results in $OUT"
else
    report
fi
