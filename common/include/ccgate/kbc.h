#ifndef CCGATE_KBC_H
#define CCGATE_KBC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ccgate/evidence.h"
#include "ccgate/sealed.h"

/*
 * The key broker client (inside the TEE): Trustee's KBS attestation protocol RCAR 0.4.0
 * (shared/KEYS.md, docs/model-protection.md) over HTTP or HTTPS, blocking, for start-up
 * paths (ccgate-worker, ccgate unseal). One run: POST /kbs/v0/auth, fresh evidence whose
 * report_data binds an ephemeral P-256 key and the broker's nonce, POST /kbs/v0/attest,
 * GET /kbs/v0/resource/<repo>/<type>/<tag>, and the JWE answer decrypted with the ephemeral
 * key, which then is freed. Nothing is written to disk.
 */

#define CG_KBC_VERSION "0.4.0"
#define CG_KBC_SESSION_COOKIE "kbs-session-id"
#define CG_KBC_TEE_SIM "ccgate-sim" /* the simulated TEE's name in the protocol */
#define CG_KBC_MAX_BODY (1u << 20)
#define CG_KBC_TIMEOUT_MS 30000
/* The member the broker adds to a released sealing key: the policy's model minimum. */
#define CG_KBC_MIN_VERSION_MEMBER "ccgate_min_version"

struct cg_kbc_config {
    const char *url;       /* http://HOST:PORT (loopback tests) or https://HOST:PORT */
    const char *resource;  /* repo/type/tag */
    const char *ca_file;   /* https: CA certificates to trust; NULL: the system's */
    const char *tee;       /* sim, snp, tdx or auto (never sim) */
    const char *state_dir; /* sim: the simulated TEE's state */
};

/*
 * Hash H binding the ephemeral key and the nonce into report data (shared/KEYS.md): hash
 * `alg` ("sha256", "sha384", "sha512") of the JCS form of {"tee-pubkey": jwk, "nonce":
 * nonce, "additional-evidence": additional}, zero-padded to 64 bytes. Returns 0,
 * CG_ECONFIG (unknown alg) or CG_EEVIDENCE (a JWK JCS cannot encode).
 */
int cg_kbc_binding(const char *alg, const json_t *jwk, const char *nonce, const char *additional,
                   uint8_t out[CG_REPORT_DATA_LEN]);

/*
 * The evidence JSON for the protocol's "tee-evidence.primary_evidence" (the TEE name in
 * *tee, static): sim -> CG_KBC_TEE_SIM {"report": base64, "certs": [base64 DER, ...]};
 * SNP -> "snp" in Trustee's encoding (trustee.h); TDX -> "tdx" {"quote": base64,
 * "cc_eventlog": null}.
 * New reference, or NULL for evidence this client cannot encode.
 */
json_t *cg_kbc_evidence_json(const struct cg_evidence *ev, const char **tee);

/*
 * Runs the protocol and returns the released secret in *secret (caller frees, with
 * OPENSSL_cleanse-grade care: it is a key). Returns 0, or a negative code with err saying
 * which step failed and the broker's answer ("attest: 403 policy: snp.measurement ...").
 */
int cg_kbc_fetch(const struct cg_kbc_config *c, uint8_t **secret, size_t *n, char *err,
                 size_t errlen);

/*
 * A sealing key from JSON text: a JWK {"kty":"oct","k": 32 bytes} with optional "kid" (copied
 * into kid when not NULL) and CG_KBC_MIN_VERSION_MEMBER (into *min_version when not NULL;
 * 0 when absent). Returns 0 or CG_ECONFIG.
 */
int cg_kbc_seal_key_parse(const char *text, size_t len, uint8_t key[CG_SEAL_KEY_LEN], char *kid,
                          size_t kidlen, uint64_t *min_version);

/* cg_kbc_fetch() then cg_kbc_seal_key_parse(): the key of a sealed model. */
int cg_kbc_fetch_seal_key(const struct cg_kbc_config *c, uint8_t key[CG_SEAL_KEY_LEN],
                          uint64_t *min_version, char *err, size_t errlen);

#endif
