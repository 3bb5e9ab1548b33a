# Shared helpers for integration tests: real binaries on 127.0.0.1, stopped by PID.
# Usage: source "$(dirname "$0")/lib.sh"
set -euo pipefail

: "${CG_BIN:?CG_BIN must point at the bin directory of the build}"
: "${CG_SOURCE_DIR:?CG_SOURCE_DIR must point at the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/ccgate-test.XXXXXX")
PIDS=()

cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ $rc -ne 0 ]; then
        echo "---- logs ($T) ----" >&2
        for f in "$T"/*.log; do
            [ -f "$f" ] || continue
            echo "== $f (warnings and errors)" >&2
            grep -E ' (warn|error) ' "$f" | sort | uniq -c | sort -rn | head -n 20 >&2 || true
            echo "== $f (last lines)" >&2
            tail -n 20 "$f" >&2
        done
    fi
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

pass() {
    echo "ok: $*"
}

# A TCP port on 127.0.0.1 that was free a moment ago: picked at random below the kernel's
# ephemeral range, so that no outgoing connection (of this test or another) takes it before
# the process meant to listen there binds it.
free_port() {
    python3 -c '
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    p = random.randrange(10000, low if low > 12000 else 65535)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
'
}

# wait_log FILE PATTERN [SECONDS]: waits until a line matching PATTERN appears in FILE.
wait_log() {
    local file=$1 pattern=$2 secs=${3:-20} i=0
    while ! grep -q -- "$pattern" "$file" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt $((secs * 20)) ] && fail "timed out waiting for '$pattern' in $file"
        sleep 0.05
    done
}

# wait_exit PID [SECONDS]: waits for a child to exit; sets EXIT_RC to its status.
wait_exit() {
    local pid=$1 secs=${2:-20} i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt $((secs * 20)) ] && fail "process $pid did not exit within ${secs}s"
        sleep 0.05
    done
    EXIT_RC=0
    wait "$pid" || EXIT_RC=$?
}

# start NAME CMD...: runs CMD in the background with its log in $T/NAME.log; sets LAST_PID.
start() {
    local name=$1
    shift
    "$@" >"$T/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# start_upstream: the mock worker on a free port; sets UP_PORT and UP_PID.
start_upstream() {
    UP_PORT=$(free_port)
    start upstream "$CG_BIN/ccgate-mock-worker" --listen "127.0.0.1:$UP_PORT"
    UP_PID=$LAST_PID
    wait_log "$T/upstream.log" "listening"
}

# sim_init: creates the sim TEE state; sets STATE and SIM_ROOT.
sim_init() {
    STATE="$T/state"
    SIM_ROOT=$("$CG_BIN/ccgate" sim-init --state-dir "$STATE")
    [[ "$SIM_ROOT" =~ ^[0-9a-f]{64}$ ]] || fail "sim-init printed '$SIM_ROOT'"
}

# start_server [NAME] [extra flags]: ccgate-server on the sim TEE; sets SRV_PORT, SRV_ADMIN, SRV_PID.
# The upstream sees only the test's traffic: no model query unless MODEL_QUERY_S says how often.
start_server() {
    local name=${1:-server}
    shift || true
    SRV_PORT=${SRV_PORT:-$(free_port)}
    SRV_ADMIN=${SRV_ADMIN:-$(free_port)}
    start "$name" "$CG_BIN/ccgate-server" --listen "127.0.0.1:$SRV_PORT" \
        --upstream "127.0.0.1:$UP_PORT" --tee sim --state-dir "$STATE" \
        --admin "127.0.0.1:$SRV_ADMIN" --model-query-s "${MODEL_QUERY_S:-0}" "$@"
    SRV_PID=$LAST_PID
    wait_log "$T/$name.log" "listening"
}

# The sim TEE's measurement of the server: SHA-384 of its binary.
server_measurement() {
    sha384sum "$CG_BIN/ccgate-server" | cut -d' ' -f1
}

# write_policy FILE [MEASUREMENT_HEX]: a sim policy pinning the measurement (default: the
# real server binary's SHA-384).
write_policy() {
    local file=$1 m
    m=$(server_measurement)
    [ $# -ge 2 ] && m=$2
    cat >"$file" <<JSON
{
  "sim": {"allow": true, "root_sha256": "$SIM_ROOT"},
  "snp": {"measurements": ["$m"]},
  "freshness": {"mode": "nonce", "max_age_s": 600}
}
JSON
}

# start_client POLICY [NAME] [extra flags]: ccgate-client; sets CLI_PORT, CLI_ADMIN, CLI_PID.
start_client() {
    local policy=$1 name=${2:-client}
    shift 2 || shift $#
    CLI_PORT=$(free_port)
    CLI_ADMIN=$(free_port)
    start "$name" "$CG_BIN/ccgate-client" --listen "127.0.0.1:$CLI_PORT" \
        --server "127.0.0.1:$SRV_PORT" --policy "$policy" --admin "127.0.0.1:$CLI_ADMIN" "$@"
    CLI_PID=$LAST_PID
    wait_log "$T/$name.log" "listening"
}

# wait_ready ADMIN_PORT [SECONDS]: waits until the client's /readyz answers 200 (it appraised
# a server at start).
wait_ready() {
    local port=$1 secs=${2:-20} i=0
    while ! curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt $((secs * 20)) ] && fail "client not ready within ${secs}s"
        sleep 0.05
    done
}

# metric URL NAME_WITH_LABELS: prints the value of one Prometheus sample. A name without a
# forward="..." label matches the client's samples of every forward (their sum when several).
metric() {
    curl -fsS "$1/metrics" | awk -v n="$2" '
        index(n, "forward=") == 0 { sub(/forward="[^"]*",?/, "", $1); sub(/\{\}$/, "", $1) }
        $1 == n { v = $2; sum += $2; found++ }
        END { if (found == 1) print v; else if (found > 1) print sum }'
}
