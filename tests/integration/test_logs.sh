#!/usr/bin/env bash
# --log-format json: every line the worker, the server and the client write is one JSON
# object with ts, level, prog and event, and key=value data as top-level fields (no logfmt
# string inside "msg"); the worker announces readiness as the worker.listen event.
source "$(dirname "$0")/lib.sh"

# check_json FILE: every line a JSON object with the four fields and no "k=v" msg.
check_json() {
    python3 - "$1" <<'PY'
import json, re, sys
n = 0
for line in open(sys.argv[1]):
    n += 1
    o = json.loads(line)
    for k in ("ts", "level", "prog", "event"):
        assert isinstance(o.get(k), str), (k, line)
    assert not re.match(r"^[a-z_]+=", o.get("msg", "")), ("logfmt inside msg", line)
assert n > 0, "no lines"
PY
}

# The worker: JSON from the first line; the listen event carries the address.
"$CG_BIN/ccgate-worker" --listen 127.0.0.1:0 --model builtin:tiny --threads 1 --ctx 64 \
    --log-format json 2>"$T/worker.json" & PIDS+=($!)
wpid=$!
wait_log "$T/worker.json" '"event":"worker.listen"' 30
waddr=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o["event"] == "worker.listen": print(o["addr"])' "$T/worker.json")
curl -sf "http://$waddr/health" >/dev/null || fail "worker /health at $waddr"
kill -TERM $wpid
wait_exit $wpid
check_json "$T/worker.json" || fail "worker log: $(head -5 "$T/worker.json")"
grep -q '"event":"worker.model".*"layers":[0-9]' "$T/worker.json" || fail "worker.model fields"
grep -q 'listening on' "$T/worker.json" && fail "a plain-text line in JSON mode"
pass "worker logs JSON, fields at the top"

# The pair, through a request and a failed appraisal.
start_upstream
sim_init
write_policy "$T/policy.json"
write_policy "$T/wrong.json" "$(printf '%096d' 0)"
start_server server --log-format json --log-level debug
start_client "$T/policy.json" client --log-format json --log-level debug
curl -sf "http://127.0.0.1:$CLI_PORT/v1/models" >/dev/null || fail "request through the pair"
start_client "$T/wrong.json" client2 --log-format json
curl -s "http://127.0.0.1:$CLI_PORT/v1/models" >/dev/null || true
kill -TERM "$SRV_PID"
wait_exit "$SRV_PID"
for f in server client client2; do
    check_json "$T/$f.log" || fail "$f log: $(head -5 "$T/$f.log")"
done
# has_event FILE EVENT FIELD TYPE: some line of FILE is EVENT with FIELD a top-level TYPE.
has_event() {
    python3 - "$@" <<'PY'
import json, sys
path, event, field, kind = sys.argv[1:]
want = {"int": int, "str": str}[kind]
assert any(o["event"] == event and isinstance(o.get(field), want)
           for o in map(json.loads, open(path))), (event, field)
PY
}
has_event "$T/server.log" conn.close id int && has_event "$T/server.log" conn.close reason str ||
    fail "server conn.close fields: $(grep conn.close "$T/server.log" | head -2)"
grep -q '"event":"attest.failed".*"check":"snp.measurement"' "$T/client2.log" ||
    fail "client attest.failed fields: $(grep attest "$T/client2.log" | head -2)"
pass "server and client log JSON, fields at the top"
