#!/usr/bin/env bash
# ccgate-kbs over HTTPS (tls_cert/tls_key): `ccgate unseal --kbs https://... --kbs-ca` gets
# the key; a client that does not trust the broker's CA refuses it; curl speaks to it;
# plain HTTP on a non-loopback address is refused at start.
source "$(dirname "$0")/lib.sh"
cg=$CG_BIN/ccgate
shm=$(mktemp -d /dev/shm/ccgate-kbs-tls.XXXXXX)
trap 'rc=$?; rm -rf "$shm"; set +e; (exit $rc); cleanup' EXIT

# A CA and a broker certificate for 127.0.0.1 (made here, never committed).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-ca \
    -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=kbs \
    -keyout "$T/kbs.key" -out "$T/kbs.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/ext"
openssl x509 -req -in "$T/kbs.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
    -extfile "$T/ext" -out "$T/kbs.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other \
    -keyout "$T/other.key" -out "$T/other.pem" 2>/dev/null

root=$($cg sim-init --state-dir "$T/sim" 2>/dev/null)
head -c 5000 /dev/urandom >"$T/model"
$cg seal --in "$T/model" --out "$T/model.sealed" --key-out "$T/key.jwk" >/dev/null
echo "{\"sim\": {\"allow\": true, \"root_sha256\": \"$root\"}}" >"$T/policy.json"
cat >"$T/kbs.json" <<JSON
{"resources": {"m/key/1": {"file": "key.jwk", "policy": "policy.json"}},
 "audit_log": "audit.log", "tls_cert": "kbs.pem", "tls_key": "kbs.key"}
JSON
port=$(free_port)
"$CG_BIN/ccgate-kbs" --listen 127.0.0.1:$port --config "$T/kbs.json" 2>"$T/kbs.log" &
PIDS+=($!)
wait_log "$T/kbs.log" "scheme=https"

curl -sf --cacert "$T/ca.pem" -m 10 https://127.0.0.1:$port/kbs/v0/auth \
    -H 'Content-Type: application/json' \
    --data '{"version":"0.4.0","tee":"ccgate-sim","extra-params":{}}' | grep -q nonce ||
    fail "curl over HTTPS"
$cg unseal --in "$T/model.sealed" --out "$shm/m" --kbs https://127.0.0.1:$port \
    --kbs-resource m/key/1 --kbs-ca "$T/ca.pem" --tee sim --state-dir "$T/sim" \
    >/dev/null 2>"$T/e" || fail "unseal over HTTPS: $(cat "$T/e")"
cmp "$T/model" "$shm/m" || fail "unsealed model differs"
pass "HTTPS: curl and ccgate unseal --kbs-ca get answers"

if $cg unseal --in "$T/model.sealed" --out "$shm/m2" --kbs https://127.0.0.1:$port \
    --kbs-resource m/key/1 --kbs-ca "$T/other.pem" --tee sim --state-dir "$T/sim" 2>"$T/e"; then
    fail "a broker certificate from an untrusted CA was accepted"
fi
grep -q 'TLS handshake' "$T/e" || fail "untrusted CA: $(cat "$T/e")"
pass "a client that does not trust the broker's CA refuses it"

sed 's/, "tls_cert": "kbs.pem", "tls_key": "kbs.key"//' "$T/kbs.json" >"$T/plain.json"
if "$CG_BIN/ccgate-kbs" --listen 0.0.0.0:$(free_port) --config "$T/plain.json" 2>"$T/e"; then
    fail "plain HTTP on 0.0.0.0 started"
fi
grep -q 'plain HTTP only on loopback' "$T/e" || fail "non-loopback: $(cat "$T/e")"
pass "plain HTTP refused on a non-loopback address"
