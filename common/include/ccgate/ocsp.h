#ifndef CCGATE_OCSP_H
#define CCGATE_OCSP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ccgate/err.h"

/*
 * Offline OCSP (ATTESTATION.md 3.4): stapled responses, fetched by whoever had a network,
 * checked at the verification time. NVIDIA's responses carry no nonce, so their time window
 * is the only freshness.
 */
#define CG_OCSP_MAX_RESPONSES 16
#define CG_OCSP_MAX_BYTES (16 * 1024)

enum cg_ocsp_status { CG_OCSP_NOT_CHECKED, CG_OCSP_GOOD, CG_OCSP_REVOKED_IN_GRACE };

/* "not-checked", "good" or "revoked-in-grace". */
const char *cg_ocsp_status_name(enum cg_ocsp_status s);

/* Stapled DER OCSP responses, borrowed. */
struct cg_ocsp_set {
    const uint8_t *resp[CG_OCSP_MAX_RESPONSES];
    size_t lens[CG_OCSP_MAX_RESPONSES];
    size_t n;
};

/*
 * Checks every certificate of chain (DER, leaf first, the root last; the root itself is not
 * checked) against the responses: one response whose single response names the certificate
 * (its CertID, with the response's hash algorithm, from the certificate and its issuer, the
 * next one in the chain), response status successful, signed by the issuer or by a
 * responder the issuer delegated to (a chain to the root valid at `at`), thisUpdate <= at <=
 * nextUpdate (nextUpdate required), and certificate status good, or revoked no longer than
 * grace_s before `at`. `what` names the chain in the verdict ("gpu.ocsp.device",
 * "gpu.ocsp.driver_rim", ...). *status is the worst status seen. Returns 0 or CG_EEVIDENCE.
 */
int cg_ocsp_check_chain(const uint8_t *const *chain, const size_t *lens, size_t n,
                        const struct cg_ocsp_set *set, uint32_t grace_s, time_t at,
                        const char *what, enum cg_ocsp_status *status, struct cg_verdict *v);

#endif
