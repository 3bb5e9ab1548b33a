#!/usr/bin/env bash
# Several servers per forward: the client appraises all three at start (ready before any app
# request), spreads the load, and under load survives one server killed and another replaced
# by a rogue (a sim TEE with another root, which the policy does not accept): no request
# reaches the rogue's upstream, no request is lost (every GET answered 200; a POST in flight
# on a killed server may get a clean 502, or a truncated answer when its answer had begun),
# the killed server is ejected and comes back after its restart, and /verification lists the
# three with their states.
source "$(dirname "$0")/lib.sh"
LOAD="$CG_SOURCE_DIR/tests/integration/load.py"

# upstream NAME: a mock worker of its own; sets UPN (its port).
upstream() {
    UPN=$(free_port)
    start "$1" "$CG_BIN/ccgate-mock-worker" --listen "127.0.0.1:$UPN"
    wait_log "$T/$1.log" listening
}
# server NAME PORT UPSTREAM_PORT STATE_DIR [flags]: a sim ccgate-server; sets SPID.
server() {
    local name=$1 port=$2 up=$3 state=$4
    shift 4
    start "$name" "$CG_BIN/ccgate-server" --listen "127.0.0.1:$port" --upstream "127.0.0.1:$up" \
        --tee sim --state-dir "$state" --admin "127.0.0.1:$(free_port)" --model-query-s 0 "$@"
    SPID=$LAST_PID
    wait_log "$T/$name.log" listening
}
requests() { # UPSTREAM_PORT: requests the upstream answered (its /stats excluded)
    curl -fsS "http://127.0.0.1:$1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'
}
# states: the client's servers as "ADDR=STATE ..." from /verification.
states() {
    curl -sS "http://127.0.0.1:$CLI_PORT/.well-known/ccgate/verification" |
        python3 -c 'import json,sys; print(" ".join("%s=%s" % (s["server"], s["state"]) for s in json.load(sys.stdin)["servers"]))'
}
wait_state() { # ADDR STATE SECONDS
    local i=0
    until [[ " $(states) " == *" $1=$2 "* ]]; do
        i=$((i + 1))
        [ $i -gt $(($3 * 10)) ] && fail "$1 not $2 within $3 s: $(states)"
        sleep 0.1
    done
}

sim_init
"$CG_BIN/ccgate" sim-init --state-dir "$T/rogue" >/dev/null
upstream up1 && U1=$UPN
upstream up2 && U2=$UPN
upstream up3 && U3=$UPN
upstream up-rogue && UR=$UPN
P1=$(free_port) P2=$(free_port) P3=$(free_port)
server s1 "$P1" "$U1" "$STATE" && S1=$SPID
server s2 "$P2" "$U2" "$STATE" && S2=$SPID
server s3 "$P3" "$U3" "$STATE" && S3=$SPID
write_policy "$T/policy.json"

# Three servers, comma-separated and --server repeated. Ready before any app request:
# appraised at start.
SRV_PORT="$P1,127.0.0.1:$P2" start_client "$T/policy.json" client --server "127.0.0.1:$P3" \
    --server-wait-ms 2000 --handshake-timeout-ms 5000
ADM="http://127.0.0.1:$CLI_ADMIN"
wait_ready "$CLI_ADMIN"
for a in "127.0.0.1:$P1" "127.0.0.1:$P2" "127.0.0.1:$P3"; do wait_state "$a" verified 10; done
for u in $U1 $U2 $U3; do
    [ "$(requests "$u")" = 0 ] || fail "an upstream saw a request before any app request"
done
pass "ready at start, before any app request: $(states)"

# The load spreads over the three.
python3 "$LOAD" "$CLI_PORT" 12 2 /slow?ms=10 >"$T/spread.json"
for u in $U1 $U2 $U3; do
    [ "$(requests "$u")" -ge 20 ] || fail "upstream $u got $(requests "$u") requests: not spread"
done
pass "load spread: $(requests "$U1") / $(requests "$U2") / $(requests "$U3") requests"

# Under load: kill -9 s2, then replace s3 by a rogue on its port.
python3 "$LOAD" "$CLI_PORT" 12 6 /slow?ms=20 >"$T/get.json" &
GET_PID=$!
python3 "$LOAD" "$CLI_PORT" 4 6 /echo POST >"$T/post.json" &
POST_PID=$!
sleep 1.5
kill -9 "$S2"
wait "$S2" 2>/dev/null || true
sleep 1
kill -9 "$S3"
wait "$S3" 2>/dev/null || true
server rogue "$P3" "$UR" "$T/rogue" && SR=$SPID
wait "$GET_PID" || fail "GET load failed"
wait "$POST_PID" || fail "POST load failed"
echo "GET: $(cat "$T/get.json")  POST: $(cat "$T/post.json")"
python3 - "$T/get.json" "$T/post.json" <<'PY' || fail "requests lost: $(cat "$T/get.json") $(cat "$T/post.json")"
import json, sys
g, p = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert set(g) == {"200"} and g["200"] > 100, "GETs: %s" % g
assert not set(p) - {"200", "502", "nostatus", "errors"} and p["200"] > 20, "POSTs: %s" % p
# A POST in flight on a killed server cannot be sent again: a clean 502, or, when the answer
# had begun, a truncated answer (its head arrived: IncompleteRead). At most one per server
# killed per load connection.
failed = p.get("502", 0) + p.get("nostatus", 0)
assert failed <= 2 * 4, "more POSTs failed than were in flight on the killed servers: %s" % p
assert all(e.startswith("IncompleteRead") for e in p.get("errors", [])), "POSTs: %s" % p
PY
[ "$(requests "$UR")" = 0 ] || fail "the rogue's upstream saw $(requests "$UR") requests"
pass "kill -9 and a rogue under load: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["200"])' "$T/get.json") GETs all 200, POSTs $(cat "$T/post.json"), rogue untouched"

# /verification lists all three with their states; the rogue's failed check is named.
wait_state "127.0.0.1:$P2" unreachable 5
wait_state "127.0.0.1:$P3" ejected 5
curl -sS -o "$T/ver.json" "http://127.0.0.1:$CLI_PORT/.well-known/ccgate/verification"
python3 - "$T/ver.json" "$P1" "$P2" "$P3" <<'PY' || fail "verification: $(cat "$T/ver.json")"
import json, sys
v = json.load(open(sys.argv[1]))
s = {x["server"]: x for x in v["servers"]}
a1, a2, a3 = ("127.0.0.1:" + p for p in sys.argv[2:5])
assert v["verified"] is True and len(s) == 3, v
assert s[a1]["state"] == "verified" and s[a1]["ready"] and s[a1]["tee"] == "sim", s[a1]
assert s[a2]["state"] == "unreachable" and s[a2]["last_failure"]["check"] == "server.connect", s[a2]
assert s[a3]["state"] == "ejected" and s[a3]["last_failure"]["check"].startswith("sim."), s[a3]
assert s[a2]["ejections"] >= 1 and s[a3]["ejections"] >= 1, v
assert "tee" not in s[a3] and s[a3]["last_appraisal"], s[a3]
PY
for m in "ccgate_client_server_state{server=\"127.0.0.1:$P2\",state=\"unreachable\"}" \
    "ccgate_client_server_state{server=\"127.0.0.1:$P3\",state=\"ejected\"}" \
    "ccgate_client_server_state{server=\"127.0.0.1:$P1\",state=\"verified\"}"; do
    [ "$(metric "$ADM" "$m")" = 1 ] || fail "metric $m: $(metric "$ADM" "$m")"
done
[ "$(metric "$ADM" "ccgate_client_server_ejections_total{server=\"127.0.0.1:$P3\"}")" -ge 1 ] ||
    fail "rogue's ejection not counted"
grep -q "server.ejected.*server=127.0.0.1:$P3" "$T/client.log" || fail "no ejection log line naming the rogue"
pass "verification and metrics: $(states)"

# More load with the rogue still there: it never gets a request.
python3 "$LOAD" "$CLI_PORT" 8 2 /bytes/10 >"$T/more.json"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert set(c) == {"200"}, c' "$T/more.json" ||
    fail "with a rogue in the list: $(cat "$T/more.json")"
[ "$(requests "$UR")" = 0 ] || fail "the rogue's upstream saw a request"
pass "a server that fails appraisal gets no request"

# The killed server comes back: re-appraised in the background, then it gets traffic again.
server s2b "$P2" "$U2" "$STATE"
wait_state "127.0.0.1:$P2" verified 15
before=$(requests "$U2")
python3 "$LOAD" "$CLI_PORT" 8 2 /bytes/10 >"$T/back.json"
[ "$(requests "$U2")" -gt "$before" ] || fail "the restarted server got no traffic"
[ "$(requests "$UR")" = 0 ] || fail "the rogue's upstream saw a request"
pass "restarted server verified again and back in rotation: $(states)"

# Every server failing: the forward answers 502 with the failed check and is not ready.
kill "$CLI_PID"
SRV_PORT="$P3" start_client "$T/policy.json" client-rogue
sleep 0.5
code=$(curl -sS --max-time 10 -o "$T/r.json" -w '%{http_code}' "http://127.0.0.1:$CLI_PORT/bytes/1")
[ "$code" = 502 ] && grep -q '"check": "sim\.' "$T/r.json" || fail "rogue only: $code $(cat "$T/r.json")"
code=$(curl -sS -o "$T/ready.txt" -w '%{http_code}' "http://127.0.0.1:$CLI_ADMIN/readyz")
[ "$code" = 503 ] && grep -q "127.0.0.1:$P3 ejected" "$T/ready.txt" || fail "readyz: $code $(cat "$T/ready.txt")"
[ "$(requests "$UR")" = 0 ] || fail "the rogue's upstream saw a request"
pass "only the rogue: 502 with the check, not ready"

# A config file's "servers", a short max_age_s and no request at all: every server is
# appraised again in the background before its key ages out, so the client stays ready.
kill "$CLI_PID"
sed 's/"max_age_s": 600/"max_age_s": 2/' "$T/policy.json" >"$T/short.json"
CLI_PORT=$(free_port) CLI_ADMIN=$(free_port)
cat >"$T/client.json" <<JSON
{"listen": "127.0.0.1:$CLI_PORT", "servers": ["127.0.0.1:$P1", "127.0.0.1:$P2"],
 "policy": "$T/short.json", "admin": "127.0.0.1:$CLI_ADMIN"}
JSON
start client-idle "$CG_BIN/ccgate-client" --config "$T/client.json"
CLI_PID=$LAST_PID
wait_log "$T/client-idle.log" listening
wait_ready "$CLI_ADMIN"
[ "$(states)" = "127.0.0.1:$P1=verified 127.0.0.1:$P2=verified" ] || fail "config servers: $(states)"
for _ in 1 2 3 4 5 6; do
    sleep 1
    curl -fsS -o /dev/null "http://127.0.0.1:$CLI_ADMIN/readyz" || fail "not ready while idle"
done
ok=$(metric "http://127.0.0.1:$CLI_ADMIN" 'ccgate_attestation_verifications_total{result="ok"}')
[ "$ok" -ge 8 ] || fail "expected background appraisals every 1.5 s per server, got $ok in all"
pass "ready all along while idle past max_age_s: $ok appraisals in the background"

# Start-up refuses a bad list, naming it.
for list in "127.0.0.1:$P1,127.0.0.1:$P1" "127.0.0.1:$P1,,127.0.0.1:$P2" "127.0.0.1:$P1,nohost"; do
    rc=0
    "$CG_BIN/ccgate-client" --listen "127.0.0.1:$(free_port)" --server "$list" \
        --policy "$T/policy.json" 2>"$T/bad.err" || rc=$?
    [ $rc = 2 ] && grep -q -- "--server: " "$T/bad.err" || fail "--server $list: exit $rc $(cat "$T/bad.err")"
done
pass "a server listed twice, an empty or a bad entry: refused at start"

# SIGTERM while a request waits for the appraisal at start: the appraisal finishes, the
# request is answered, then the client exits.
kill "$CLI_PID"
P4=$(free_port)
server slow "$P4" "$U1" "$STATE" --sim-evidence-delay-ms 1500
SRV_PORT="$P4" start_client "$T/policy.json" client-slow
curl -sS -o "$T/slow.txt" -w '%{http_code}' --max-time 20 "http://127.0.0.1:$CLI_PORT/bytes/7" >"$T/slow.code" &
CURL_PID=$!
sleep 0.3
kill -TERM "$CLI_PID"
wait "$CURL_PID" || true
[ "$(cat "$T/slow.code")" = 200 ] && [ "$(wc -c <"$T/slow.txt")" = 7 ] ||
    fail "request waiting for the appraisal during shutdown: $(cat "$T/slow.code") $(cat "$T/slow.txt")"
wait_exit "$CLI_PID" 10
[ "$EXIT_RC" = 0 ] || fail "client exit status $EXIT_RC"
pass "shutdown while a request waits for the appraisal at start: answered, clean exit"
