#ifndef CCGATE_TRUSTEE_H
#define CCGATE_TRUSTEE_H

#include <stddef.h>

#include <jansson.h>

#include "ccgate/evidence.h"

/*
 * SEV-SNP evidence in the JSON encoding of Trustee's SNP verifier (shared/KEYS.md 2):
 *   {"attestation_report": {"version": 3, "guest_svn": 0, "policy": 196608,
 *      "family_id": [16 numbers], ..., "current_tcb": {"fmc": null|n, "bootloader": n,
 *      "tee": n, "snp": n, "microcode": n}, "plat_info": n, "key_info": n, ...,
 *      "current": {"major","minor","build"}, "committed": {...},
 *      "signature": {"r": [72 numbers], "s": [72 numbers]}},
 *    "cert_chain": [{"cert_type": "VCEK"|"VLEK"|"ASK"|"ASVK"|"ARK", "data": [DER bytes]}]}
 * TCB objects with "fmc" null use the Milan/Genoa byte layout, with a number Turin's.
 */

/* The JSON for SNP evidence (ev->tag CG_TAG_SNP: report + DER certificates). New reference,
 * or NULL for a report that does not parse. */
json_t *cg_trustee_snp_to_json(const struct cg_evidence *ev);

/*
 * The binary report (1184 bytes, byte for byte what the firmware signed) and DER
 * certificates (VCEK/VLEK first, then ASK/ASVK, then ARK) from the JSON, into out (tag
 * CG_TAG_SNP; caller clears). Every member is required except launch_mit_vector and
 * current_mit_vector (version 5); numbers must fit their fields. Returns 0 or CG_EEVIDENCE
 * with err naming the member ("attestation_report.measurement[3]: expected 0 to 255").
 */
int cg_trustee_snp_from_json(const json_t *j, struct cg_evidence *out, char *err, size_t errlen);

#endif
