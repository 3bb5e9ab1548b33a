/*
 * Internal to the TDX verifier, shared by its parts: tdx_quote.c (the quote parser),
 * tdx_pck.c (PCK chain, X.509, CRLs, ECDSA), tdx_collateral.c (TCB info and QE identity),
 * tdx.c (the verification pipeline) and tdx_policy.c. Not for other modules.
 */
#ifndef CCGATE_TDX_INT_H
#define CCGATE_TDX_INT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ccgate/tdx.h"

#define CG__TDX_ROOT_NAME "intel/sgx_root_ca.pem"
#define CG__TDX_MAX_CHAIN 4

/* Verifies an ECDSA P-256/SHA-256 raw r||s signature: 1 valid, 0 invalid, <0 error. */
int cg__tdx_ecdsa_verify(EVP_PKEY *key, const uint8_t *msg, size_t n, const uint8_t sig[64]);

/* The attestation key (raw X||Y) as a P-256 public key (caller frees), or NULL if not a
 * curve point. */
EVP_PKEY *cg__tdx_p256_key(const uint8_t xy[64]);

/* 1 when key is an EC key on P-256. */
int cg__tdx_is_p256(EVP_PKEY *key);

/* The Intel SGX Root CA pinned in certs/intel/ (caller frees), or NULL. */
X509 *cg__tdx_pinned_root(void);

/* Reads up to CG__TDX_MAX_CHAIN PEM certificates from pem[0..n); returns how many, or -1
 * (out[] then holds nothing). */
int cg__tdx_read_chain(const char *pem, size_t n, X509 *out[CG__TDX_MAX_CHAIN]);

/* Frees the certificates of a chain read by cg__tdx_read_chain() and clears it. */
void cg__tdx_free_chain(X509 *c[CG__TDX_MAX_CHAIN]);

/* 1 when the subject CN of x is one of the NULL-terminated names. */
int cg__tdx_subject_cn_is(X509 *x, const char *const *names);

/*
 * Verifies chain[0] up to the pinned root at `at` (strict X.509, exactly `depth` certs
 * including the root). The certificates carried must be the chain's, in order, at most
 * `depth` of them, a carried root the pinned one byte for byte (check.extra, check.order,
 * check.root otherwise). check names the chain in verdicts ("tdx.pck_chain",
 * "tdx.tcb_chain"). On success *ca_out (when not NULL) holds a reference to the certificate
 * above chain[0]: caller frees.
 */
int cg__tdx_verify_chain(X509 *chain[CG__TDX_MAX_CHAIN], int n, X509 *root, time_t at, int depth,
                         const char *check, X509 **ca_out, struct cg_verdict *v);

/* Fills pck from the leaf's SGX extension: PPID, TCB, PCE-ID and FMSPC are required. */
int cg__tdx_pck_extension(X509 *leaf, struct cg_tdx_pck_info *pck, struct cg_verdict *v);

/*
 * Applies one CRL: its issuer must be one of the CA certificates in cas[] (which verified
 * it), it must be valid at `at`, and none of the certificates in certs[] it covers may be
 * listed. names[] name the certificates for verdicts; *issuer_idx tells which CA issued it.
 */
int cg__tdx_apply_crl(const uint8_t *buf, size_t n, X509 *const *cas, size_t n_cas,
                      X509 *const *certs, const char *const *names, size_t n_certs, time_t at,
                      size_t *issuer_idx, struct cg_verdict *v);

/*
 * Checks a PCS response {"<member>": {...}, "signature": "<hex r||s>"} signed by key and
 * returns in *out the member parsed from the very bytes that were signed (caller frees).
 * what names the document in verdicts ("tcb_info", "qe_identity").
 */
int cg__tdx_verify_signed_json(const char *doc, size_t n, const char *member, EVP_PKEY *key,
                               const char *what, json_t **out, struct cg_verdict *v);

/* Applies authenticated TCB info and QE identity to a verified quote: statuses into st. */
int cg__tdx_collateral_json(json_t *tcb_info, json_t *qe_id, const struct cg_tdx_quote *q,
                            time_t at, struct cg_tdx_status *st, struct cg_verdict *v);

#endif
