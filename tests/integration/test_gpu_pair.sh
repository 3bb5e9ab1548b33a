#!/usr/bin/env bash
# The simulated GPU end to end: ccgate-server --gpu sim attaches GPU evidence bound to its
# claims, ccgate-client appraises it with the policy's gpu section; --gpu start-up errors.
source "$(dirname "$0")/lib.sh"

start_upstream
STATE="$T/state"
"$CG_BIN/ccgate" sim-init --state-dir "$STATE" --gpu >"$T/roots"
SIM_ROOT=$(sed -n 1p "$T/roots")
GPU_ROOT=$(sed -n 2p "$T/roots")
[[ "$GPU_ROOT" =~ ^[0-9a-f]{64}$ ]] || fail "sim-init --gpu printed '$(cat "$T/roots")'"

# gpu_policy FILE GPU_JSON: the sim policy plus a gpu section.
gpu_policy() {
    write_policy "$1.base"
    python3 - "$1.base" "$2" >"$1" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["gpu"] = json.loads(sys.argv[2])
print(json.dumps(p))
PY
}

# expect_502 CHECK: a request through the current client fails with that check.
expect_502() {
    local code
    code=$(curl -sS --max-time 10 -o "$T/resp.json" -w '%{http_code}' -X POST -d 'prompt' \
        "http://127.0.0.1:$CLI_PORT/echo")
    [ "$code" = 502 ] || fail "expected 502 ($1), got $code: $(cat "$T/resp.json")"
    python3 - "$T/resp.json" "$1" <<'PY' || fail "expected check $1, got $(cat "$T/resp.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["check"] == sys.argv[2] and r["expected"] and r["actual"], r
PY
}

start_server server --gpu sim
SIM_GPU="{\"allow_sim\": true, \"sim_root_sha256\": \"$GPU_ROOT\""

gpu_policy "$T/ok.json" "$SIM_GPU, \"count\": 1, \"drivers\": [\"999.00.01\"], \"vbios\": [\"96.00.99.00.01\"]}"
start_client "$T/ok.json" client-ok
code=$(curl -sS --max-time 10 -o "$T/ok.out" -w '%{http_code}' -X POST -d 'prompt' "http://127.0.0.1:$CLI_PORT/echo")
[ "$code" = 200 ] || fail "sim GPU with a matching policy: expected 200, got $code: $(cat "$T/ok.out")"
curl -fsS --max-time 10 "http://127.0.0.1:$CLI_PORT/.well-known/ccgate/verification" >"$T/ver.json" ||
    fail "no verification document"
python3 - "$T/ver.json" <<'PY' || fail "/verification lacks the GPU: $(cat "$T/ver.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["verified"] is True, d
g = d["gpus"]
assert len(g) == 1, g
g = g[0]
assert g["arch"] == "hopper" and g["model"] == "ccgate SIM GPU FMC LF (INSECURE)", g
assert g["driver_version"] == "999.00.01" and g["vbios_version"] == "96.00.99.00.01", g
assert g["measurements"] == "match the driver and VBIOS RIMs" and g["ocsp"] == "good", g
assert g["insecure"] is True and "INSECURE" in g["warning"], g
PY
pass "sim TEE + sim GPU: RIMs, OCSP and versions appraised, request forwarded, GPU in /verification"

# policy from-evidence pins what the GPUs showed; the policy it writes is accepted.
"$CG_BIN/ccgate" policy from-evidence --server "127.0.0.1:$SRV_PORT" --allow-sim >"$T/tofu.json" 2>"$T/tofu.err" ||
    fail "policy from-evidence: $(cat "$T/tofu.err")"
python3 - "$T/tofu.json" "$GPU_ROOT" <<'PY' || fail "from-evidence gpu section: $(cat "$T/tofu.json")"
import json, sys
g = json.load(open(sys.argv[1]))["gpu"]
assert g == {"count": 1, "allow_sim": True, "sim_root_sha256": sys.argv[2],
             "drivers": ["999.00.01"], "vbios": ["96.00.99.00.01"],
             "require_rims": True, "ocsp": "require"}, g
PY
start_client "$T/tofu.json" client-tofu
code=$(curl -sS --max-time 10 -o /dev/null -w "%{http_code}" -X POST -d x "http://127.0.0.1:$CLI_PORT/echo")
[ "$code" = 200 ] || fail "the from-evidence policy: expected 200, got $code"
pass "policy from-evidence writes a gpu section that the client accepts"

gpu_policy "$T/driver.json" "$SIM_GPU, \"drivers\": [\"550.90.07\"]}"
start_client "$T/driver.json" client-driver
expect_502 gpu.driver_version
gpu_policy "$T/count.json" "$SIM_GPU, \"count\": 2}"
start_client "$T/count.json" client-count
expect_502 gpu.count
gpu_policy "$T/nosim.json" "{}"
start_client "$T/nosim.json" client-nosim
expect_502 gpu.chain.root
pass "gpu policy: driver allowlist, count, sim GPU not allowed"

# A server without GPU evidence, for a policy that requires it (and one that does not).
SRV_PORT=$(free_port)
SRV_ADMIN=$(free_port)
start_server server-nogpu
gpu_policy "$T/req.json" "$SIM_GPU}"
start_client "$T/req.json" client-req
expect_502 gpu.required
gpu_policy "$T/opt.json" "$SIM_GPU, \"required\": false}"
start_client "$T/opt.json" client-opt
code=$(curl -sS --max-time 10 -o /dev/null -w "%{http_code}" -X POST -d x "http://127.0.0.1:$CLI_PORT/echo")
[ "$code" = 200 ] || fail "gpu.required false without GPU evidence: expected 200, got $code"
pass "GPU evidence required / optional"

# Start-up: --gpu values, sim only with --tee sim, nvml without a driver, auto never sim.
expect_fatal() {
    local what=$1 pattern=$2 rc=0
    shift 2
    "$CG_BIN/ccgate-server" --listen "127.0.0.1:$(free_port)" --upstream "127.0.0.1:$UP_PORT" \
        --state-dir "$STATE" "$@" >/dev/null 2>"$T/err" || rc=$?
    [ $rc -eq 2 ] || fail "$what: exit $rc, expected 2"
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$what: expected one line, got $(cat "$T/err")"
    grep -q -- "$pattern" "$T/err" || fail "$what: '$(cat "$T/err")' lacks '$pattern'"
}
expect_fatal "--gpu banana" "expected none, sim, nvml or auto" --tee sim --gpu banana
expect_fatal "--gpu sim with --tee snp" "needs the simulated TEE" --tee snp --gpu sim
if ! ldconfig -p 2>/dev/null | grep -q libnvidia-ml.so.1; then
    expect_fatal "--gpu nvml without NVML" "libnvidia-ml.so.1" --tee sim --gpu nvml
    SRV_PORT=$(free_port)
    SRV_ADMIN=$(free_port)
    start_server server-auto --gpu auto
    grep -q 'gpu.auto.*picked=none' "$T/server-auto.log" || fail "--gpu auto did not pick none"
    gpu_policy "$T/auto.json" "$SIM_GPU}"
    start_client "$T/auto.json" client-auto
    expect_502 gpu.required
    pass "--gpu nvml without a driver fails in one line; --gpu auto picks none, never sim"
fi
pass "--gpu start-up errors"
