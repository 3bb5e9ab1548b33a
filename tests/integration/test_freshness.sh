#!/usr/bin/env bash
# Freshness with real binaries: a genuine sim certificate made for another client's nonce, or
# too old for max-age mode, is refused; a recent one is accepted in max-age mode. The
# certificates are minted on the sim TEE (tests/tools/ratls_mint.c) and served by openssl.
source "$(dirname "$0")/lib.sh"

sim_init
SRV_PORT=$(free_port)

# serve NAME [random-nonce|none] [IAT_OFFSET]: openssl s_server with a minted certificate.
serve() {
    local name=$1
    shift
    "$CG_BIN/ratls-mint" "$STATE" "$CG_BIN/ccgate-server" "$T/$name.crt" "$T/$name.key" "$@" ||
        fail "ratls-mint"
    start "$name" openssl s_server -accept "127.0.0.1:$SRV_PORT" -cert "$T/$name.crt" \
        -key "$T/$name.key" -tls1_3 -alpn http/1.1 -www
    SERVE_PID=$LAST_PID
    wait_log "$T/$name.log" "ACCEPT"
}

expect_502() { # POLICY NAME CHECK
    start_client "$1" "$2"
    code=$(curl -sS --max-time 10 -o "$T/$2.json" -w '%{http_code}' "http://127.0.0.1:$CLI_PORT/")
    [ "$code" = 502 ] || fail "$2: expected 502, got $code"
    grep -q "\"check\": \"$3\"" "$T/$2.json" || fail "$2: expected check $3: $(cat "$T/$2.json")"
    kill "$CLI_PID"
}

write_policy "$T/nonce.json"
sed 's/"mode": "nonce"/"mode": "max-age"/' "$T/nonce.json" >"$T/maxage.json"

# A certificate whose claims carry some other client's nonce.
serve other-nonce random-nonce
expect_502 "$T/nonce.json" client-nonce freshness.nonce
pass "certificate made for another nonce refused"

# The same certificate is no good in max-age mode either once it is old.
kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
serve old none -3600
expect_502 "$T/maxage.json" client-old freshness.age
pass "certificate older than max_age_s refused"

# A recent periodic certificate is what max-age mode accepts.
kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
serve recent none 0
start_client "$T/maxage.json" client-recent
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CLI_PORT/")
[ "$code" = 200 ] || fail "max-age mode with a recent certificate: expected 200, got $code"
pass "recent certificate accepted in max-age mode"
