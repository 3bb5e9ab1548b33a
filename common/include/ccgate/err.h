#ifndef CCGATE_ERR_H
#define CCGATE_ERR_H

#include <stddef.h>
#include <stdint.h>

/*
 * Errors: 0 or a negative code. libuv's codes (negative errno) pass through unchanged;
 * ccgate's own live below -5000.
 */
#define CG_ETLS (-5001)      /* TLS handshake or record failure */
#define CG_EHTTP (-5002)     /* malformed or unsupported HTTP */
#define CG_EEVIDENCE (-5003) /* evidence malformed, badly signed or not bound */
#define CG_EPOLICY (-5004)   /* evidence genuine but the policy rejects it */
#define CG_ECONFIG (-5005)   /* bad configuration, flag or policy file */
#define CG_ECBOR (-5006)     /* malformed CBOR */
#define CG_ELIMIT (-5007)    /* a size or count limit was exceeded */
#define CG_ECRYPTO (-5008)   /* a cryptographic primitive failed (not a verification) */
#define CG_ETIMEOUT (-5009)  /* a deadline passed */
#define CG_ENOTEE (-5010)    /* the requested TEE is not available on this machine */

/* A static description of err (ccgate codes, libuv codes, errno values). */
const char *cg_strerror(int err);

/*
 * Why an appraisal failed: the name of the check (e.g. "snp.measurement") and the
 * expected and actual values, as text. This text reaches the log, the app's 502 body and
 * /verification, so it never holds secrets.
 */
struct cg_verdict {
    char check[64];
    char expected[256];
    char actual[256];
};

/*
 * Fills v (when not NULL) with check, expected and a printf-formatted actual value, and
 * returns err, so a check reads `return cg_reject(v, CG_EPOLICY, "snp.debug", "false", "true");`.
 */
int cg_reject(struct cg_verdict *v, int err, const char *check, const char *expected,
              const char *actual_fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Writes a printf-formatted message into err (when not NULL and errlen > 0) and returns rc,
 * so a parser reads `return cg_errf(err, errlen, CG_ECONFIG, "jwk.crv: expected P-256");`.
 */
int cg_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Lower-case hex of in[0..n) into out (NUL-terminated, truncated to outlen). */
void cg_hex(char *out, size_t outlen, const uint8_t *in, size_t n);

/* Parses exactly 2*n hex digits into out; returns 0 or CG_ECONFIG. */
int cg_unhex(uint8_t *out, size_t n, const char *hex);

#endif
