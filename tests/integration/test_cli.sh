#!/usr/bin/env bash
# Command-line behaviour: --help, --version, exit 2 with one line on bad flags or config.
source "$(dirname "$0")/lib.sh"

for b in ccgate-server ccgate-client ccgate; do
    "$CG_BIN/$b" --help | grep -q "usage:" || fail "$b --help"
    "$CG_BIN/$b" --version | grep -q "0\." || fail "$b --version"
    rc=0
    "$CG_BIN/$b" --no-such-flag 2>"$T/err" || rc=$?
    [ $rc -eq 2 ] || fail "$b with a bad flag exited $rc"
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$b: expected one line of error, got: $(cat "$T/err")"
done
pass "help, version, bad flags"
for b in ccgate-loadgen ratls-mint ccgate-mock-worker ccgate-worker; do
    "$CG_BIN/$b" --version | grep -q "^$b 0\." || fail "$b --version"
done
pass "tools' --version"

expect2() {
    local what=$1 pattern=$2
    shift 2
    local rc=0
    "$@" >/dev/null 2>"$T/err" || rc=$?
    [ $rc -eq 2 ] || fail "$what: exit $rc, expected 2"
    grep -q -- "$pattern" "$T/err" || fail "$what: message '$(cat "$T/err")' lacks '$pattern'"
    pass "$what"
}

expect2 "client with a bad --log-level" "--log-level: expected error, warn, info or debug" \
    "$CG_BIN/ccgate-client" --listen 127.0.0.1:1 --server 127.0.0.1:2 --log-level loud
expect2 "client with a bad --access-log" "--access-log: expected on or off, got 'yes'" \
    "$CG_BIN/ccgate-client" --listen 127.0.0.1:1 --server 127.0.0.1:2 --policy "$T/none.json" \
    --access-log yes
expect2 "worker with a bad --access-log" "--access-log: expected on or off, got 'maybe'" \
    "$CG_BIN/ccgate-worker" --listen 127.0.0.1:0 --model builtin:tiny --access-log maybe
expect2 "server with a bad CCGATE_LOG_LEVEL" "--log-level: expected" \
    env CCGATE_LOG_LEVEL=warning "$CG_BIN/ccgate-server" --listen 127.0.0.1:1 --upstream 127.0.0.1:2
expect2 "--sim-evidence-delay-ms without --tee sim" "--sim-evidence-delay-ms: only with --tee sim" \
    "$CG_BIN/ccgate-server" --listen 127.0.0.1:1 --upstream 127.0.0.1:2 --tee snp \
    --sim-evidence-delay-ms 8
expect2 "client without policy" "policy" "$CG_BIN/ccgate-client" --listen 127.0.0.1:1 --server 127.0.0.1:2
echo '{"sim": {"allow": true, "root_sha256": "00"}}' >"$T/bad.json"
expect2 "client with a bad policy" "root_sha256" "$CG_BIN/ccgate-client" --listen 127.0.0.1:1 \
    --server 127.0.0.1:2 --policy "$T/bad.json"
echo '{"sim": {"allow": true}, "surprise": 1}' >"$T/unknown.json"
expect2 "policy with an unknown key" "surprise" "$CG_BIN/ccgate-client" --listen 127.0.0.1:1 \
    --server 127.0.0.1:2 --policy "$T/unknown.json"
expect2 "client with a bad address" "HOST:PORT" "$CG_BIN/ccgate-client" --listen nonsense \
    --server 127.0.0.1:2 --policy "$T/bad.json"
expect2 "server with a bad tee" "tee" "$CG_BIN/ccgate-server" --listen 127.0.0.1:1 \
    --upstream 127.0.0.1:2 --tee banana --state-dir "$T"
expect2 "server sim without state" "sim-init" "$CG_BIN/ccgate-server" --listen 127.0.0.1:1 \
    --upstream 127.0.0.1:2 --tee sim --state-dir "$T/none"
echo '{"listen": "127.0.0.1:1", "bogus": true}' >"$T/conf.json"
expect2 "config with an unknown key" "bogus" "$CG_BIN/ccgate-server" --config "$T/conf.json"
CCGATE_CONFIG="$T/conf.json" expect2 "CCGATE_CONFIG is read" "bogus" "$CG_BIN/ccgate-server"
# A mistyped variable is a warning naming it (the environment may be shared with the client).
CCGATE_LISTNE=127.0.0.1:1 expect2 "unknown CCGATE_ variable" "var=CCGATE_LISTNE" \
    "$CG_BIN/ccgate-server" --listen 127.0.0.1:1 --upstream 127.0.0.1:2 --tee banana
# The worker takes its options as the sidecars do: flags, CCGATE_* and --config.
CCGATE_MAX_BODY_BYTES=5 expect2 "worker: CCGATE_MAX_BODY_BYTES" "max-body-bytes: expected an integer" \
    "$CG_BIN/ccgate-worker" --listen 127.0.0.1:0 --model builtin:tiny
echo '{"listen": "127.0.0.1:0", "model": "builtin:tiny", "ctx": 1}' >"$T/worker.json"
expect2 "worker: --config" "ctx: expected an integer" "$CG_BIN/ccgate-worker" --config "$T/worker.json"
expect2 "worker: unknown flag" "unknown flag '--max-bodyy'" "$CG_BIN/ccgate-worker" --max-bodyy 1
# A relative policy path in a config is the config folder's, not the working directory's.
mkdir -p "$T/cfgdir"
echo '{"sim": {"allow": true, "root_sha256": "00"}}' >"$T/cfgdir/pol.json"
echo '{"listen": "127.0.0.1:1", "server": "127.0.0.1:2", "policy": "pol.json"}' >"$T/cfgdir/c.json"
(cd / && expect2 "relative policy path in a config" "root_sha256" "$CG_BIN/ccgate-client" \
    --config "$T/cfgdir/c.json")
if [ ! -e /sys/kernel/config/tsm/report ] && [ ! -e /dev/sev-guest ] && [ ! -e /dev/tdx_guest ]; then
    expect2 "tee auto without hardware never falls back to sim" "no TEE found" \
        "$CG_BIN/ccgate-server" --listen 127.0.0.1:1 --upstream 127.0.0.1:2 --tee auto --state-dir "$T"
fi
# Hardware providers pointed at a folder that is no configfs-tsm: refused at start, never sim.
mkdir -p "$T/tsm"
expect2 "tee auto: a configfs root without a provider" "no TEE found" "$CG_BIN/ccgate-server" \
    --listen 127.0.0.1:1 --upstream 127.0.0.1:2 --tee auto --tsm-root "$T/tsm"
expect2 "tee snp: first evidence fails on an entry without a provider" \
    "first evidence from the snp TEE failed" "$CG_BIN/ccgate-server" --listen 127.0.0.1:1 \
    --upstream 127.0.0.1:2 --tee snp --tsm-root "$T/tsm"
[ -z "$(ls -A "$T/tsm")" ] || fail "the provider left an entry behind: $(ls -A "$T/tsm")"
expect2 "tee tdx without configfs-tsm" "no tdx here" "$CG_BIN/ccgate-server" \
    --listen 127.0.0.1:1 --upstream 127.0.0.1:2 --tee tdx --tsm-root "$T/none"

# sim-init is idempotent: the same root twice.
a=$("$CG_BIN/ccgate" sim-init --state-dir "$T/s")
b=$("$CG_BIN/ccgate" sim-init --state-dir "$T/s")
[ "$a" = "$b" ] || fail "sim-init changed the root ($a, $b)"
[ "$(stat -c %a "$T/s")" = 700 ] || fail "state dir mode $(stat -c %a "$T/s")"
pass "sim-init idempotent, state private"

# evidence inspect on a real AMD report.
"$CG_BIN/ccgate" evidence inspect "$CG_VECTORS/go-sev-guest/attestation.bin" >"$T/inspect.json"
grep -q b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01 \
    "$T/inspect.json" || fail "evidence inspect: measurement missing"
pass "evidence inspect"

# --listen on a non-loopback address: a warning that the app side is plaintext. In a network
# namespace of our own, where 0.0.0.0 reaches nothing but its loopback.
if unshare -rn true 2>/dev/null; then
    printf '{"sim": {"allow": true, "root_sha256": "%064d"}}\n' 0 >"$T/any.json"
    unshare -rn sh -c 'ip link set lo up && timeout 3 "$0" --listen 0.0.0.0:8080 \
        --server 127.0.0.1:1 --policy "$1" 2>&1' "$CG_BIN/ccgate-client" "$T/any.json" \
        >"$T/exposed.log" || true
    grep -q "listen.exposed addr=0.0.0.0:8080" "$T/exposed.log" ||
        fail "no warning for a plaintext listener on 0.0.0.0: $(head -3 "$T/exposed.log")"
    pass "--listen 0.0.0.0 warns"
fi

# --sim-evidence-delay-ms (test only): the client's appraisal at start waits for evidence with
# its nonce, which now takes the injected delay longer.
start_upstream
sim_init
start_server server --sim-evidence-delay-ms 600
write_policy "$T/policy.json"
start_client "$T/policy.json"
wait_ready "$CLI_ADMIN"
t=$(metric "http://127.0.0.1:$CLI_ADMIN" ccgate_attestation_verification_seconds_sum)
awk -v t="$t" 'BEGIN {exit !(t >= 0.6)}' || fail "the appraisal took $t s with a 600 ms evidence delay"
curl -fsS -o /dev/null --max-time 20 "http://127.0.0.1:$CLI_PORT/bytes/10" ||
    fail "request through a server with an evidence delay"
pass "--sim-evidence-delay-ms delays the evidence of a nonce handshake ($t s)"
