#ifndef CCGATE_TOKEN_H
#define CCGATE_TOKEN_H

#include <stddef.h>

/*
 * Bearer tokens for the server sidecar's optional access control. The token file holds one
 * entry per line, `sha256:<64 hex digits> [NAME]`, blank lines and `#` comments allowed:
 * only SHA-256 digests are stored, never a token. Tokens must be random (at least
 * CG_TOKEN_MIN_LEN characters of RFC 6750 b64token), so an unsalted digest is enough: there
 * is no password to guess from a stolen file. NAME (letters, digits, `._@-`, at most 64)
 * names the token in logs; without one the log shows `sha256:` and the digest's first 12
 * hex digits.
 */

#define CG_TOKEN_MIN_LEN 32
#define CG_TOKEN_MAX_LEN 512
#define CG_TOKEN_MAX_ENTRIES 4096
#define CG_TOKEN_FILE_MAX (1024 * 1024)

/* Why a request's credentials were refused (the label of the auth failures metric). */
enum cg_token_fail {
    CG_TOKEN_OK,
    CG_TOKEN_MISSING,   /* no Authorization header */
    CG_TOKEN_SCHEME,    /* a scheme other than Bearer */
    CG_TOKEN_MALFORMED, /* not one b64token, or several Authorization headers */
    CG_TOKEN_UNKNOWN,   /* well formed, but no entry matches (revoked or wrong) */
};

struct cg_tokens;

/*
 * Reads the token file at path. Returns 0 and *out (caller frees with cg_tokens_free()), or
 * CG_ECONFIG (a line that is not an entry, a duplicate digest or name, too many entries, an
 * empty file), CG_ELIMIT or -errno when it cannot be read; err names the line and what was
 * expected.
 */
int cg_tokens_load(const char *path, struct cg_tokens **out, char *err, size_t errlen);

void cg_tokens_free(struct cg_tokens *t);

/* How many entries t holds. */
size_t cg_tokens_count(const struct cg_tokens *t);

/*
 * Checks the value of a request's Authorization header (NULL when it had none). Every entry
 * is compared, in constant time. Returns CG_TOKEN_OK and *name (borrowed, valid while t
 * lives) or why it refused. A set is checked from one thread at a time (it keeps one digest
 * context).
 */
enum cg_token_fail cg_tokens_check(const struct cg_tokens *t, const char *value, size_t len,
                                   const char **name);

/* A short word for why ("missing", "scheme", "malformed", "unknown"; "ok"). */
const char *cg_token_fail_name(enum cg_token_fail f);

/*
 * Writes the file entry for token[0..len) and name (NULL for none) into out, ending with a
 * newline. Returns 0, CG_ECONFIG (a token too short or long or not a b64token, a bad name;
 * err says which) or CG_ELIMIT when cap is too small.
 */
int cg_token_entry(const char *token, size_t len, const char *name, char *out, size_t cap,
                   char *err, size_t errlen);

#endif
