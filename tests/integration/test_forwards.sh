#!/usr/bin/env bash
# Several forwards in one ccgate-client (a "forwards" list in --config): an HTTP forward, a TCP
# forward, a forward whose policy refuses its server, and one named by its listen address, each
# with its own server, policy and limits. Each is checked on its own (requests,
# /verification on its listener, metrics labelled forward=NAME, /readyz naming the forward that
# is not ready); SIGHUP reloads each forward's policy; config errors and repeated flags are
# refused with a message naming what is wrong.
source "$(dirname "$0")/lib.sh"
PEER="$CG_SOURCE_DIR/tests/integration/peer.py"
command -v promtool >/dev/null || fail "promtool missing: scripts/install-deps.sh installs prometheus"

start_upstream
HTTP_UP=$UP_PORT
UP_PORT=$(free_port)
start tcp-upstream python3 "$PEER" tcp-server "$UP_PORT" "$T"
wait_log "$T/tcp-upstream.log" listening
TCP_UP=$UP_PORT
sim_init
# Three servers: A (HTTP), B (TCP mode), C (HTTP; the "bad" forward's policy refuses it).
UP_PORT=$HTTP_UP
start_server server-a
SRV_A=$SRV_PORT
SRV_PORT='' SRV_ADMIN=''
UP_PORT=$TCP_UP
start_server server-b --mode tcp
SRV_B=$SRV_PORT
SRV_PORT='' SRV_ADMIN=''
UP_PORT=$HTTP_UP
start_server server-c
SRV_C=$SRV_PORT

# The config lives in its own folder; its relative policy paths are that folder's, not the
# working directory's (the client runs from /).
CFG=$T/cfg
mkdir -p "$CFG"
for p in api raw api2; do write_policy "$CFG/$p.json"; done
write_policy "$CFG/bad.json" "$(printf '%096d' 0)"
API=$(free_port) RAW=$(free_port) BAD=$(free_port) API2=$(free_port) ADMIN=$(free_port)
cat >"$CFG/client.json" <<JSON
{
  "admin": "127.0.0.1:$ADMIN",
  "log-level": "debug",
  "pool-max": 4,
  "forwards": [
    {"name": "api", "listen": "127.0.0.1:$API", "servers": ["127.0.0.1:$SRV_A"],
     "policy": "api.json", "max-body-bytes": 1024},
    {"name": "raw", "listen": "127.0.0.1:$RAW", "servers": ["127.0.0.1:$SRV_B"],
     "policy": "raw.json", "mode": "tcp"},
    {"name": "bad", "listen": "127.0.0.1:$BAD", "servers": ["127.0.0.1:$SRV_C"],
     "policy": "bad.json", "mode": "http"},
    {"listen": "127.0.0.1:$API2", "servers": ["127.0.0.1:$SRV_A"], "policy": "api2.json",
     "max-body-bytes": "0"}
  ]
}
JSON
(cd / && exec "$CG_BIN/ccgate-client" --config "$CFG/client.json") >"$T/client.log" 2>&1 &
PIDS+=("$!")
CLI_PID=$!
for n in api raw bad "127.0.0.1:$API2"; do wait_log "$T/client.log" "listening addr=.* forward=$n "; done
pass "one client, four forwards listening"

# Each forward on its own.
curl -fsS --max-time 10 "http://127.0.0.1:$API/v1/models" >/dev/null || fail "api: request"
curl -fsS --max-time 10 "http://127.0.0.1:$API2/v1/models" >/dev/null || fail "api2: request"
timeout 30 python3 "$PEER" tcp-client "$RAW" E >/dev/null || fail "raw: TCP round trip"
code=$(curl -sS --max-time 10 -o "$T/bad.json" -w '%{http_code}' "http://127.0.0.1:$BAD/v1/models")
[ "$code" = 502 ] || fail "bad: expected 502, got $code"
grep -q 'snp.measurement' "$T/bad.json" || fail "bad: the answer does not name the check"
grep -q "attest.failed id=[0-9]* forward=bad .*check=snp.measurement" "$T/client.log" ||
    fail "the failed appraisal's log line does not name the forward"
pass "http, tcp and refusing forwards each behave on their own"

# Limits per forward: api's body limit is 1 KiB, api2's none (it overrides the default).
head -c 2048 /dev/zero >"$T/body"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' --data-binary @"$T/body" \
    "http://127.0.0.1:$API/echo")
[ "$code" = 413 ] || fail "api: a 2 KiB body: expected 413, got $code"
curl -fsS --max-time 10 -o /dev/null --data-binary @"$T/body" "http://127.0.0.1:$API2/echo" ||
    fail "api2: a 2 KiB body was refused"
pass "limits per forward (max-body-bytes)"

# /verification on each listener names that forward's server.
verification() {
    curl -sS --max-time 10 -o "$T/v.json" -w '%{http_code}' \
        "http://127.0.0.1:$1/.well-known/ccgate/verification"
}
for pair in "$API:$SRV_A:200:true" "$API2:$SRV_A:200:true" "$BAD:$SRV_C:503:false"; do
    IFS=: read -r port srv want verified <<<"$pair"
    code=$(verification "$port")
    [ "$code" = "$want" ] || fail "verification on $port: expected $want, got $code"
    python3 - "$T/v.json" "127.0.0.1:$srv" "$verified" <<'PY' || fail "verification on $port"
import json, sys
v = json.load(open(sys.argv[1]))
assert v["server"] == sys.argv[2], v
assert str(v["verified"]).lower() == sys.argv[3], v
if v["verified"] is False:
    assert v["last_failure"]["check"] == "snp.measurement", v
PY
done
pass "/verification per forward listener"

# /readyz: 503 naming the forward that is not ready (and only it), with the reason.
code=$(curl -sS --max-time 10 -o "$T/ready.txt" -w '%{http_code}' "http://127.0.0.1:$ADMIN/readyz")
[ "$code" = 503 ] || fail "readyz with a refusing forward: expected 503, got $code"
grep -q "^forward bad: not ready: .*check=snp.measurement" "$T/ready.txt" ||
    fail "readyz does not say which forward is not ready: $(cat "$T/ready.txt")"
! grep -Eq "forward (api|raw|127)" "$T/ready.txt" ||
    fail "readyz names a ready forward: $(cat "$T/ready.txt")"
pass "readyz names the forward that is not ready and why"

# /metrics: every family once, with HELP and TYPE; promtool finds nothing; each sample
# labelled with its forward (the default name is the listen address).
curl -fsS "http://127.0.0.1:$ADMIN/metrics" >"$T/metrics.txt" || fail "GET /metrics"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 ||
    fail "promtool: $(cat "$T/promtool.out")"
[ ! -s "$T/promtool.out" ] || fail "promtool findings: $(cat "$T/promtool.out")"
dups=$(grep '^# TYPE' "$T/metrics.txt" | sort | uniq -d)
[ -z "$dups" ] || fail "families repeated: $dups"
unlabelled=$(grep -E '^ccgate_(client|attestation)_' "$T/metrics.txt" | grep -v 'forward="' || true)
[ -z "$unlabelled" ] || fail "samples without a forward label: $unlabelled"
M="http://127.0.0.1:$ADMIN"
[ "$(metric "$M" 'ccgate_client_requests_total{forward="api"}')" -ge 2 ] || fail "api requests"
[ "$(metric "$M" "ccgate_client_requests_total{forward=\"127.0.0.1:$API2\"}")" -ge 2 ] ||
    fail "api2 requests (default name)"
[ "$(metric "$M" 'ccgate_client_connections_total{forward="raw"}')" -ge 1 ] || fail "raw conns"
[ "$(metric "$M" 'ccgate_client_responses_total{forward="bad",class="5xx"}')" -ge 1 ] ||
    fail "bad: the 502 is not counted"
[ "$(metric "$M" 'ccgate_client_responses_total{forward="api",class="5xx"}')" = 0 ] ||
    fail "api: another forward's 502 counted here"
[ "$(metric "$M" 'ccgate_attestation_verifications_total{forward="bad",result="failed",check="snp.measurement"}')" -ge 1 ] ||
    fail "bad: the failed appraisal is not counted"
! grep -q 'forward="api",result="failed"' "$T/metrics.txt" || fail "api: counted a failure"
[ "$(metric "$M" 'ccgate_client_ready{forward="api"}')" = 1 ] || fail "api not ready in metrics"
[ "$(metric "$M" 'ccgate_client_ready{forward="bad"}')" = 0 ] || fail "bad ready in metrics"
[ "$(metric "$M" 'ccgate_client_upstream_response_seconds_count{forward="api"}')" -ge 1 ] ||
    fail "api: latency histogram"
pass "metrics: one family each, promtool clean, forward labels"

# SIGHUP reloads each forward's policy: bad's now accepts its server, api's no longer loads
# (api keeps its current policy and goes on working).
write_policy "$CFG/bad.json"
echo 'not json' >"$CFG/api.json"
kill -HUP "$CLI_PID"
wait_log "$T/client.log" "reload forward=bad "
wait_log "$T/client.log" "reload.failed forward=api "
grep -q "reload forward=raw " "$T/client.log" || fail "raw's policy was not reloaded"
curl -fsS --max-time 10 "http://127.0.0.1:$BAD/v1/models" >/dev/null ||
    fail "bad: still refused after its policy was reloaded"
curl -fsS --max-time 10 "http://127.0.0.1:$API/v1/models" >/dev/null ||
    fail "api: broken by its policy that did not load"
code=$(curl -sS --max-time 10 -o "$T/ready.txt" -w '%{http_code}' "http://127.0.0.1:$ADMIN/readyz")
[ "$code" = 200 ] || fail "readyz after the reload: $code $(cat "$T/ready.txt")"
pass "SIGHUP reloads per forward; a policy that fails to load leaves that forward's"

kill -TERM "$CLI_PID"
wait_exit "$CLI_PID"
[ "$EXIT_RC" = 0 ] || fail "client exit status $EXIT_RC after SIGTERM"
grep -q "stopped clean=1" "$T/client.log" || fail "the client did not stop cleanly"
pass "SIGTERM drains every forward, exit 0"

# Config errors: exit 2 and a message naming the forward and what is wrong.
write_policy "$CFG/api.json"
fw() { # fw NAME LISTEN_PORT [EXTRA_JSON]: one forward object
    printf '{"name": "%s", "listen": "127.0.0.1:%s", "servers": ["127.0.0.1:%s"], "policy": "api.json"%s}' \
        "$1" "$2" "$SRV_A" "${3:+, $3}"
}
P1=$(free_port) P2=$(free_port)
config_error() { # config_error JSON EXPECTED_TEXT
    printf '%s\n' "$1" >"$CFG/bad-config.json"
    local rc=0
    timeout 20 "$CG_BIN/ccgate-client" --config "$CFG/bad-config.json" >"$T/err.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] || fail "config $1: expected exit 2, got $rc: $(cat "$T/err.log")"
    grep -qF -- "$2" "$T/err.log" || fail "config $1: error lacks '$2': $(cat "$T/err.log")"
}
config_error "{\"forwards\": [$(fw a "$P1" '"bogus": 1')]}" "forwards[0] (a): unknown key 'bogus'"
config_error "{\"forwards\": [$(fw a "$P1"), $(fw b "$P2" '"server": "x:1"')]}" \
    "forwards[1] (b): unknown key 'server' (the list is \"servers\")"
config_error "{\"forwards\": [$(fw a "$P1"), $(fw b "$P1")]}" \
    "forwards[1] (b): listen 127.0.0.1:$P1 is also forwards[0]'s"
config_error "{\"forwards\": [$(fw a "$P1"), $(fw a "$P2")]}" "forwards[1] (a): name 'a' is also"
config_error "{\"forwards\": [{\"servers\": [\"127.0.0.1:1\"], \"policy\": \"api.json\"}]}" \
    "forwards[0]: listen: required"
config_error "{\"forwards\": [{\"listen\": \"127.0.0.1:$P1\", \"policy\": \"api.json\"}]}" \
    "forwards[0]: servers: required"
config_error "{\"forwards\": [{\"listen\": \"127.0.0.1:$P1\", \"servers\": [\"127.0.0.1:1\"]}]}" \
    "forwards[0]: policy: required"
config_error "{\"forwards\": [{\"name\": \"e\", \"listen\": \"127.0.0.1:$P1\", \"servers\": [], \"policy\": \"api.json\"}]}" \
    "forwards[0] (e): servers: expected a non-empty array of HOST:PORT strings"
config_error "{\"forwards\": [{\"name\": \"e\", \"listen\": \"127.0.0.1:$P1\", \"servers\": \"127.0.0.1:1\", \"policy\": \"api.json\"}]}" \
    "forwards[0] (e): servers: expected a non-empty array"
config_error "{\"listen\": \"127.0.0.1:$P2\", \"forwards\": [$(fw a "$P1")]}" \
    "a forwards list and --listen (top-level \"listen\") exclude each other"
config_error "{\"server\": \"127.0.0.1:1\", \"forwards\": [$(fw a "$P1")]}" \
    "a forwards list and --server (top-level \"server\") exclude each other: set servers"
config_error "{\"forwards\": []}" "forwards: expected a non-empty array of forward objects"
config_error "{\"forwards\": [1]}" "forwards[0]: expected an object"
config_error "{\"forwards\": [$(fw a "$P1" '"mode": "udp"')]}" \
    "forwards[0] (a): mode: expected http or tcp, got 'udp'"
config_error "{\"forwards\": [$(fw a "$P1" '"pool-max": "lots"')]}" \
    "forwards[0] (a): pool-max: expected an integer from 0 to 100000, got 'lots'"
config_error "{\"forwards\": [$(fw a "$P1" '"pool-max": -1')]}" \
    "forwards[0] (a): pool-max: expected a non-negative integer"
config_error "{\"forwards\": [$(fw 'a b' "$P1")]}" "forwards[0] (a b): name: expected 1 to 64"
config_error "{\"forwards\": [{\"name\": \"a\", \"listen\": 8080, \"servers\": [\"127.0.0.1:1\"], \"policy\": \"api.json\"}]}" \
    "forwards[0] (a): listen: expected a string"
config_error "{\"forwards\": [$(fw a "$P1"), {\"name\": \"b\", \"listen\": \"127.0.0.1:$P2\", \"servers\": [\"127.0.0.1:1\"], \"policy\": \"missing.json\"}]}" \
    "forwards[1] (b): policy $CFG/missing.json"
config_error "{\"forwards\": [{\"name\": \"two\", \"listen\": \"127.0.0.1:$P1\", \"servers\": [\"127.0.0.1:1\", \"127.0.0.1:1\"], \"policy\": \"api.json\"}]}" \
    "forwards[0] (two): servers: server '127.0.0.1:1' is listed twice"
config_error "{\"forwards\": [$(fw a "$P1")], \"bogus\": 1}" "unknown key 'bogus'"
pass "config errors name the forward and the key"

# The list may come from --forwards (its relative paths are then the working directory's);
# JSON logs carry the forward as a top-level field.
(cd "$CFG" && exec "$CG_BIN/ccgate-client" --log-format json --forwards \
    "[{\"name\": \"j\", \"listen\": \"127.0.0.1:$P1\", \"servers\": [\"127.0.0.1:$SRV_A\"], \"policy\": \"api.json\"}]") \
    >"$T/client-json.log" 2>&1 &
PIDS+=("$!")
JSON_PID=$!
wait_log "$T/client-json.log" '"event":"listening"'
grep '"event":"listening"' "$T/client-json.log" | grep -q '"forward":"j"' ||
    fail "JSON log without the forward field: $(cat "$T/client-json.log")"
curl -fsS --max-time 10 "http://127.0.0.1:$P1/v1/models" >/dev/null || fail "--forwards: request"
kill -TERM "$JSON_PID"
wait_exit "$JSON_PID"
pass "--forwards on the command line; JSON logs carry \"forward\""

# Repeated single-valued flags are refused, for every binary that parses options.
repeated() { # repeated EXPECTED_TEXT CMD...
    local want=$1 rc=0
    shift
    timeout 20 "$@" >"$T/err.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] || fail "$*: expected exit 2, got $rc: $(cat "$T/err.log")"
    grep -qF -- "$want" "$T/err.log" || fail "$*: error lacks '$want': $(cat "$T/err.log")"
}
repeated "flag '--listen' given more than once" "$CG_BIN/ccgate-client" --listen "127.0.0.1:$P1" \
    --server "127.0.0.1:$SRV_A" --policy "$CFG/api.json" --listen "127.0.0.1:$P2"
repeated "flag '--policy' given more than once" "$CG_BIN/ccgate-client" --listen "127.0.0.1:$P1" \
    --server "127.0.0.1:$SRV_A" --policy "$CFG/api.json" --policy "$CFG/bad.json"
repeated "--server: server '127.0.0.1:$SRV_A' is listed twice" "$CG_BIN/ccgate-client" \
    --listen "127.0.0.1:$P1" --server "127.0.0.1:$SRV_A" --server "127.0.0.1:$SRV_A" \
    --policy "$CFG/api.json"
repeated "flag '--upstream' given more than once" "$CG_BIN/ccgate-server" --upstream a:1 \
    --upstream b:2
repeated "flag '--listen' given more than once" "$CG_BIN/ccgate-kbs" --listen a:1 --listen=b:2
repeated "flag '--listen' given more than once" "$CG_BIN/ccgate-worker" --listen a:1 --listen b:2
repeated "flag '--server' given more than once" "$CG_BIN/ccgate" policy from-evidence \
    --server a:1 --server b:2
pass "repeated flags refused (client, server, kbs, worker, ccgate)"
