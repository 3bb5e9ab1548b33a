#ifndef CCGATE_RATLS_H
#define CCGATE_RATLS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ccgate/cbor.h"
#include "ccgate/err.h"
#include "ccgate/evidence.h"
#include "ccgate/policy.h"
#include "ccgate/snp.h"
#include "ccgate/tdx.h"

#define CG_OID_CMW "2.23.133.5.4.9"
#define CG_OID_ENDORSEMENTS "2.23.133.5.4.2"

/* How far in the future an iat may lie (clock skew between client and server). */
#define CG_RATLS_IAT_SKEW_S 60

/* The server's TLS key: ECDSA P-256, generated in memory, never written anywhere. */
struct cg_ratls_key;

/* Generates a key; caller frees with cg_ratls_key_free(). */
int cg_ratls_key_new(struct cg_ratls_key **out);
void cg_ratls_key_free(struct cg_ratls_key *k);

/*
 * A plain TLS identity (no evidence) for a server that is not in a TEE, such as the key
 * broker: the first certificate of cert_path (PEM) as DER in *der (caller frees) and the
 * private key of key_path (PEM: EC or RSA), which must match it, in *key (caller frees).
 * Returns 0 or CG_ECONFIG.
 */
int cg_ratls_identity_load_pem(const char *cert_path, const char *key_path,
                               struct cg_ratls_key **key, uint8_t **der, size_t *der_len);

/* Internal to tls.c (and tests): the key as OpenSSL's EVP_PKEY, borrowed. Declared with
 * OpenSSL's struct tag so that this header needs no OpenSSL include. */
struct evp_pkey_st;
struct evp_pkey_st *cg__ratls_key_pkey(const struct cg_ratls_key *k);

/* Internal: SHA-256 of pkey's DER SubjectPublicKeyInfo. Returns 0 or CG_ECRYPTO. */
int cg__ratls_spki_sha256(struct evp_pkey_st *pkey, uint8_t out[32]);

/* SHA-256 of the key's DER SubjectPublicKeyInfo. */
void cg_ratls_key_spki_hash(const struct cg_ratls_key *k, uint8_t out[32]);

/*
 * Builds the claims-buffer for key k, the given nonces (may be 0) and issue time, and the
 * report_data to request evidence with: SHA-256(claims-buffer) || 32 zero bytes.
 * Caller frees *claims.
 */
int cg_ratls_claims(const struct cg_ratls_key *k, const uint8_t (*nonces)[CG_NONCE_LEN],
                    size_t n_nonces, int64_t iat, uint8_t **claims, size_t *claims_len,
                    uint8_t report_data[CG_REPORT_DATA_LEN]);

/*
 * The same with the GPU evidence bundle (gpuev.h; NULL/0: none) in the claims' "gpu" entry
 * and the loaded model (NULL or not present: none) in "model", so that the report_data covers
 * them. CG_ELIMIT past CG_CLAIMS_GPU_MAX_BYTES.
 */
int cg_ratls_claims_ext(const struct cg_ratls_key *k, const uint8_t (*nonces)[CG_NONCE_LEN],
                        size_t n_nonces, int64_t iat, const uint8_t *gpu, size_t gpu_len,
                        const struct cg_model_claim *model, uint8_t **claims, size_t *claims_len,
                        uint8_t report_data[CG_REPORT_DATA_LEN]);

/* The SPDM nonce the GPUs must sign for claims of key k, these nonces and iat
 * (cg_gpuev_nonce of the key's SPKI hash). */
void cg_ratls_gpu_nonce(const struct cg_ratls_key *k, const uint8_t (*nonces)[CG_NONCE_LEN],
                        size_t n_nonces, int64_t iat, uint8_t out[CG_NONCE_LEN]);

/*
 * Builds the self-signed X.509 certificate (DER) for k carrying the evidence (CMW
 * extension) and its endorsements; validity from iat - 60 s to iat + lifetime_s.
 * Caller frees *der.
 */
int cg_ratls_cert_new(const struct cg_ratls_key *k, const uint8_t *claims, size_t claims_len,
                      const struct cg_evidence *ev, int64_t iat, uint32_t lifetime_s, uint8_t **der,
                      size_t *der_len);

/* What the client learnt from a verified certificate. */
struct cg_attestation {
    uint32_t tag; /* CG_TAG_SIM, CG_TAG_SNP, CG_TAG_TDX */
    int insecure; /* simulated TEE */
    uint8_t cert_sha256[32];
    uint8_t spki_sha256[32];
    int64_t iat;
    time_t verified_at;
    int nonce_matched; /* the expected nonce was in the claims */
    size_t n_nonces;   /* the claims' nonces: a certificate made for a batch serves each */
    uint8_t nonces[CG_MAX_NONCES][CG_NONCE_LEN];
    struct cg_snp_report snp; /* SNP and sim evidence */
    /* TDX evidence: the quote (qe_auth and pck_chain NULL: they pointed into the
     * certificate) and what its collateral said (TCB statuses, CRLs applied). */
    struct cg_tdx_quote tdx;
    struct cg_tdx_status tdx_status;
    /* The GPUs, when the policy has a gpu section and the claims carry GPU evidence. */
    int gpu_appraised;
    size_t n_gpus;
    struct cg_gpuev_result gpus[CG_GPUEV_MAX_GPUS];
    /* The sealed model the server's worker loaded, as the claims say (present 0: none). */
    struct cg_model_claim model;
};

/* "sim", "snp", "tdx" or "unknown". */
const char *cg_ratls_tee_name(uint32_t tag);

/*
 * Verifies a server certificate (DER) in full: self-signature, exactly one CMW extension,
 * claims decode, pubkey-hash equal to the certificate's SPKI hash, the tag acceptable to
 * the policy (sim only when p->sim.allow; sim ARK equal to p->sim.root_sha256; snp and tdx
 * only with their policy section), evidence signature and chain (cg_snp_verify, or for TDX
 * cg_tdx_verify with the endorsements as collateral, at time now), report_data equal to
 * SHA-256(claims) || 0^32, freshness (nonce != NULL: the nonce must be in the claims;
 * NULL: iat within p->freshness.max_age_s of now, and not in the future beyond
 * CG_RATLS_IAT_SKEW_S), then the policy (cg_policy_appraise_snp or cg_tdx_appraise), then
 * with a gpu section in the policy the claims' GPU evidence (cg_gpuev_verify over the nonce
 * cg_gpuev_nonce derives from these claims; required unless gpu.required is false).
 * Returns 0 with out filled, or CG_EEVIDENCE / CG_EPOLICY with v set.
 */
int cg_ratls_verify(const uint8_t *der, size_t der_len, const struct cg_policy *p,
                    const uint8_t *nonce, time_t now, struct cg_attestation *out,
                    struct cg_verdict *v);

/*
 * The evidence part of cg_ratls_verify() for evidence that came without a certificate (the
 * key broker's): the tag acceptable to p (as above), signature and chain (SNP or sim:
 * certs in endorse; TDX: endorse holds the collateral blobs), at time now, and report_data
 * equal to want. Fills out (tag, insecure, snp or tdx); no freshness, no appraisal.
 * Returns 0 or CG_EEVIDENCE / CG_EPOLICY with v set.
 */
int cg_ratls_verify_evidence(uint32_t tag, const uint8_t *evidence, size_t evidence_len,
                             const struct cg_evidence *endorse, const struct cg_policy *p,
                             const uint8_t want[CG_REPORT_DATA_LEN], time_t now,
                             struct cg_attestation *out, struct cg_verdict *v);

/* Appraises verified evidence (out of cg_ratls_verify_evidence) against p's snp/sim or tdx
 * policy. Returns 0 or CG_EPOLICY with v naming the check. */
int cg_ratls_appraise(const struct cg_policy *p, const struct cg_attestation *att,
                      struct cg_verdict *v);

/*
 * Reads the evidence, endorsements and claims of an RA-TLS certificate (PEM or DER) without
 * trusting anything: for inspection, and for trust on first use before cg_ratls_verify().
 * ev is filled (caller clears it); claims->gpu is not returned. 0 or CG_EEVIDENCE.
 */
int cg_ratls_inspect(const uint8_t *data, size_t len, struct cg_evidence *ev,
                     struct cg_claims *claims);

/*
 * The claims' GPU evidence bytes of an RA-TLS certificate (PEM or DER), untrusted, copied
 * into *gpu (caller frees; NULL and 0 when the claims carry none). 0 or CG_EEVIDENCE.
 */
int cg_ratls_inspect_gpu(const uint8_t *data, size_t len, uint8_t **gpu, size_t *gpu_len);

/* SHA-256 of data, for callers that do not include OpenSSL. 0 or CG_ECRYPTO. */
int cg_sha256(const uint8_t *data, size_t len, uint8_t out[32]);

#endif
