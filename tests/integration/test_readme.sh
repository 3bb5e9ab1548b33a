#!/usr/bin/env bash
# README.md's "Running it yourself": its first sh block runs as a script, as it is, and ends
# by printing the verification document. Only `make build` is stood in for (the binaries
# under test are already built: a `make` on PATH that does nothing, and build/release/bin
# pointing at them). The fixed ports and /tmp/cc of the block live in a network, mount and
# PID namespace of their own when unshare allows, so nothing else on the machine is touched
# and every process the block leaves running ends with it.
source "$(dirname "$0")/lib.sh"

W="$T/work"
mkdir -p "$W/shim" "$W/build/release"
ln -s "$CG_BIN" "$W/build/release/bin"
printf '#!/bin/sh\necho "make $*: using the binaries under test"\n' >"$W/shim/make"
chmod +x "$W/shim/make"
awk '/^## Running it yourself/ {s = 1} s && /^```sh$/ {b = 1; next} b && /^```$/ {exit} b' \
    "$CG_SOURCE_DIR/README.md" >"$W/block.sh"
[ -s "$W/block.sh" ] || fail "no sh block under 'Running it yourself' in README.md"
grep -q "from-evidence" "$W/block.sh" || fail "the block does not make a policy: $(cat "$W/block.sh")"

run_block() {
    cd "$W" && PATH="$W/shim:$PATH" timeout 180 sh -e ./block.sh
}
if unshare -rnmpf --mount-proc true 2>/dev/null; then
    export W
    export -f run_block
    # A private /tmp; the work folder (inside the old /tmp) is bound back at the same path.
    unshare -rnmpf --mount-proc bash -c 'ip link set lo up && cd "$W" &&
        mount -t tmpfs tmpfs /tmp && mkdir -p "$W" && mount --no-canonicalize --bind . "$W" && run_block' \
        >"$T/out" 2>"$T/err" ||
        fail "the block failed ($?): $(tail -n 20 "$T/err")"
else
    echo "unshare unavailable: running the block in this namespace (fixed ports 8080, 8443, 9000)"
    (run_block) >"$T/out" 2>"$T/err" & PIDS+=($!)
    wait "${PIDS[-1]}" || fail "the block failed: $(tail -n 20 "$T/err")"
    pkill -P $$ 2>/dev/null || true
fi

grep -q '^data: ' "$T/out" || fail "no streamed completion: $(head -c 600 "$T/out")"
# The output ends with the verification document: verified, by the sim TEE.
python3 - "$T/out" <<'PY' || fail "the output does not end with the verification document: $(tail -c 600 "$T/out")"
import json, sys
text = open(sys.argv[1]).read()
start = text.rindex("\n{") + 1
doc, end = json.JSONDecoder().raw_decode(text[start:])
assert text[start + end:].strip() == "", "more output after the document"
assert doc["verified"] is True, doc
assert doc["tee"] == "sim", doc
PY
pass "README block runs as a script and ends with the verification document"
