#include "cp_fresh.h"

#include <stdio.h>
#include <string.h>

#include "ccgate/err.h"

/* How long a certificate appraised in full with one nonce serves the other nonces of its
 * batch without a second appraisal. */
#define BATCH_REUSE_S 10
#define KEY_CHANGED_CHECK "freshness.key_changed"

static int key_fresh(const struct cp_fresh *f, time_t now)
{
    return f->have_key && now >= f->key_time &&
           (uint64_t)(now - f->key_time) < f->policy->freshness.max_age_s;
}

static struct cp_fresh_entry *cache_find(struct cp_fresh *f, const uint8_t cert_hash[32])
{
    for (size_t i = 0; i < CP_FRESH_CACHE; i++)
        if (f->cache[i].used && memcmp(f->cache[i].att.cert_sha256, cert_hash, 32) == 0)
            return &f->cache[i];
    return NULL;
}

static void cache_put(struct cp_fresh *f, const struct cg_attestation *att)
{
    struct cp_fresh_entry *e = cache_find(f, att->cert_sha256);
    if (e == NULL) {
        e = &f->cache[f->cache_next];
        f->cache_next = (f->cache_next + 1) % CP_FRESH_CACHE;
    }
    e->used = 1;
    e->att = *att;
}

static void remember(struct cp_fresh *f, const struct cg_attestation *att)
{
    if (f->have_key && memcmp(f->key_spki, att->spki_sha256, 32) != 0)
        cg_tls_ctx_drop_ticket(f->tls);
    f->have_key = 1;
    memcpy(f->key_spki, att->spki_sha256, 32);
    f->key_time = att->verified_at;
    f->att = *att;
    f->have_att = 1;
}

/* The verify callback (cg_tls_verify_cb): see the header for the rules. */
static int verify(void *arg, struct cg_tls *t, const uint8_t *der, size_t der_len,
                  struct cg_verdict *verdict)
{
    struct cp_fresh *f = arg;
    const struct cg_policy *p = f->policy;
    time_t now = time(NULL);
    uint8_t cert_hash[32], spki[32];
    struct cg_attestation att;
    struct cp_fresh_entry *hit;
    char want[65], got[65];
    int rc;

    cg_tls_cert_hash(t, cert_hash);
    cg_tls_peer_spki(t, spki);
    if (cg_tls_sent_nonce(t)) {
        const uint8_t *nonce = cg_tls_nonce(t);
        hit = cache_find(f, cert_hash);
        if (hit != NULL && now >= hit->att.verified_at &&
            now - hit->att.verified_at <= BATCH_REUSE_S) {
            for (size_t i = 0; i < hit->att.n_nonces; i++) {
                if (memcmp(hit->att.nonces[i], nonce, CG_NONCE_LEN) == 0) {
                    remember(f, &hit->att);
                    return 0;
                }
            }
        }
        rc = cg_ratls_verify(der, der_len, p, nonce, now, &att, verdict);
        if (rc == 0) {
            cache_put(f, &att);
            remember(f, &att);
        }
        return rc;
    }
    if (key_fresh(f, now) && memcmp(spki, f->key_spki, 32) == 0)
        return 0; /* the handshake's CertificateVerify proves possession of that key */
    if (p->freshness.mode == CG_FRESH_MAX_AGE) {
        hit = cache_find(f, cert_hash);
        if (hit != NULL && now - hit->att.iat <= (int64_t)p->freshness.max_age_s &&
            hit->att.iat - now <= CG_RATLS_IAT_SKEW_S) {
            remember(f, &hit->att);
            return 0;
        }
        rc = cg_ratls_verify(der, der_len, p, NULL, now, &att, verdict);
        if (rc == 0) {
            cache_put(f, &att);
            remember(f, &att);
        }
        return rc;
    }
    if (f->have_key)
        cg_hex(want, sizeof(want), f->key_spki, 32);
    else
        snprintf(want, sizeof(want), "a nonce");
    cg_hex(got, sizeof(got), spki, 32);
    return cg_reject(verdict, CG_EEVIDENCE, KEY_CHANGED_CHECK, want,
                     "%s presented unverified key %s", f->server_id, got);
}

int cp_fresh_init(struct cp_fresh *f, const char *alpn, const char *server_id,
                  const struct cg_policy *policy)
{
    memset(f, 0, sizeof(*f));
    if (policy == NULL || server_id == NULL || strlen(server_id) >= sizeof(f->server_id))
        return CG_ECONFIG;
    snprintf(f->server_id, sizeof(f->server_id), "%s", server_id);
    f->policy = policy;
    return cg_tls_client_ctx_new(alpn, verify, f, &f->tls);
}

void cp_fresh_free(struct cp_fresh *f)
{
    cg_tls_ctx_free(f->tls);
    f->tls = NULL;
}

/* A ticket is offered only while both it and the verification of its key are younger than
 * max_age_s, and only for the key remembered. */
static int ticket_usable(const struct cp_fresh *f, time_t now)
{
    uint8_t spki[32];
    time_t at;
    return cg_tls_ctx_ticket(f->tls, spki, &at) && key_fresh(f, now) &&
           memcmp(spki, f->key_spki, 32) == 0 && now >= at &&
           (uint64_t)(now - at) < f->policy->freshness.max_age_s;
}

int cp_fresh_tls_new(struct cp_fresh *f, int with_nonce, struct cg_tls **out)
{
    time_t now = time(NULL);
    unsigned flags = 0;
    if (with_nonce || cp_fresh_needs_nonce(f, now))
        flags = CG_TLS_NONCE;
    else if (ticket_usable(f, now))
        flags = CG_TLS_TICKET;
    return cg_tls_new(f->tls, flags, out);
}

int cp_fresh_needs_nonce(const struct cp_fresh *f, time_t now)
{
    if (f->policy->freshness.mode != CG_FRESH_NONCE)
        return 0;
    return !key_fresh(f, now);
}

void cp_fresh_forget(struct cp_fresh *f)
{
    f->have_key = 0;
    memset(f->key_spki, 0, sizeof(f->key_spki));
    cg_tls_ctx_drop_ticket(f->tls);
    memset(f->cache, 0, sizeof(f->cache));
}

void cp_fresh_set_policy(struct cp_fresh *f, const struct cg_policy *policy)
{
    /* What was verified under another policy proves nothing under this one. */
    if (memcmp(f->policy->digest, policy->digest, sizeof(policy->digest)) != 0)
        cp_fresh_forget(f);
    f->policy = policy;
}

const struct cg_attestation *cp_fresh_attestation(const struct cp_fresh *f)
{
    return f->have_att ? &f->att : NULL;
}

int cp_fresh_key_changed(const struct cg_tls *t)
{
    return strcmp(cg_tls_verdict(t)->check, KEY_CHANGED_CHECK) == 0;
}
