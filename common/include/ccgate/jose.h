#ifndef CCGATE_JOSE_H
#define CCGATE_JOSE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "ccgate/err.h"

/*
 * The JOSE subset Trustee's KBS protocol uses (shared/KEYS.md): JWK (EC P-256, RSA, oct),
 * flattened JWE with ECDH-ES+A256KW (P-256, Concat KDF SHA-256) or RSA-OAEP-256 and A256GCM,
 * ES256 JWTs, and RFC 8785 canonical JSON for the evidence binding. OpenSSL underneath.
 * Every parse error returns CG_EEVIDENCE (or CG_ECONFIG for a key) with err naming the
 * member and the expectation ("jwe.protected.enc: expected A256GCM").
 */

#define CG_JOSE_MAX_INPUT (1u << 20) /* the largest JWE, JWT or JWK text we read */
#define CG_JOSE_RSA_MIN_BITS 2048

struct cg_jose_key;

enum cg_jose_kty { CG_JOSE_EC, CG_JOSE_RSA, CG_JOSE_OCT };

/* Base64url without padding (JOSE) or standard base64 with padding; caller frees *out. */
char *cg_b64url_encode(const uint8_t *p, size_t n);
char *cg_b64_encode(const uint8_t *p, size_t n);

/*
 * Strict decoders: the alphabet only, no whitespace; base64url without padding, standard
 * base64 with it (canonical: unused bits zero). Returns 0 with *out (caller frees; one NUL
 * byte past the end) or CG_EEVIDENCE. At most max output bytes (CG_ELIMIT past).
 */
int cg_b64url_decode(const char *s, size_t max, uint8_t **out, size_t *out_len);
int cg_b64_decode(const char *s, size_t max, uint8_t **out, size_t *out_len);

/* A fresh key: CG_JOSE_EC (P-256) or CG_JOSE_RSA (3072 bits). Caller frees. */
int cg_jose_key_generate(enum cg_jose_kty kty, struct cg_jose_key **out);

/*
 * A key from a JWK object: "EC" (crv P-256, x, y, optional d; the point must be on the
 * curve), "RSA" (n, e, optional d, p, q, dp, dq, qi; at least 2048 bits) or "oct" (k).
 * Unknown members are ignored, as RFC 7517 says. Returns 0 or CG_ECONFIG with err.
 */
int cg_jose_key_from_jwk(const json_t *jwk, struct cg_jose_key **out, char *err, size_t errlen);

/* The JWK of k (private members only when with_private and k has them). New reference. */
json_t *cg_jose_key_to_jwk(const struct cg_jose_key *k, int with_private);

enum cg_jose_kty cg_jose_key_type(const struct cg_jose_key *k);

/* An oct key's bytes (borrowed), or NULL for other types. */
const uint8_t *cg_jose_key_oct(const struct cg_jose_key *k, size_t *len);

/* An oct key holding a copy of p[0..n). Caller frees. */
int cg_jose_key_from_oct(const uint8_t *p, size_t n, struct cg_jose_key **out);

void cg_jose_key_free(struct cg_jose_key *k);

/*
 * Encrypts pt to the public key k as a flattened JWE (new reference in *out): EC keys get
 * ECDH-ES+A256KW with a fresh ephemeral key, RSA keys RSA-OAEP-256; content A256GCM.
 * Returns 0, CG_ECONFIG (an oct key) or CG_ECRYPTO.
 */
int cg_jwe_encrypt(const struct cg_jose_key *k, const uint8_t *pt, size_t n, json_t **out);

/*
 * Decrypts a flattened JWE with the private key k: the protected header's alg must suit
 * k (ECDH-ES+A256KW for EC, RSA-OAEP-256 for RSA), enc A256GCM, no zip, no crit, no aad
 * or unprotected header. *pt (caller frees, NUL-terminated past *n) on success; on a
 * failed tag CG_EEVIDENCE with err "jwe.tag: authentication failed".
 */
int cg_jwe_decrypt(const struct cg_jose_key *k, const json_t *jwe, uint8_t **pt, size_t *n,
                   char *err, size_t errlen);

/* Signs claims as an ES256 JWT with the EC private key k; *token caller frees. */
int cg_jwt_sign(const struct cg_jose_key *k, const json_t *claims, char **token);

/*
 * Verifies an ES256 JWT with the EC key k (header alg must be ES256) and its "exp" claim
 * (required, after now) and "nbf" (when present, not after now). Returns 0 with *claims (new
 * reference) or CG_EEVIDENCE with err ("jwt.signature", "jwt.exp: expired", ...).
 */
int cg_jwt_verify(const struct cg_jose_key *k, const char *token, time_t now, json_t **claims,
                  char *err, size_t errlen);

/*
 * RFC 8785 canonical form of v (caller frees): members sorted, no whitespace. Supports
 * what the protocol carries: objects, arrays, strings, integers, true/false/null; strings
 * with control characters, non-ASCII member names and non-integer numbers are refused
 * (CG_EEVIDENCE) rather than risk a form another implementation would not produce.
 */
int cg_jcs(const json_t *v, char **out);

#endif
