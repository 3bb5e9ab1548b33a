#!/usr/bin/env bash
# `ccgate seal`, `seal --inspect` and `unseal --key`: round trips (0, 1, chunk-1, chunk,
# chunk+1 bytes and a 1 GiB sparse file), the tmpfs rule, keys never overwritten, tampering
# and rollback refused by the CLI with the check's name.
source "$(dirname "$0")/lib.sh"
cg=$CG_BIN/ccgate
shm=$(mktemp -d /dev/shm/ccgate-seal.XXXXXX)
trap 'rc=$?; rm -rf "$shm"; set +e; (exit $rc); cleanup' EXIT
chunk=4096

n=0
for size in 0 1 $((chunk - 1)) $chunk $((chunk + 1)); do
    n=$((n + 1))
    head -c "$size" /dev/urandom >"$T/p$n"
    $cg seal --in "$T/p$n" --out "$T/s$n" --key-out "$T/k$n.jwk" --name tiny --version 3 \
        --chunk-size $chunk >"$T/h$n.json"
    $cg unseal --in "$T/s$n" --out "$shm/u$n" --key "$T/k$n.jwk" >/dev/null 2>"$T/e"
    cmp "$T/p$n" "$shm/u$n" || fail "round trip of $size bytes"
done
pass "round trips of 0, 1, chunk-1, chunk, chunk+1 bytes"

# inspect needs no key and says what the header holds.
$cg seal --inspect "$T/s5" >"$T/i.json"
python3 - "$T/i.json" "$T/p5" <<'PY'
import hashlib, json, sys
h = json.load(open(sys.argv[1]))
assert h["name"] == "tiny" and h["version"] == 3 and h["chunks"] == 2, h
assert h["plaintext_length"] == 4097 and h["authenticated"] is False, h
assert h["plaintext_sha256"] == hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
PY
[ "$(stat -c %a "$T/k1.jwk")" = 600 ] || fail "key file mode is not 0600"
pass "inspect prints the header; the key file is 0600"

# A key is never overwritten; a second version under the same key.
if $cg seal --in "$T/p2" --out "$T/x" --key-out "$T/k1.jwk" 2>"$T/e"; then fail "key overwritten"; fi
grep -q 'never overwritten' "$T/e" || fail "no reason for refusing the key: $(cat "$T/e")"
$cg seal --in "$T/p5" --out "$T/s5v4" --key "$T/k5.jwk" --version 4 --chunk-size $chunk >/dev/null
$cg unseal --in "$T/s5v4" --out "$shm/v4" --key "$T/k5.jwk" --min-version 4 >/dev/null 2>&1 ||
    fail "version 4 under the same key"
if $cg unseal --in "$T/s5" --out "$shm/v3" --key "$T/k5.jwk" --min-version 4 2>"$T/e"; then
    fail "rollback to version 3 accepted"
fi
grep -q 'sealed.version' "$T/e" || fail "rollback: $(cat "$T/e")"
[ ! -e "$shm/v3" ] || fail "a refused unseal left a file"
pass "keys never overwritten; rollback below --min-version refused"

# Disk-backed output is refused unless forced.
if $cg unseal --in "$T/s2" --out "$T/plain" --key "$T/k2.jwk" 2>"$T/e"; then fail "wrote to disk"; fi
grep -q 'memory-backed' "$T/e" || fail "disk refusal: $(cat "$T/e")"
$cg unseal --in "$T/s2" --out "$T/plain" --key "$T/k2.jwk" --force >/dev/null 2>"$T/e"
grep -q WARNING "$T/e" || fail "no warning with --force"
pass "plaintext only on tmpfs unless --force, with a warning"

# Tampering: a flipped byte in a chunk, a wrong key, truncation.
python3 - "$T/s5" "$T/t1" "$T/t2" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
c = bytearray(b); c[-100] ^= 1; open(sys.argv[2], "wb").write(c)
open(sys.argv[3], "wb").write(b[:-17])
PY
for case in "t1:sealed.chunk:k5" "t2:sealed.length:k5" "s5:sealed.key:k4"; do
    IFS=: read -r f check k <<<"$case"
    if $cg unseal --in "$T/$f" --out "$shm/t" --key "$T/$k.jwk" 2>"$T/e"; then fail "$f accepted"; fi
    grep -q "$check" "$T/e" || fail "$f: expected $check, got $(cat "$T/e")"
    [ ! -e "$shm/t" ] || fail "$f: a refused unseal left plaintext behind"
done
pass "tampered chunk, truncation and wrong key refused by name, nothing left behind"

# 1 GiB sparse file, default chunk size.
truncate -s 1G "$T/big"
$cg seal --in "$T/big" --out "$T/big.sealed" --key-out "$T/big.jwk" --name big >/dev/null
$cg unseal --in "$T/big.sealed" --out "$shm/big" --key "$T/big.jwk" >/dev/null 2>&1 ||
    fail "1 GiB unseal"
cmp "$T/big" "$shm/big" || fail "1 GiB round trip differs"
rm -f "$shm/big" "$T/big.sealed"
pass "1 GiB sparse file round trip"
