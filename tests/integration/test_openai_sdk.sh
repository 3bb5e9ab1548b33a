#!/usr/bin/env bash
# The official OpenAI Node SDK (npm "openai", pinned in tests/integration/sdk/package.json,
# installed by scripts/install-deps.sh) as an app behind ccgate-client: a failed appraisal is
# an APIError the SDK does not retry (one request reached the client), with code = the failed
# check; an unreachable server is retried as the SDK retries (three requests); a good pair
# answers, with the request id in the response.
source "$(dirname "$0")/lib.sh"

if ! command -v node >/dev/null; then
    echo "skip: node not found (scripts/install-deps.sh installs nodejs)"
    exit 0
fi
SDK="$CG_SOURCE_DIR/tests/integration/sdk"
[ -d "$SDK/node_modules/openai" ] ||
    fail "the openai npm package is not installed in $SDK: run scripts/install-deps.sh"

# sdk URL OUT: runs the SDK once against URL, its JSON line in OUT.
sdk() {
    timeout 60 node "$SDK/errors.js" "$1" >"$2" || fail "node errors.js: $(cat "$2")"
}
requests() { metric "$1" ccgate_client_requests_total; }

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
write_policy "$T/wrong.json" "$(printf '%096d' 0)"

start_client "$T/policy.json" good
sdk "http://127.0.0.1:$CLI_PORT" "$T/ok.json"
python3 - "$T/ok.json" <<'PY' || fail "good pair: $(cat "$T/ok.json")"
import json, re, sys
o = json.load(open(sys.argv[1]))
assert o["ok"] and o["models"], o
assert re.fullmatch(r"[0-9a-f]{32}", o["request_id"] or ""), o
PY
pass "a good pair: the SDK lists the models; the answer carries a request id"

start_client "$T/wrong.json" wrong
ADM="http://127.0.0.1:$CLI_ADMIN"
before=$(requests "$ADM")
sdk "http://127.0.0.1:$CLI_PORT" "$T/bad.json"
after=$(requests "$ADM")
python3 - "$T/bad.json" <<'PY' || fail "failed appraisal: $(cat "$T/bad.json")"
import json, sys
o = json.load(open(sys.argv[1]))
assert not o["ok"] and o["api_error"] and o["internal_server_error"], o
assert o["status"] == 502 and o["code"] == "snp.measurement", o
assert o["type"] == "ccgate_attestation_error" and o["param"] is None, o
assert o["should_retry"] == "false" and o["request_id"], o
c = o["ccgate"]
assert c["error"] == "attestation_failed" and c["check"] == "snp.measurement", c
assert c["expected"] and c["actual"] and c["server"], c
assert "snp.measurement" in o["message"], o
PY
[ $((after - before)) = 1 ] || fail "failed appraisal: $((after - before)) requests reached the client, expected 1"
pass "failed appraisal: InternalServerError (502), code snp.measurement, one attempt"

# Nothing listens at the server's address: server_unreachable, which the SDK sends again.
DEAD=$(free_port)
CLI_PORT=$(free_port)
CLI_ADMIN=$(free_port)
start dead "$CG_BIN/ccgate-client" --listen "127.0.0.1:$CLI_PORT" --server "127.0.0.1:$DEAD" \
    --policy "$T/policy.json" --admin "127.0.0.1:$CLI_ADMIN" --server-wait-ms 0
wait_log "$T/dead.log" "listening"
ADM="http://127.0.0.1:$CLI_ADMIN"
before=$(requests "$ADM")
sdk "http://127.0.0.1:$CLI_PORT" "$T/dead.json"
after=$(requests "$ADM")
python3 - "$T/dead.json" <<'PY' || fail "unreachable server: $(cat "$T/dead.json")"
import json, sys
o = json.load(open(sys.argv[1]))
assert not o["ok"] and o["api_error"] and o["status"] == 502, o
assert o["code"] == "server.connect" and o["type"] == "ccgate_unavailable", o
assert o["should_retry"] == "true", o
PY
[ $((after - before)) = 3 ] || fail "unreachable server: $((after - before)) requests, expected 3 (two SDK retries)"
pass "unreachable server: code server.connect, retried by the SDK (3 attempts)"
