#ifndef KB_EVIDENCE_H
#define KB_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ccgate/evidence.h"

/*
 * The protocol's "tee-evidence.primary_evidence" for a tee name, as ccgate's verifiers
 * take it. Supported: CG_KBC_TEE_SIM ({"report": base64 of the 1184-byte report, "certs":
 * [base64 DER: VCEK, ASK, ARK]}). Returns 0 with out filled (tag and bytes; caller clears),
 * or CG_EEVIDENCE with err naming the member, or CG_ENOTEE for a tee this broker cannot
 * verify (err says so).
 */
int kb_evidence_decode(const char *tee, const json_t *primary, const struct cg_evidence *tdx_col,
                       struct cg_evidence *out, char *err, size_t errlen);

#endif
