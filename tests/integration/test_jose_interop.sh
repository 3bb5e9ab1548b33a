#!/usr/bin/env bash
# ccgate's JOSE against an independent implementation (python3-jwcrypto), both ways:
# JWEs for EC P-256 (ECDH-ES+A256KW) and RSA (RSA-OAEP-256) keys with A256GCM, ES256 JWTs.
source "$(dirname "$0")/lib.sh"
PY=${CG_PYTHON:-/usr/bin/python3}
"$PY" -c 'import jwcrypto' || fail "python3-jwcrypto is missing (scripts/install-deps.sh)"
peer="$PY $CG_SOURCE_DIR/tests/integration/jwcrypto_peer.py"
check=$CG_BIN/jose-check

for kty in EC RSA; do
    $peer genkey $kty "$T/priv.jwk" "$T/pub.jwk"
    # jwcrypto encrypts, ccgate decrypts.
    $peer encrypt "$T/pub.jwk" "from jwcrypto $kty" >"$T/a.jwe"
    [ "$($check decrypt "$T/priv.jwk" "$T/a.jwe")" = "from jwcrypto $kty" ] ||
        fail "ccgate did not decrypt jwcrypto's $kty JWE"
    # ccgate encrypts, jwcrypto decrypts.
    printf 'from ccgate %s' $kty | $check encrypt "$T/pub.jwk" >"$T/b.jwe"
    [ "$($peer decrypt "$T/priv.jwk" "$T/b.jwe")" = "from ccgate $kty" ] ||
        fail "jwcrypto did not decrypt ccgate's $kty JWE"
    # A changed tag is refused by ccgate.
    "$PY" - "$T/a.jwe" >"$T/c.jwe" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
t = j["tag"]
j["tag"] = ("B" if t[0] == "A" else "A") + t[1:]
print(json.dumps(j))
PYEOF
    if $check decrypt "$T/priv.jwk" "$T/c.jwe" 2>"$T/err"; then fail "tampered $kty JWE accepted"; fi
    grep -q 'jwe.tag' "$T/err" || fail "tampered $kty JWE: $(cat "$T/err")"
    pass "JWE $kty both ways"
done

# ES256 JWTs both ways.
$peer genkey EC "$T/priv.jwk" "$T/pub.jwk"
exp=$(($(date +%s) + 300))
tok=$($peer sign "$T/priv.jwk" "{\"exp\":$exp,\"tee\":\"sim\"}")
$check verify "$T/pub.jwk" "$tok" | grep -q '"tee":"sim"' || fail "ccgate did not verify jwcrypto's JWT"
echo "{\"exp\":$exp,\"iss\":\"ccgate-kbs\"}" >"$T/claims.json"
tok=$($check sign "$T/priv.jwk" "$T/claims.json")
$peer verify "$T/pub.jwk" "$tok" | grep -q 'ccgate-kbs' || fail "jwcrypto did not verify ccgate's JWT"
pass "ES256 JWT both ways"
