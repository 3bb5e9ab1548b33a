#ifndef CCGATE_CBOR_H
#define CCGATE_CBOR_H

#include <stddef.h>
#include <stdint.h>

#include "ccgate/evidence.h"

#define CG_NONCE_LEN 32
#define CG_MAX_NONCES 64
/* Endorsements (TDX collateral: TCB info, QE identity, CRLs) are larger than evidence. */
#define CG_ENDORSEMENTS_MAX_BYTES (4 * CG_EVIDENCE_MAX_BYTES)
/* The "gpu" claim: every GPU's evidence with its RIMs and OCSP responses (gpuev.h). */
#define CG_CLAIMS_GPU_MAX_BYTES (256 * 1024)
#define CG_CLAIMS_MAX_BYTES (CG_EVIDENCE_MAX_BYTES + CG_CLAIMS_GPU_MAX_BYTES)

/* A model name in the "model" claim: printable ASCII, as in a sealed file's header. */
#define CG_MODEL_NAME_MAX 255

/* The "model" claim: the sealed model the server's worker loaded (docs/model-protection.md),
 * a CBOR map {"name": tstr, "sha256": bstr .size 32, "version": uint}. */
struct cg_model_claim {
    int present;
    char name[CG_MODEL_NAME_MAX + 1];
    uint64_t version;
    uint8_t sha256[32]; /* of the plaintext */
};

/* 1 when s[0..n) is an acceptable model name: 1 to CG_MODEL_NAME_MAX printable ASCII bytes. */
int cg_model_name_ok(const char *s, size_t n);

/*
 * The RA-TLS claims (DESIGN.md section 3), carried in a CBOR byte string holding a map:
 * "pubkey-hash" = [1, SHA-256(SPKI DER)], "nonces" = [bstr...] (absent when empty),
 * "iat" = issue time (seconds), "gpu" = GPU evidence bstr (absent when none), "model" = the
 * loaded sealed model (absent when none).
 */
struct cg_claims {
    uint8_t pubkey_hash[32];
    size_t n_nonces;
    uint8_t nonces[CG_MAX_NONCES][CG_NONCE_LEN];
    int64_t iat;
    const uint8_t *gpu; /* borrowed from the decoded buffer; NULL when absent */
    size_t gpu_len;
    struct cg_model_claim model;
};

/*
 * Encodes c as the claims-buffer: the *content* of the byte string, i.e. the CBOR map
 * (report_data = SHA-256 of exactly these bytes). Caller frees *out with free().
 */
int cg_claims_encode(const struct cg_claims *c, uint8_t **out, size_t *out_len);

/*
 * Decodes a claims-buffer. Strict: definite lengths only, known keys only once each,
 * hash algorithm 1 (SHA-256) with 32 bytes, nonces of CG_NONCE_LEN bytes, at most
 * CG_MAX_NONCES, a model name of 1 to CG_MODEL_NAME_MAX printable ASCII bytes with all three
 * members. c->gpu points into buf. Returns 0 or CG_ECBOR.
 */
int cg_claims_decode(const uint8_t *buf, size_t len, struct cg_claims *c);

/*
 * The conceptual message wrapper of OID 2.23.133.5.4.9: tag(T)([evidence bstr, claims bstr]).
 * Caller frees *out.
 */
int cg_cmw_encode(uint32_t tag, const uint8_t *evidence, size_t evidence_len, const uint8_t *claims,
                  size_t claims_len, uint8_t **out, size_t *out_len);

/*
 * Decodes a wrapper; *evidence and *claims point into buf. Returns 0 or CG_ECBOR
 * (trailing bytes, wrong shape, size over CG_EVIDENCE_MAX_BYTES).
 */
int cg_cmw_decode(const uint8_t *buf, size_t len, uint32_t *tag, const uint8_t **evidence,
                  size_t *evidence_len, const uint8_t **claims, size_t *claims_len);

/*
 * Endorsements of OID 2.23.133.5.4.2: tag(T)([bstr...]), one per certificate / collateral
 * blob (e->certs). encode reads e->tag and e->certs; decode copies into e (caller clears).
 */
int cg_endorsements_encode(const struct cg_evidence *e, uint8_t **out, size_t *out_len);
int cg_endorsements_decode(const uint8_t *buf, size_t len, struct cg_evidence *e);

#endif
