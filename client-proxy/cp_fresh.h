#ifndef CP_FRESH_H
#define CP_FRESH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ccgate/policy.h"
#include "ccgate/ratls.h"
#include "ccgate/tls.h"

/*
 * The client's freshness logic for one server identity: what it trusts and for how long.
 * It is the verify callback of the attested channel's TLS context (the transport appraises
 * nothing itself) and remembers the key it verified last, with the attestation:
 * - with a nonce: full appraisal (cg_ratls_verify) of the certificate against the policy;
 *   the other handshakes of the same batch find the certificate verified moments ago and
 *   need only their nonce among its claims;
 * - without: the key verified last, while younger than policy max_age_s (the handshake's
 *   CertificateVerify proves possession of the key);
 * - max-age mode: the periodic certificate, appraised once and cached by hash while its iat
 *   is recent enough;
 * - otherwise the key changed: the handshake fails with check "freshness.key_changed" and
 *   the caller reconnects with a nonce.
 * Session tickets are offered only for the key remembered and within max_age_s.
 */

#define CP_FRESH_CACHE 4 /* max-age mode: certificates remembered by hash */

struct cp_fresh_entry {
    int used;
    struct cg_attestation att;
};

struct cp_fresh {
    char server_id[256];
    const struct cg_policy *policy; /* borrowed */
    struct cg_tls_ctx *tls;         /* owned: created by cp_fresh_init */
    int have_key;                   /* the memory of the key verified last, with evidence */
    uint8_t key_spki[32];
    time_t key_time;
    int have_att;
    struct cg_attestation att;
    struct cp_fresh_entry cache[CP_FRESH_CACHE];
    size_t cache_next;
};

/* Creates the client TLS context (alpn) whose certificates f decides, for server_id (e.g.
 * "host:port", in verdicts) under *policy (borrowed). 0, CG_ECONFIG or CG_ETLS. */
int cp_fresh_init(struct cp_fresh *f, const char *alpn, const char *server_id,
                  const struct cg_policy *policy);

/* Frees the TLS context; its connections must have been freed before. */
void cp_fresh_free(struct cp_fresh *f);

/* A new attested connection: with a nonce when asked or when no fresh key is held, else
 * offering the ticket of the remembered key when it is still usable. Caller frees. */
int cp_fresh_tls_new(struct cp_fresh *f, int with_nonce, struct cg_tls **out);

/* Whether the next handshake must carry a nonce (no fresh verified key held). */
int cp_fresh_needs_nonce(const struct cp_fresh *f, time_t now);

/* Forgets the verified key, the cache and the ticket (after a failure or a key change). */
void cp_fresh_forget(struct cp_fresh *f);

/* Swaps the policy; what was verified under another policy (digest) is forgotten. */
void cp_fresh_set_policy(struct cp_fresh *f, const struct cg_policy *policy);

/* The last successful verification (with evidence), or NULL. */
const struct cg_attestation *cp_fresh_attestation(const struct cp_fresh *f);

/* After a failed handshake: whether it failed because the server presented another key. */
int cp_fresh_key_changed(const struct cg_tls *t);

#endif
