#!/usr/bin/env bash
# End to end on the simulated TEE: ccgate-kbs + ccgate-worker with a sealed builtin:tiny.
# A policy for the worker's measurement -> the worker gets the key, decrypts in memory and
# serves; a policy for another measurement -> the worker refuses to start naming
# snp.measurement, and the audit log holds the denial; a model older than the broker's
# minimum -> refused (sealed.version); the audit chain verifies. ccgate-server in front of the
# sealed worker names the model in its attestation; a client's policy pins it.
source "$(dirname "$0")/lib.sh"
cg=$CG_BIN/ccgate
W=$CG_BIN/ccgate-worker

root=$($cg sim-init --state-dir "$T/sim" 2>/dev/null)
"$W" gen-tiny --out "$T/tiny.gguf"
$cg seal --in "$T/tiny.gguf" --out "$T/tiny.v1" --key-out "$T/key.jwk" --name tiny-sealed \
    --version 1 --chunk-size 65536 >/dev/null
$cg seal --in "$T/tiny.gguf" --out "$T/tiny.v3" --key "$T/key.jwk" --name tiny-sealed \
    --version 3 --chunk-size 65536 >/dev/null
# The sim TEE measures the running binary: the worker's SHA-384.
meas=$(sha384sum "$W" | cut -d' ' -f1)
other=$(printf '%096d' 0)
for p in allow:$meas deny:$other; do
    cat >"$T/${p%%:*}.json" <<JSON
{"sim": {"allow": true, "root_sha256": "$root"}, "snp": {"measurements": ["${p#*:}"]},
 "model": {"min_version": 2}}
JSON
done
cat >"$T/kbs.json" <<JSON
{"resources": {"models/tiny/key": {"file": "key.jwk", "policy": "allow.json"},
               "models/tiny/other": {"file": "key.jwk", "policy": "deny.json"}},
 "audit_log": "audit.log"}
JSON
port=$(free_port)
"$CG_BIN/ccgate-kbs" --listen 127.0.0.1:$port --config "$T/kbs.json" 2>"$T/kbs.log" &
PIDS+=($!)
wait_log "$T/kbs.log" listening

# Granted: the worker serves the sealed model.
wport=$(free_port)
"$W" --listen 127.0.0.1:$wport --model "$T/tiny.v3" --kbs http://127.0.0.1:$port \
    --kbs-resource models/tiny/key --tee sim --state-dir "$T/sim" --device cpu 2>"$T/worker.log" &
PIDS+=($!)
wait_log "$T/worker.log" "listening on" 60
grep -q 'worker.sealed name=tiny-sealed version=3 min_version=2' "$T/worker.log" ||
    fail "no sealed-model line"
curl -sf -m 30 "http://127.0.0.1:$wport/v1/models" | grep -q tiny-sealed || fail "/v1/models"
curl -sf -m 60 "http://127.0.0.1:$wport/v1/completions" -H 'Content-Type: application/json' \
    --data '{"model":"tiny-sealed","prompt":"hello","max_tokens":4}' | grep -q '"choices"' ||
    fail "completion from the sealed model"
pass "granted: the worker serves the sealed model (plaintext only in memory)"

# The model in the attestation: ccgate-server asks the worker's /health and puts the sealed
# model into its claims; a client shows it and its policy pins it.
curl -sf -m 10 "http://127.0.0.1:$wport/health" | grep -q '"sealed":{"name":"tiny-sealed","version":3' ||
    fail "/health names no sealed model"
digest=$(sha256sum "$T/tiny.gguf" | cut -d' ' -f1)
STATE="$T/sim" SIM_ROOT=$root UP_PORT=$wport MODEL_QUERY_S=1
start_server server
wait_log "$T/server.log" "model.claim name=tiny-sealed version=3 sha256=$digest"
$cg policy from-evidence --server 127.0.0.1:$SRV_PORT --allow-sim --out "$T/pinned.json" 2>"$T/fe.err" ||
    fail "from-evidence: $(cat "$T/fe.err")"
grep -q "\"model\": {\"name\": \"tiny-sealed\", \"sha256\": \[\"$digest\"\], \"min_version\": 3}" \
    "$T/pinned.json" || fail "from-evidence wrote no model section: $(cat "$T/pinned.json")"
start_client "$T/pinned.json" client
curl -sf -m 60 "http://127.0.0.1:$CLI_PORT/v1/completions" -H 'Content-Type: application/json' \
    --data '{"model":"tiny-sealed","prompt":"hello","max_tokens":2}' | grep -q '"choices"' ||
    fail "completion through the pinned model policy"
v=$(curl -s -m 30 "http://127.0.0.1:$CLI_PORT/.well-known/ccgate/verification")
echo "$v" | grep -q "\"model\": {\"name\": \"tiny-sealed\", \"version\": 3, \"sha256\": \"$digest\"}" ||
    fail "verification names no model: $v"
for bad in sha256 version name; do
    case $bad in
    sha256) sec="\"sha256\": [\"$(printf '%064d' 0)\"]" ;;
    version) sec="\"min_version\": 4" ;;
    name) sec="\"name\": \"tiny-other\"" ;;
    esac
    sed "s/\"model\": {[^}]*}/\"model\": {$sec}/" "$T/pinned.json" >"$T/bad-$bad.json"
    start_client "$T/bad-$bad.json" "client-$bad"
    out=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CLI_PORT/v1/models")
    [ "$out" = 502 ] || fail "model.$bad: status $out"
    curl -s -m 30 "http://127.0.0.1:$CLI_PORT/.well-known/ccgate/verification" |
        grep -q "model.$bad" || fail "model.$bad not named"
done
pass "the sealed model is attested: claims, verification document, policy pin (model.sha256, model.version, model.name refused)"

# Denied: another measurement; the worker refuses to start and says why.
if timeout 60 "$W" --listen 127.0.0.1:$(free_port) --model "$T/tiny.v3" \
    --kbs http://127.0.0.1:$port --kbs-resource models/tiny/other --tee sim \
    --state-dir "$T/sim" --device cpu 2>"$T/denied.log"; then
    fail "the worker started under the deny policy"
fi
grep -q 'snp.measurement' "$T/denied.log" || fail "denial not named: $(tail -3 "$T/denied.log")"
grep '"decision":"denied"' "$T/audit.log" | grep -q '"check":"snp.measurement"' ||
    fail "no audited denial"
pass "denied: the worker refuses naming snp.measurement; the audit log has it"

# Rollback: version 1 under the broker's minimum 2.
if timeout 60 "$W" --listen 127.0.0.1:$(free_port) --model "$T/tiny.v1" \
    --kbs http://127.0.0.1:$port --kbs-resource models/tiny/key --tee sim \
    --state-dir "$T/sim" --device cpu 2>"$T/old.log"; then
    fail "the worker started an old model version"
fi
grep -q 'sealed.version: expected at least 2, got 1' "$T/old.log" || fail "rollback: $(tail -3 "$T/old.log")"
# A sealed model without a broker is refused.
if "$W" --listen 127.0.0.1:$(free_port) --model "$T/tiny.v3" 2>"$T/nokbs.log"; then
    fail "sealed model started without --kbs"
fi
grep -q 'is sealed' "$T/nokbs.log" || fail "no reason without --kbs"
pass "rollback and a missing broker refused"

$cg audit verify "$T/audit.log" >/dev/null || fail "audit chain"
pass "audit chain verifies"
