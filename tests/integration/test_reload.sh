#!/usr/bin/env bash
# SIGHUP reloads the policy: new connections use it, an established connection keeps working,
# a policy that does not load changes nothing. Also: the latency histograms in /metrics, and
# no header value or payload byte in either sidecar's log.
source "$(dirname "$0")/lib.sh"

start_upstream
sim_init
start_server
write_policy "$T/policy.json"
cp "$T/policy.json" "$T/good.json"
write_policy "$T/wrong.json" "$(printf '%096d' 0)"
# At debug, so that the payload check below covers the per-request lines too.
start_client "$T/policy.json" client --log-level debug

python3 - "$CLI_PORT" "$CLI_PID" "$T" <<'PY' || fail "reload"
import http.client, os, shutil, signal, sys, time
port, pid, t = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
log = os.path.join(t, "client.log")

def get(conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("GET", "/bytes/10")
    r = c.getresponse()
    return r.status, r.read()

def reload(src, expect):
    n = open(log).read().count(expect)
    shutil.copy(os.path.join(t, src), os.path.join(t, "policy.json"))
    os.kill(pid, signal.SIGHUP)
    for _ in range(200):
        if open(log).read().count(expect) > n:
            return
        time.sleep(0.05)
    raise SystemExit("no '%s' after SIGHUP" % expect)

held = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
assert get(held)[0] == 200
reload("wrong.json", "info ccgate-client reload ")
st, body = get()
assert st == 502 and b"snp.measurement" in body, (st, body)
assert get(held)[0] == 200, "the established connection was dropped by the reload"
with open(os.path.join(t, "broken.json"), "w") as f:
    f.write("{not json")
reload("broken.json", "reload.failed")
assert get()[0] == 502, "a policy that failed to load replaced the current one"
reload("good.json", "info ccgate-client reload ")
assert get()[0] == 200
PY
pass "SIGHUP: new policy for new connections, established one kept, broken file ignored"

curl -fsS --max-time 10 -o /dev/null -H 'Authorization: Bearer SECRET-TOKEN-4711' \
    -H 'Cookie: session=COOKIE-0815' --data-binary 'PAYLOAD-XYZZY' "http://127.0.0.1:$CLI_PORT/echo" ||
    fail "request with credentials"
if grep -E 'SECRET-TOKEN|COOKIE-0815|PAYLOAD-XYZZY|Bearer' "$T"/client.log "$T"/server.log; then
    fail "a credential or payload reached a log"
fi
grep -q " info ccgate-client request forward=" "$T/client.log" || fail "no access log line"
pass "no header value or payload in the logs (client at --log-level debug)"

ADM="http://127.0.0.1:$CLI_ADMIN"
n=$(metric "$ADM" ccgate_client_upstream_response_seconds_count)
inf=$(metric "$ADM" 'ccgate_client_upstream_response_seconds_bucket{le="+Inf"}')
[ "${n:-0}" -ge 4 ] && [ "$inf" = "$n" ] || fail "response latency histogram: count=$n +Inf=$inf"
v=$(metric "$ADM" ccgate_attestation_verification_seconds_count)
[ "${v:-0}" -ge 2 ] || fail "verification latency histogram: count=$v"
pass "latency histograms: $n responses, $v verifications"
