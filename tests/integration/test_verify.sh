#!/usr/bin/env bash
# `ccgate verify`: vendor bundles and files as published (trustee, go-tdx-guest), Azure's
# shapes (VCEK+ASK+ARK in one file, the HCL report), dcap-qvl collateral JSON, exact sizes,
# RFC 3339 times with offsets, and the command-line errors.
source "$(dirname "$0")/lib.sh"
: "${CG_VECTORS:?CG_VECTORS must point at tests/vectors}"

C="$CG_BIN/ccgate"
S="$CG_VECTORS/trustee/snp"
TD="$CG_VECTORS/trustee/tdx"
AT=2025-06-01T00:00:00Z # inside the VCEK's and the VLEK's validity

# expect STATUS CHECK_OR_EMPTY CMD...: runs CMD, checks the exit status and, for status 1,
# the failed check the JSON verdict names; status 0 must print "verified": true.
expect() {
    local want=$1 check=$2
    shift 2
    local rc=0
    "$@" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "$*: exit $rc, expected $want: $(head -c 400 "$T/out" "$T/err")"
    case $want in
    0) grep -q '"verified": true' "$T/out" || fail "$*: no verified claims" ;;
    1) grep -q "\"check\": \"$check\"" "$T/out" || fail "$*: expected check $check: $(cat "$T/out")" ;;
    esac
}

# SNP, trustee's ASK+ARK+ASVK bundle as it is: the VCEK and VLEK reports verify, the
# tampered one fails its signature (not the certificate count).
expect 0 "" "$C" verify snp "$S/test-report.bin" --vcek "$S/test-vcek.der" \
    --chain "$S/milan_ask_ark_asvk.pem" --at "$AT"
grep -q '"signing_key": "vcek"' "$T/out" || fail "VCEK report: signing key"
expect 0 "" "$C" verify snp "$S/test-vlek-report.bin" --vcek "$S/test-vlek.der" \
    --chain "$S/milan_ask_ark_asvk.pem" --at "$AT"
grep -q '"signing_key": "vlek"' "$T/out" || fail "VLEK report: signing key"
expect 1 snp.signature "$C" verify snp "$S/test-report.TAMPERED_byte42.bin" \
    --vcek "$S/test-vcek.der" --chain "$S/milan_ask_ark_asvk.pem" --at "$AT"
pass "trustee bundles (ASK+ARK+ASVK) as they are"

# --chain is optional: the AMD roots are built in. A chain that holds no issuer of the
# leaf (Genoa's bundle for a Milan VCEK) is refused by name.
expect 0 "" "$C" verify snp "$S/test-report.bin" --vcek "$S/test-vcek.der" --at "$AT"
expect 1 snp.ask "$C" verify snp "$S/test-report.bin" --vcek "$S/test-vcek.der" \
    --chain "$S/genoa_ask_ark_asvk.pem" --at "$AT"
pass "--chain optional; a foreign chain named"

# Azure's vcek.pem: VCEK, ASK and ARK in one PEM file, given as --vcek.
openssl x509 -inform DER -in "$S/test-vcek.der" >"$T/vcek.pem"
awk '/BEGIN/{n++} n<=2' "$S/milan_ask_ark_asvk.pem" >>"$T/vcek.pem"
[ "$(grep -c BEGIN "$T/vcek.pem")" -eq 3 ] || fail "vcek.pem fixture"
expect 0 "" "$C" verify snp "$S/test-report.bin" --vcek "$T/vcek.pem" --at "$AT"
pass "VCEK+ASK+ARK in one file as --vcek"

# Sizes: one byte short or long is a named rejection (exit 1), not a usage error.
head -c 1183 "$S/test-report.bin" >"$T/short.bin"
{ cat "$S/test-report.bin"; printf '\0'; } >"$T/long.bin"
expect 1 snp.report.size "$C" verify snp "$T/short.bin" --vcek "$S/test-vcek.der" --at "$AT"
expect 1 snp.report.size "$C" verify snp "$T/long.bin" --vcek "$S/test-vcek.der" --at "$AT"
pass "report one byte short or long: snp.report.size"

# Azure HCL report: "HCLA" header, the SNP report at 0x20..0x4BF, IGVM request data with
# the runtime JSON. This report does not vouch for that runtime data: said, not hidden.
hcl() { # hcl REPORT_TYPE OUT
    python3 - "$S/test-report.bin" "$1" "$2" <<'PY'
import struct, sys
report = open(sys.argv[1], "rb").read()
runtime = b'{"keys":[],"vm-configuration":{"secure-boot":true}}'
head = struct.pack("<8I", 0x414C4348, 2, 1184, 2, 0, 0, 0, 0)
data = struct.pack("<5I", 20 + len(runtime), 1, int(sys.argv[2]), 1, len(runtime)) + runtime
open(sys.argv[3], "wb").write(head + report + data + b"\0" * (2600 - 32 - 1184 - len(data)))
PY
}
hcl 2 "$T/hcl.bin"
expect 0 "" "$C" verify snp "$T/hcl.bin" --vcek "$S/test-vcek.der" --at "$AT"
grep -q '"format": "azure-hcl"' "$T/out" || fail "HCL: format not reported"
grep -q '"hcl_runtime_data_bound": false' "$T/out" || fail "HCL: runtime binding not reported"
grep -q ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2 "$T/out" ||
    fail "HCL: not the inner report's claims"
hcl 4 "$T/hcl_tdx.bin"
expect 1 snp.hcl.report_type "$C" verify snp "$T/hcl_tdx.bin" --vcek "$S/test-vcek.der" --at "$AT"
head -c 1000 "$T/hcl.bin" >"$T/hcl_cut.bin"
expect 1 snp.hcl.size "$C" verify snp "$T/hcl_cut.bin" --vcek "$S/test-vcek.der" --at "$AT"
pass "Azure HCL report"

# --at: RFC 3339 with an offset is the same instant as its UTC spelling.
expect 0 "" "$C" verify snp "$S/test-report.bin" --vcek "$S/test-vcek.der" \
    --at 2025-06-01T02:30:00.5+02:30
grep -q '"verified_at": "2025-06-01T00:00:00Z"' "$T/out" || fail "--at offset: $(grep verified_at "$T/out")"
# The VLEK expired 2025-12-10T22:14:21Z: one second before in New York time still verifies.
expect 0 "" "$C" verify snp "$S/test-vlek-report.bin" --vcek "$S/test-vlek.der" \
    --at 2025-12-10T17:14:20-05:00
expect 1 snp.chain.validity "$C" verify snp "$S/test-vlek-report.bin" --vcek "$S/test-vlek.der" \
    --at 2025-12-10T17:14:22-05:00
pass "--at with offsets"

# TDX: dcap-qvl's QuoteCollateralV3 JSON (tcb_info and qe_identity as the signed text, with
# separate signatures) built from trustee's PCS files, byte for byte.
python3 - "$TD" "$T/collateral.json" <<'PY'
import json, sys
d = sys.argv[1]
def split(name, member):
    text = open(f"{d}/{name}").read().strip()
    head = '{"%s":' % member
    body, sig = text[len(head):].rsplit(',"signature":', 1)
    assert text.startswith(head)
    return body, json.loads(sig[:-1])
tcb, tcb_sig = split("tcbInfo.json", "tcbInfo")
qe, qe_sig = split("enclaveIdentity.json", "enclaveIdentity")
chain = open(f"{d}/tcb_signing_chain_2025.pem").read()
json.dump({"tcb_info_issuer_chain": chain, "tcb_info": tcb, "tcb_info_signature": tcb_sig,
           "qe_identity_issuer_chain": chain, "qe_identity": qe,
           "qe_identity_signature": list(bytes.fromhex(qe_sig))}, open(sys.argv[2], "w"))
PY
expect 0 "" "$C" verify tdx "$TD/tdx_quote_6.dat" --collateral "$T/collateral.json" \
    --at 2025-11-01T00:00:00Z
grep -q '"tcb_status": "OutOfDate"' "$T/out" || fail "dcap-qvl collateral: status"
grep -q '"collateral": true' "$T/out" || fail "dcap-qvl collateral: not applied"
sed 's/"tcb_info_signature": "2b/"tcb_info_signature": "2c/' "$T/collateral.json" >"$T/bad.json"
expect 1 tdx.tcb_info.signature "$C" verify tdx "$TD/tdx_quote_6.dat" --collateral "$T/bad.json" \
    --at 2025-11-01T00:00:00Z
pass "dcap-qvl collateral JSON"

# NotEvaluated: a quote without collateral passes only a policy that accepts it by name.
echo '{"tdx": {"allow_debug": true, "require_crls": false}}' >"$T/strict.json"
echo '{"tdx": {"allow_debug": true, "require_crls": false,
  "accepted_tcb_statuses": ["UpToDate", "NotEvaluated"]}}' >"$T/lenient.json"
expect 1 tdx.tcb_status "$C" verify tdx "$TD/tdx_quote_4.dat" --policy "$T/strict.json" \
    --at 2024-06-24T00:00:00Z
expect 0 "" "$C" verify tdx "$TD/tdx_quote_4.dat" --policy "$T/lenient.json" \
    --at 2024-06-24T00:00:00Z
pass "NotEvaluated accepted only when listed"

# Command-line errors name what is wrong; --help is real help with status 0.
for args in "verify --help" "policy --help" "evidence --help" "verify snp --help" \
    "verify tdx --help" "policy from-evidence --help" "evidence inspect --help"; do
    # shellcheck disable=SC2086
    "$C" $args >"$T/help" || fail "ccgate $args: exit $?"
    grep -q "usage:" "$T/help" || fail "ccgate $args: no usage"
done
err2() { # err2 PATTERN ARGS...
    local pattern=$1 rc=0
    shift
    "$C" "$@" >"$T/out" 2>"$T/err" || rc=$?
    [ $rc -eq 2 ] || fail "ccgate $*: exit $rc, expected 2"
    grep -q -- "$pattern" "$T/err" || fail "ccgate $*: '$(cat "$T/err")' lacks '$pattern'"
}
err2 "--vcek CERT is required" verify snp "$S/test-report.bin"
err2 "unknown flag '--colour'" verify snp "$S/test-report.bin" --colour red
err2 "flag '--chain' needs a value" verify snp "$S/test-report.bin" --vcek "$S/test-vcek.der" --chain
err2 "unexpected argument 'extra'" verify tdx "$TD/tdx_quote_4.dat" extra
err2 "--at yesterday" verify tdx "$TD/tdx_quote_4.dat" --at yesterday
err2 "unknown subcommand 'frobnicate'" verify frobnicate
pass "help and errors"
