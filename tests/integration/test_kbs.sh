#!/usr/bin/env bash
# ccgate-kbs against an independent RCAR client (Python + python3-jwcrypto) on the simulated
# TEE: grants with EC and RSA TEE keys (cookie and bearer token), a denial naming
# snp.measurement, replayed nonces and reused sessions refused, `ccgate unseal --kbs` with the
# broker's model minimum, and the audit log: intact, then edited and caught at that line.
source "$(dirname "$0")/lib.sh"
PY=${CG_PYTHON:-/usr/bin/python3}
"$PY" -c 'import jwcrypto' || fail "python3-jwcrypto is missing (scripts/install-deps.sh)"
cg=$CG_BIN/ccgate
shm=$(mktemp -d /dev/shm/ccgate-kbs.XXXXXX)
trap 'rc=$?; rm -rf "$shm"; set +e; (exit $rc); cleanup' EXIT

root=$($cg sim-init --state-dir "$T/sim" 2>/dev/null)
head -c 10000 /dev/urandom >"$T/model"
$cg seal --in "$T/model" --out "$T/model.v1" --key-out "$T/key.jwk" --name tiny --version 1 >/dev/null
$cg seal --in "$T/model" --out "$T/model.v2" --key "$T/key.jwk" --name tiny --version 2 >/dev/null
cat >"$T/allow.json" <<JSON
{"sim": {"allow": true, "root_sha256": "$root"}, "model": {"min_version": 2}}
JSON
other=$(printf '%096d' 0)
cat >"$T/deny.json" <<JSON
{"sim": {"allow": true, "root_sha256": "$root"}, "snp": {"measurements": ["$other"]}}
JSON
echo '{"snp": {}}' >"$T/snp.json"
echo '{"tdx": {"allow_debug": true}}' >"$T/tdx.json"
cat >"$T/kbs.json" <<JSON
{"resources": {"models/key/tiny": {"file": "key.jwk", "policy": "allow.json"},
               "models/key/other": {"file": "key.jwk", "policy": "deny.json"},
               "models/key/snp": {"file": "key.jwk", "policy": "snp.json"},
               "models/key/tdx": {"file": "key.jwk", "policy": "tdx.json"}},
 "audit_log": "audit.log"}
JSON
port=$(free_port)
"$CG_BIN/ccgate-kbs" --listen 127.0.0.1:$port --config "$T/kbs.json" 2>"$T/kbs.log" &
PIDS+=($!)
wait_log "$T/kbs.log" listening
url=http://127.0.0.1:$port
client() { "$PY" "$CG_SOURCE_DIR/tests/integration/rcar_client.py" "$url" "$@" \
    "$CG_BIN/sim-evidence" "$T/sim" "$CG_BIN/sim-evidence"; }
field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k] if not isinstance(d,list) else d[int(k)]
print(d if not isinstance(d,(dict,list)) else json.dumps(d))' "$@"; }

# Grants: EC and RSA TEE keys; the released key carries the policy's model minimum.
for kty in EC RSA; do
    client models/key/tiny $kty >"$T/$kty.json"
    [ "$(field "$T/$kty.json" resource)" = 200 ] || fail "$kty: $(cat "$T/$kty.json")"
    field "$T/$kty.json" plaintext >"$T/released.json"
    "$PY" - "$T/released.json" "$T/key.jwk" <<'PYEOF'
import json, sys
r, k = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert r["k"] == k["k"] and r["ccgate_min_version"] == 2, r
PYEOF
done
[ "$(field "$T/EC.json" protected.alg)" = ECDH-ES+A256KW ] || fail "EC JWE alg"
[ "$(field "$T/RSA.json" protected.alg)" = RSA-OAEP-256 ] || fail "RSA JWE alg"
[ "$(field "$T/EC.json" claims.tee)" = ccgate-sim ] || fail "token claims"
RCAR_BEARER=1 client models/key/tiny EC >"$T/bearer.json"
[ "$(field "$T/bearer.json" resource)" = 200 ] || fail "bearer: $(cat "$T/bearer.json")"
pass "released to EC and RSA TEE keys (cookie and bearer token), with the model minimum"

# Denial: a policy for another measurement.
client models/key/other EC >"$T/deny.out"
[ "$(field "$T/deny.out" resource)" = 403 ] || fail "deny: $(cat "$T/deny.out")"
field "$T/deny.out" resource_body.detail | grep -q '^snp.measurement' || fail "deny detail"
grep '"event":"resource","decision":"denied"' "$T/audit.log" | grep -q '"check":"snp.measurement"' ||
    fail "no audited denial naming snp.measurement"
pass "another measurement: 403 and an audit line naming snp.measurement"

# Genuine SNP evidence in Trustee's encoding (a real AMD report): the chain and signature
# verify, and the binding to this session's nonce and key fails, as it must.
RCAR_TEE=snp RCAR_EVIDENCE_FILE=$CG_VECTORS/trustee/kbs/snp-evidence.json \
    client models/key/snp EC >"$T/snp.out"
[ "$(field "$T/snp.out" attest)" = 401 ] || fail "snp: $(cat "$T/snp.out")"
field "$T/snp.out" attest_body.type | grep -q evidence.report_data || fail "snp: $(cat "$T/snp.out")"
pass "Trustee-encoded SNP evidence: genuine, and refused for its binding (evidence.report_data)"

# A genuine TDX quote in Trustee's encoding (no collateral configured): the quote's own
# signature chain to Intel's root verifies, and the binding fails.
"$PY" -c 'import base64,json,sys; print(json.dumps({"quote": base64.b64encode(open(sys.argv[1],"rb").read()).decode(), "cc_eventlog": None}))' \
    "$CG_VECTORS/trustee/tdx/tdx_quote_6.dat" >"$T/tdx-evidence.json"
RCAR_TEE=tdx RCAR_EVIDENCE_FILE=$T/tdx-evidence.json client models/key/tdx EC >"$T/tdx.out"
[ "$(field "$T/tdx.out" attest)" = 401 ] || fail "tdx: $(cat "$T/tdx.out")"
field "$T/tdx.out" attest_body.type | grep -q evidence.report_data || fail "tdx: $(cat "$T/tdx.out")"
pass "Trustee-encoded TDX quote: genuine, and refused for its binding (evidence.report_data)"

# Replays and reuse.
RCAR_REPEAT=resource client models/key/tiny EC >"$T/reuse.out"
[ "$(field "$T/reuse.out" resource)" = 401 ] || fail "second release on a session"
field "$T/reuse.out" resource_body.type | grep -q session.used || fail "reuse: $(cat "$T/reuse.out")"
RCAR_REPEAT=attest client models/key/tiny EC >"$T/reattest.out"
field "$T/reattest.out" attest_body.type | grep -q session.nonce_used || fail "second attestation"
field "$T/EC.json" attest_request >"$T/old_attest.json"
RCAR_ATTEST_BODY=$T/old_attest.json client models/key/tiny EC >"$T/replay.out"
[ "$(field "$T/replay.out" attest)" = 401 ] || fail "replayed attestation accepted"
field "$T/replay.out" attest_body.type | grep -q rcar.nonce || fail "replay: $(cat "$T/replay.out")"
RCAR_VERSION=0.3.0 client models/key/tiny EC >"$T/ver.out"
[ "$(field "$T/ver.out" auth)" = 401 ] || fail "version 0.3.0 accepted"
client models/key/missing EC >"$T/404.out"
[ "$(field "$T/404.out" resource)" = 404 ] || fail "unknown resource"
pass "replayed nonce, second attestation, second release, other versions, unknown resource"

# ccgate unseal --kbs: the broker's minimum (2) refuses version 1, releases for version 2.
if $cg unseal --in "$T/model.v1" --out "$shm/m1" --kbs "$url" --kbs-resource models/key/tiny \
    --tee sim --state-dir "$T/sim" 2>"$T/e"; then fail "version 1 unsealed under minimum 2"; fi
grep -q sealed.version "$T/e" || fail "rollback: $(cat "$T/e")"
$cg unseal --in "$T/model.v2" --out "$shm/m2" --kbs "$url" --kbs-resource models/key/tiny \
    --tee sim --state-dir "$T/sim" >/dev/null 2>"$T/e" || fail "unseal --kbs: $(cat "$T/e")"
cmp "$T/model" "$shm/m2" || fail "unsealed model differs"
if $cg unseal --in "$T/model.v2" --out "$shm/m3" --kbs "$url" --kbs-resource models/key/other \
    --tee sim --state-dir "$T/sim" 2>"$T/e"; then fail "released under the deny policy"; fi
grep -q 'snp.measurement' "$T/e" || fail "unseal denial: $(cat "$T/e")"
pass "ccgate unseal --kbs: rollback refused, release, denial named"

# The evidence is verified off the event loop, the connection held meanwhile: a client that
# half-closes after its attestation still gets the answer; one that resets leaves the decision
# in its session, and the cookie then fetches the resource (the session is kept safe).
RCAR_ATTEST_HANGUP=fin client models/key/tiny EC >"$T/fin.json"
[ "$(field "$T/fin.json" attest)" = 200 ] || fail "half-closed attest: $(cat "$T/fin.json")"
[ "$(field "$T/fin.json" resource)" = 200 ] || fail "after a half-close: $(cat "$T/fin.json")"
for i in 1 2 3; do
    RCAR_ATTEST_HANGUP=rst client models/key/tiny RSA >"$T/rst.json"
    [ "$(field "$T/rst.json" resource)" = 200 ] || fail "after a reset: $(cat "$T/rst.json")"
done
pass "attestation answered after a half-close; decided and kept in its session after a reset"

# The audit log: intact, then one edited line caught at that line.
$cg audit verify "$T/audit.log" >"$T/v.json" || fail "audit chain broken: $(cat "$T/v.json")"
[ "$(field "$T/v.json" intact)" = True ] || fail "audit summary"
n=$(wc -l <"$T/audit.log")
[ "$(field "$T/v.json" lines)" = "$n" ] || fail "audit line count"
sed -i '5s/"client":"127\./"client":"10./' "$T/audit.log"
if $cg audit verify "$T/audit.log" >"$T/v2.json" 2>"$T/e"; then fail "edited log verified"; fi
grep -q 'line 5' "$T/e" || fail "edited line not named: $(cat "$T/e")"
[ "$(field "$T/v2.json" bad_line)" = 5 ] || fail "bad_line"
pass "audit log of $n lines verifies; an edit of line 5 fails at line 5"

# SIGTERM drains (the connection core and the shared signals): a connection that has sent
# nothing closes at once, a new one is refused, one in the middle of its request still gets
# its answer; then the broker ends by itself, with status 0.
"$PY" - "$port" "${PIDS[0]}" <<'PYEOF' || fail "drain on SIGTERM"
import json, os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
idle = socket.create_connection(("127.0.0.1", port))
busy = socket.create_connection(("127.0.0.1", port))
body = json.dumps({"version": "0.4.0", "tee": "ccgate-sim", "extra-params": {}}).encode()
busy.sendall(b"POST /kbs/v0/auth HTTP/1.1\r\nHost: kbs\r\nContent-Type: application/json\r\n"
             b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
time.sleep(0.5)
os.kill(pid, signal.SIGTERM)
idle.settimeout(5)
assert idle.recv(100) == b"", "the idle connection got bytes"
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    sys.exit("a new connection was accepted while draining")
except ConnectionRefusedError:
    pass
busy.sendall(body[10:])
busy.settimeout(5)
resp = b""
while (d := busy.recv(65536)):
    resp += d
assert resp.startswith(b"HTTP/1.1 200 "), resp[:200]
assert b"kbs-session-id=" in resp, resp[:400]
PYEOF
rc=0; wait "${PIDS[0]}" || rc=$?; PIDS=()
[ $rc = 0 ] || fail "the broker exited with $rc after SIGTERM"
grep -q 'stopped' "$T/kbs.log" || fail "no 'stopped' line: $(tail -5 "$T/kbs.log")"
pass "SIGTERM: idle connection closed, new ones refused, the request in flight answered, exit 0"

# A broker refuses to continue a broken log.
if "$CG_BIN/ccgate-kbs" --listen 127.0.0.1:$port --config "$T/kbs.json" 2>"$T/e"; then
    fail "started on a broken audit log"
fi
grep -q 'breaks the chain' "$T/e" || fail "broken log: $(cat "$T/e")"
pass "no start on a broken audit log"
