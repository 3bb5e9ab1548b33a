#ifndef TLS_FIXTURE_H
#define TLS_FIXTURE_H

/*
 * Shared by test_tls.c and test_cp_fresh.c: a TLS client engine against a server engine in
 * memory (every byte one side queues is fed to the other), the server presenting certificates
 * with real sim-TEE evidence. Define TLS_FIXTURE_NAME (the temp folder's tag) first.
 */

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "ccgate/cbor.h"
#include "ccgate/evidence.h"
#include "ccgate/ratls.h"
#include "ccgate/sim.h"
#include "ccgate/tls.h"

static struct {
    char dir[64];
    uint8_t ark[32];
    uint8_t measurement[48];
    struct cg_provider *prov;
} F;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    const char *measured = CG_SOURCE_DIR "/CMakeLists.txt";
    snprintf(F.dir, sizeof(F.dir), "/tmp/cg-test-%s-XXXXXX", TLS_FIXTURE_NAME);
    if (mkdtemp(F.dir) == NULL || cg_sim_init(F.dir, F.ark) != 0 ||
        cg_sim_provider_new(F.dir, measured, &F.prov) != 0)
        return -1;
    FILE *f = fopen(measured, "rb");
    if (f == NULL)
        return -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha384(), NULL);
    uint8_t buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        EVP_DigestUpdate(md, buf, n);
    EVP_DigestFinal_ex(md, F.measurement, NULL);
    EVP_MD_CTX_free(md);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (F.prov != NULL)
        F.prov->free(F.prov);
    return nftw(F.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- the server side ---- */

enum mode {
    ANSWER,      /* the nonce's certificate, or the periodic one */
    OTHER_NONCE, /* a certificate for some other client's nonce */
    FIXED,       /* s->fixed, whatever the client asked */
    NO_EVIDENCE, /* the evidence request failed */
};

struct server {
    struct cg_tls_ctx *ctx;
    struct cg_ratls_key *key;
    uint8_t *periodic;
    size_t periodic_len;
    enum mode mode;
    int defer; /* park the handshake (CG_TLS_PENDING) */
    uint8_t *fixed;
    size_t fixed_len;
    int calls;
    int got_nonce;
    uint8_t nonce[CG_NONCE_LEN];
};

struct mint {
    const struct cg_ratls_key *claims_key; /* default: the certificate's key */
    const uint8_t *nonce;
    int64_t iat;
    int corrupt_report_data;
};

static void mint(const struct cg_ratls_key *key, const struct mint *m, uint8_t **der, size_t *len)
{
    uint8_t *claims;
    size_t claims_len;
    uint8_t rd[CG_REPORT_DATA_LEN];
    assert_int_equal(cg_ratls_claims(m->claims_key ? m->claims_key : key,
                                     (const uint8_t(*)[CG_NONCE_LEN])m->nonce, m->nonce ? 1 : 0,
                                     m->iat, &claims, &claims_len, rd),
                     0);
    rd[0] ^= (uint8_t)m->corrupt_report_data;
    struct cg_evidence ev = {0};
    assert_int_equal(F.prov->get(F.prov, rd, &ev), 0);
    assert_int_equal(cg_ratls_cert_new(key, claims, claims_len, &ev, m->iat, 3600, der, len), 0);
    cg_evidence_clear(&ev);
    free(claims);
}

/* What the server proxy does once evidence is ready. */
static void answer(struct server *s, struct cg_tls *t)
{
    uint8_t *der;
    size_t len;
    if (s->mode == FIXED) {
        assert_int_equal(cg_tls_use_cert(t, s->fixed, s->fixed_len, s->key), 0);
        return;
    }
    if (!s->got_nonce) {
        assert_int_equal(cg_tls_use_cert(t, s->periodic, s->periodic_len, s->key), 0);
        return;
    }
    uint8_t other[CG_NONCE_LEN];
    memcpy(other, s->nonce, CG_NONCE_LEN);
    other[0] ^= (uint8_t)(s->mode == OTHER_NONCE);
    struct mint m = {.nonce = other, .iat = time(NULL)};
    mint(s->key, &m, &der, &len);
    assert_int_equal(cg_tls_use_cert(t, der, len, s->key), 0);
    free(der);
}

static int server_cb(void *arg, struct cg_tls *t, const uint8_t *nonce)
{
    struct server *s = arg;
    assert_ptr_equal(cg_tls_get_data(t), s);
    s->calls++;
    s->got_nonce = nonce != NULL;
    if (nonce != NULL)
        memcpy(s->nonce, nonce, CG_NONCE_LEN);
    if (s->defer)
        return CG_TLS_PENDING;
    if (s->mode == NO_EVIDENCE)
        return CG_EEVIDENCE;
    answer(s, t);
    return 0;
}

static void server_init(struct server *s, const char *alpn, int64_t periodic_iat)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(cg_ratls_key_new(&s->key), 0);
    struct mint m = {.iat = periodic_iat};
    mint(s->key, &m, &s->periodic, &s->periodic_len);
    assert_int_equal(cg_tls_server_ctx_new(alpn, server_cb, s, &s->ctx), 0);
}

static void server_free(struct server *s)
{
    cg_tls_ctx_free(s->ctx);
    cg_ratls_key_free(s->key);
    free(s->periodic);
    free(s->fixed);
}

static struct cg_tls *server_conn(struct server *s)
{
    struct cg_tls *t;
    assert_int_equal(cg_tls_new(s->ctx, 0, &t), 0);
    cg_tls_set_data(t, s);
    return t;
}

/* ---- moving bytes ---- */

static size_t move(struct cg_tls *from, struct cg_tls *to)
{
    uint8_t buf[4096];
    size_t n, total = 0;
    while ((n = cg_tls_take_out(from, buf, sizeof(buf))) > 0) {
        assert_int_equal(cg_tls_feed(to, buf, n), 0);
        total += n;
    }
    assert_int_equal(cg_tls_pending_out(from), 0);
    return total;
}

static int waiting(int rc)
{
    return rc == CG_TLS_WANT || rc == CG_TLS_PENDING;
}

/* Drives both handshakes until no byte moves; *crc and *src hold the last results. */
static void pump(struct cg_tls *c, struct cg_tls *s, int *crc, int *src)
{
    for (int i = 0; i < 64; i++) {
        if (waiting(*crc))
            *crc = cg_tls_handshake(c);
        if (waiting(*src))
            *src = cg_tls_handshake(s);
        if (move(c, s) + move(s, c) == 0)
            return;
    }
    fail_msg("handshake did not settle");
}

static void handshake_ok(struct cg_tls *c, struct cg_tls *s)
{
    int crc = CG_TLS_WANT, src = CG_TLS_WANT;
    pump(c, s, &crc, &src);
    if (crc != 0 || src != 0) {
        const struct cg_verdict *v = cg_tls_verdict(c);
        fail_msg("client %d server %d: %s expected %s actual %s", crc, src, v->check, v->expected,
                 v->actual);
    }
    assert_int_equal(cg_tls_resumed(c), cg_tls_resumed(s));
    if (!cg_tls_resumed(c)) { /* a resumed session presents no certificate */
        uint8_t hc[32], hs[32];
        cg_tls_cert_hash(c, hc);
        cg_tls_cert_hash(s, hs);
        assert_memory_equal(hc, hs, 32);
    }
}

/* Reads everything available on t into buf (at most cap); returns the last result. */
static long drain(struct cg_tls *t, uint8_t *buf, size_t cap, size_t *got)
{
    long r;
    *got = 0;
    while ((r = cg_tls_read(t, buf + *got, cap - *got)) > 0)
        *got += (size_t)r;
    return r;
}

static void exchange(struct cg_tls *c, struct cg_tls *s)
{
    uint8_t buf[256];
    size_t got;
    assert_int_equal(cg_tls_write(c, (const uint8_t *)"ping", 4), 4);
    move(c, s);
    assert_int_equal(drain(s, buf, sizeof(buf), &got), CG_TLS_WANT);
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "ping", 4);
    move(s, c);
    assert_int_equal(cg_tls_write(s, (const uint8_t *)"pong!", 5), 5);
    move(s, c);
    assert_int_equal(drain(c, buf, sizeof(buf), &got), CG_TLS_WANT);
    assert_int_equal(got, 5);
    assert_memory_equal(buf, "pong!", 5);
    move(c, s);
}

#endif
