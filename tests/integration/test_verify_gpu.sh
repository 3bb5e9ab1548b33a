#!/usr/bin/env bash
# `ccgate verify gpu` on the real H100 vectors: verdicts, named failures, exit codes.
source "$(dirname "$0")/lib.sh"

V=${CG_VECTORS:-$CG_SOURCE_DIR/tests/vectors}
NV=$V/nvtrust
TR=$V/trustee/nvidia
SAMPLE_NONCE=931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb
COCO_NONCE=87d8e24ab336adafe228d49e83d745f6dba4ae505372b6a5704820856b343fec

# expect RC CHECK ARGS...: ccgate verify gpu exits RC; for RC 1 the verdict names CHECK.
expect() {
    local want=$1 check=$2 rc=0
    shift 2
    "$CG_BIN/ccgate" verify gpu "$@" >"$T/out.json" 2>"$T/err" || rc=$?
    [ $rc -eq "$want" ] || fail "verify gpu $*: exit $rc, expected $want ($(cat "$T/err"))"
    if [ "$want" -eq 1 ]; then
        python3 - "$T/out.json" "$check" <<'PY' || fail "verify gpu $*: not rejected by $check"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["verified"] is False and d["check"] == sys.argv[2], d
assert d["expected"] and d["actual"], d
PY
    fi
}

# Genuine: both captures, hex and raw, and every measurement equal to trustee's claims.
expect 0 - "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE
python3 - "$T/out.json" "$TR/hopperAttestationReport-claims.txt" <<'PY' || fail "claims differ from trustee's"
import json, sys
got, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert got["verified"] and got["arch"] == "hopper", got
for k in ("driver_version", "vbios_version", "chip_sku", "project", "project_sku", "fwid"):
    assert got[k] == want["config"][k], k
assert got["measurements"] == want["measurements"]
PY
pass "genuine H100 report: claims equal trustee's"
xxd -r -p "$NV/hopperAttestationReport.txt" >"$T/report.bin"
expect 0 - "$T/report.bin" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE
expect 0 - "$TR/hopper_coco_report1.txt" --certs "$TR/hopper_coco_certs1.txt" --nonce $COCO_NONCE
pass "raw bytes; the CoCo capture with a padding byte"

# Tampered and mismatched.
expect 1 gpu.signature "$NV/hopperAttestationReport.TAMPERED_msr2.txt" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE
expect 1 gpu.signature "$TR/hopper_coco_report1.TAMPERED_sig.txt" --certs "$TR/hopper_coco_certs1.txt" --nonce $COCO_NONCE
expect 1 gpu.signature "$NV/hopperAttestationReport.txt" --certs "$TR/hopper_coco_certs1.txt" --nonce $SAMPLE_NONCE
expect 1 gpu.nonce "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt" --nonce 4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e
expect 1 gpu.chain "$NV/hopperAttestationReport.txt" --certs "$TR/hopper_cert_chain_case2.txt" --nonce $SAMPLE_NONCE
expect 1 gpu.chain "$NV/hopperAttestationReport.txt" --certs "$TR/hopper_cert_chain_case3.txt" --nonce $SAMPLE_NONCE
expect 1 gpu.signature "$NV/hopperAttestationReport.txt" --certs "$TR/hopper_cert_chain_case4.txt" --nonce $SAMPLE_NONCE
pass "tampered reports, other GPU's chain, other nonce, broken chains"

# RIMs: nvtrust's test RIMs are signed (checked at a time inside the signer's validity) but
# describe driver 545.00, not this report's 550.90.07.
RIMS=(--driver-rim "$NV/Driver_RIM_test_no_gpu.swidtag" --vbios-rim "$NV/1010_0200_882_96005E0001_test_no_gpu.swidtag")
expect 1 gpu.rim.driver_version "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE "${RIMS[@]}" --at 2024-06-01T00:00:00Z
expect 1 gpu.rim.chain.validity "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE "${RIMS[@]}" --at 2026-01-01T00:00:00Z
sed 's/0e0ee161b59bf124/0e0ee161b59bf125/' "$NV/Driver_RIM_test_no_gpu.swidtag" >"$T/drv.swidtag"
expect 1 gpu.rim.signature "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE --driver-rim "$T/drv.swidtag" --vbios-rim "$NV/1010_0200_882_96005E0001_test_no_gpu.swidtag" --at 2024-06-01T00:00:00Z
mkdir "$T/ocsp"
expect 1 gpu.ocsp.device.missing "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE --ocsp "$T/ocsp"
pass "RIM version, RIM validity, RIM signature, OCSP required without responses"

# Policy: the gpu section applies; an allowlist without this driver rejects.
echo '{"gpu": {"require_rims": false, "ocsp": "off", "drivers": ["580.95.05"]}}' >"$T/p.json"
expect 1 gpu.driver_version "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE --policy "$T/p.json"
echo '{"gpu": {"require_rims": false, "ocsp": "off", "drivers": ["550.90.07"], "vbios": ["96.00.9F.00.01"]}}' >"$T/p.json"
expect 0 - "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE --policy "$T/p.json"
echo '{"gpu": {}}' >"$T/p.json"
expect 1 gpu.ocsp.device.missing "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE --policy "$T/p.json"
pass "policy gpu section"

# Usage errors exit 2.
expect 2 - "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt"
expect 2 - "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt" --nonce 12
expect 2 - "$NV/hopperAttestationReport.txt" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE --driver-rim "$NV/Driver_RIM_test_no_gpu.swidtag"
expect 2 - "$T/missing" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE
echo "zz" >"$T/bad.txt"
expect 2 - "$T/bad.txt" --certs "$NV/hopperCertChain.txt" --nonce $SAMPLE_NONCE
pass "usage errors"
