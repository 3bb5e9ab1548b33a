#define TLS_FIXTURE_NAME "fresh"
#include "tls_fixture.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ccgate/policy.h"
#include "cp_fresh.h"

/*
 * The client's freshness module (cp_fresh) deciding a real TLS client engine's certificates:
 * a client engine against a server engine in memory, every byte one side queues fed to the
 * other, with the real sim TEE, the real verifier and a policy parsed from JSON.
 */

/* The policy accepting this test's sim TEE; measurement_flip != 0 makes it expect another. */
static void make_policy_age(struct cg_policy *p, const char *freshness, int measurement_flip,
                            unsigned max_age_s)
{
    char ark[65], meas[97], json[1024], err[256];
    uint8_t m[48];
    memcpy(m, F.measurement, 48);
    m[0] ^= (uint8_t)measurement_flip;
    cg_hex(ark, sizeof(ark), F.ark, 32);
    cg_hex(meas, sizeof(meas), m, 48);
    snprintf(json, sizeof(json),
             "{\"sim\": {\"allow\": true, \"root_sha256\": \"%s\"},"
             " \"snp\": {\"measurements\": [\"%s\"]},"
             " \"freshness\": {\"mode\": \"%s\", \"max_age_s\": %u}}",
             ark, meas, freshness, max_age_s);
    int rc = cg_policy_parse(json, strlen(json), p, err, sizeof(err));
    if (rc != 0)
        fail_msg("policy: %s", err);
}

static void make_policy(struct cg_policy *p, const char *freshness, int measurement_flip)
{
    make_policy_age(p, freshness, measurement_flip, 600);
}

/* The client's appraisal failed with check; the server got no application byte. */
static void expect_refused(struct cg_tls *c, struct cg_tls *s, int want_rc, const char *check)
{
    int crc = CG_TLS_WANT, src = CG_TLS_WANT;
    pump(c, s, &crc, &src);
    const struct cg_verdict *v = cg_tls_verdict(c);
    if (crc != want_rc || strcmp(v->check, check) != 0)
        fail_msg("want %d %s, got %d %s (expected %s, actual %s)", want_rc, check, crc, v->check,
                 v->expected, v->actual);
    assert_int_equal(src, CG_ETLS);
    assert_int_equal(cg_tls_write(c, (const uint8_t *)"secret", 6), CG_ETLS);
    assert_int_equal(cg_tls_pending_out(c), 0);
    uint8_t buf[16];
    assert_int_equal(cg_tls_read(s, buf, sizeof(buf)), CG_ETLS);
    assert_int_equal(cg_tls_handshake(c), want_rc); /* stays failed */
}

static struct cp_fresh *client_ctx(struct cg_policy *p, const char *alpn)
{
    struct cp_fresh *f = malloc(sizeof(*f));
    assert_non_null(f);
    assert_int_equal(cp_fresh_init(f, alpn, "127.0.0.1:8443", p), 0);
    return f;
}

static void client_ctx_free(struct cp_fresh *f)
{
    cp_fresh_free(f);
    free(f);
}

/* ---- tests ---- */

static void test_nonce_handshake_data_close(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "nonce", 0);
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_HTTP);
    assert_true(cp_fresh_needs_nonce(cctx, time(NULL)));
    assert_null(cp_fresh_attestation(cctx));

    struct cg_tls *c, *s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    assert_true(cg_tls_sent_nonce(c));
    handshake_ok(c, s);
    assert_int_equal(srv.calls, 1);
    assert_true(srv.got_nonce);
    assert_false(cg_tls_resumed(c));
    const struct cg_attestation *att = cp_fresh_attestation(cctx);
    assert_non_null(att);
    assert_int_equal(att->tag, CG_TAG_SIM);
    assert_true(att->insecure);
    assert_true(att->nonce_matched);
    assert_memory_equal(att->snp.measurement, F.measurement, 48);
    uint8_t spki[32];
    cg_ratls_key_spki_hash(srv.key, spki);
    assert_memory_equal(att->spki_sha256, spki, 32);
    assert_false(cp_fresh_needs_nonce(cctx, time(NULL)));
    assert_true(cp_fresh_needs_nonce(cctx, time(NULL) + 601));

    exchange(c, s);
    /* A larger message crosses several records. */
    static uint8_t big[100000], back[100000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    assert_int_equal(cg_tls_write(s, big, sizeof(big)), (long)sizeof(big));
    move(s, c);
    size_t got;
    assert_int_equal(drain(c, back, sizeof(back), &got), CG_TLS_WANT);
    assert_int_equal(got, sizeof(big));
    assert_memory_equal(back, big, sizeof(big));

    /* close_notify from the client reaches the server as CG_TLS_CLOSED. */
    cg_tls_shutdown(c);
    assert_true(cg_tls_pending_out(c) > 0);
    move(c, s);
    uint8_t buf[16];
    assert_int_equal(drain(s, buf, sizeof(buf), &got), CG_TLS_CLOSED);
    assert_int_equal(got, 0);
    assert_int_equal(cg_tls_read(s, buf, sizeof(buf)), CG_TLS_CLOSED);
    assert_int_equal(cg_tls_write(c, (const uint8_t *)"late", 4), CG_ETLS);
    cg_tls_free(c);
    cg_tls_free(s);

    /* The client read the server's ticket: the next connection resumes, without evidence. */
    s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    assert_false(cg_tls_sent_nonce(c));
    handshake_ok(c, s);
    assert_true(cg_tls_resumed(c));
    assert_true(cg_tls_resumed(s));
    assert_false(srv.got_nonce);
    exchange(c, s);
    cg_tls_free(c);
    cg_tls_free(s);

    /* A connection with a nonce never resumes: it wants fresh evidence. */
    s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 1, &c), 0);
    assert_true(cg_tls_sent_nonce(c));
    handshake_ok(c, s);
    assert_false(cg_tls_resumed(c));
    assert_true(srv.got_nonce);
    cg_tls_free(c);
    cg_tls_free(s);

    /* Forgetting drops key and ticket: a nonce again, a full handshake. */
    cp_fresh_forget(cctx);
    assert_true(cp_fresh_needs_nonce(cctx, time(NULL)));
    s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    assert_true(cg_tls_sent_nonce(c));
    handshake_ok(c, s);
    assert_false(cg_tls_resumed(c));
    cg_tls_free(c);
    cg_tls_free(s);

    client_ctx_free(cctx);
    server_free(&srv);
}

static void test_pending(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "nonce", 0);
    struct server srv;
    server_init(&srv, CG_ALPN_TCP, time(NULL));
    srv.defer = 1;
    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_TCP);
    struct cg_tls *c, *s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);

    int crc = CG_TLS_WANT, src = CG_TLS_WANT;
    pump(c, s, &crc, &src);
    assert_int_equal(crc, CG_TLS_WANT);
    assert_int_equal(src, CG_TLS_PENDING);
    assert_int_equal(srv.calls, 1);
    assert_true(srv.got_nonce);
    /* Asked again before the certificate is there: still parked, the callback not re-run. */
    assert_int_equal(cg_tls_handshake(s), CG_TLS_PENDING);
    assert_int_equal(srv.calls, 1);

    answer(&srv, s);
    pump(c, s, &crc, &src);
    assert_int_equal(crc, 0);
    assert_int_equal(src, 0);
    assert_int_equal(srv.calls, 1);
    exchange(c, s);
    cg_tls_free(c);
    cg_tls_free(s);
    client_ctx_free(cctx);
    server_free(&srv);
}

static void test_key_memory_and_change(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "nonce", 0);
    struct server a, b;
    server_init(&a, CG_ALPN_HTTP, time(NULL));
    server_init(&b, CG_ALPN_HTTP, time(NULL));
    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_HTTP);

    /* Verified with a nonce; the client reads nothing, so it holds no ticket. */
    struct cg_tls *c, *s = server_conn(&a);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    handshake_ok(c, s);
    cg_tls_free(c);
    cg_tls_free(s);

    /* Same key, periodic certificate, no nonce: accepted by the key memory. */
    s = server_conn(&a);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    assert_false(cg_tls_sent_nonce(c));
    handshake_ok(c, s);
    assert_false(cg_tls_resumed(c));
    assert_false(a.got_nonce);
    assert_false(cp_fresh_key_changed(c));
    exchange(c, s);
    cg_tls_free(c);
    cg_tls_free(s);

    /* Another key (a restarted server) without a nonce: refused, reconnect with a nonce. */
    s = server_conn(&b);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    assert_false(cg_tls_sent_nonce(c));
    expect_refused(c, s, CG_EEVIDENCE, "freshness.key_changed");
    assert_true(cp_fresh_key_changed(c));
    cg_tls_free(c);
    cg_tls_free(s);

    s = server_conn(&b);
    assert_int_equal(cp_fresh_tls_new(cctx, 1, &c), 0);
    handshake_ok(c, s);
    assert_false(cp_fresh_key_changed(c));
    cg_tls_free(c);
    cg_tls_free(s);

    /* Now b's key is the one remembered, and a's is not. */
    s = server_conn(&b);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    assert_false(cg_tls_sent_nonce(c));
    handshake_ok(c, s);
    cg_tls_free(c);
    cg_tls_free(s);
    s = server_conn(&a);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    expect_refused(c, s, CG_EEVIDENCE, "freshness.key_changed");
    cg_tls_free(c);
    cg_tls_free(s);

    client_ctx_free(cctx);
    server_free(&a);
    server_free(&b);
}

/* One refused handshake of a fresh client (nonce mode unless said) against srv. */
static void refused(struct server *srv, struct cg_policy *p, int want_rc, const char *check)
{
    struct cp_fresh *cctx = client_ctx(p, CG_ALPN_HTTP);
    struct cg_tls *c, *s = server_conn(srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    expect_refused(c, s, want_rc, check);
    assert_null(cp_fresh_attestation(cctx));
    cg_tls_free(c);
    cg_tls_free(s);
    client_ctx_free(cctx);
}

static void test_other_nonce(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "nonce", 0);
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    srv.mode = OTHER_NONCE;
    refused(&srv, &p, CG_EEVIDENCE, "freshness.nonce");
    server_free(&srv);
}

static void test_wrong_measurement(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "nonce", 1);
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    refused(&srv, &p, CG_EPOLICY, "snp.measurement");
    server_free(&srv);
}

static void test_alpn_mismatch(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "nonce", 0);
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_TCP);
    struct cg_tls *c, *s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    int crc = CG_TLS_WANT, src = CG_TLS_WANT;
    pump(c, s, &crc, &src);
    assert_int_equal(crc, CG_ETLS);
    assert_int_equal(src, CG_ETLS);
    assert_int_equal(srv.calls, 0); /* refused before any evidence was asked for */
    assert_null(cp_fresh_attestation(cctx));
    cg_tls_free(c);
    cg_tls_free(s);
    client_ctx_free(cctx);
    server_free(&srv);
}

/* A certificate with the server's key and only the extensions given, re-signed. */
static void hand_cert(EVP_PKEY *key, const uint8_t *from, size_t from_len, int keep_exts,
                      size_t flip_at, uint8_t **der, size_t *len)
{
    const unsigned char *p = from;
    X509 *x = d2i_X509(NULL, &p, (long)from_len);
    assert_non_null(x);
    if (!keep_exts) {
        while (X509_get_ext_count(x) > 0)
            X509_EXTENSION_free(X509_delete_ext(x, 0));
    } else if (flip_at > 0) {
        ASN1_OBJECT *obj = OBJ_txt2obj(CG_OID_CMW, 1);
        X509_EXTENSION *e = X509_get_ext(x, X509_get_ext_by_OBJ(x, obj, -1));
        ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(e);
        assert_true((int)flip_at < ASN1_STRING_length(os));
        ((unsigned char *)ASN1_STRING_get0_data(os))[flip_at] ^= 1; /* re-encoded by signing */
        ASN1_OBJECT_free(obj);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    unsigned char *buf = NULL;
    int n = i2d_X509(x, &buf);
    assert_true(n > 0);
    *der = malloc((size_t)n);
    memcpy(*der, buf, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(buf);
    X509_free(x);
}

static void test_bad_certificates(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "nonce", 0);
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    EVP_PKEY *pk = cg__ratls_key_pkey(srv.key);
    srv.mode = FIXED;

    /* A plain self-signed certificate. */
    hand_cert(pk, srv.periodic, srv.periodic_len, 0, 0, &srv.fixed, &srv.fixed_len);
    refused(&srv, &p, CG_EEVIDENCE, "cert.extension");
    free(srv.fixed);

    /* One byte of the report inside the extension (tag head 5, array head 1, bstr head 3,
     * then the report; 0x90 is its measurement). */
    hand_cert(pk, srv.periodic, srv.periodic_len, 1, 9 + 0x90, &srv.fixed, &srv.fixed_len);
    refused(&srv, &p, CG_EEVIDENCE, "snp.signature");
    free(srv.fixed);

    /* Claims of another key in a certificate of this one. */
    struct cg_ratls_key *other;
    assert_int_equal(cg_ratls_key_new(&other), 0);
    struct mint m = {.claims_key = other, .iat = time(NULL)};
    mint(srv.key, &m, &srv.fixed, &srv.fixed_len);
    refused(&srv, &p, CG_EEVIDENCE, "claims.pubkey_hash");
    free(srv.fixed);
    cg_ratls_key_free(other);

    /* Evidence whose REPORT_DATA is not the claims' hash. */
    m = (struct mint){.iat = time(NULL), .corrupt_report_data = 1};
    mint(srv.key, &m, &srv.fixed, &srv.fixed_len);
    refused(&srv, &p, CG_EEVIDENCE, "evidence.report_data");
    /* srv.fixed is freed by server_free */
    server_free(&srv);
}

static void test_max_age(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "max-age", 0);
    assert_int_equal(p.freshness.mode, CG_FRESH_MAX_AGE);

    /* A recent periodic certificate is enough: no nonce is ever sent. */
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL) - 30);
    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_HTTP);
    assert_false(cp_fresh_needs_nonce(cctx, time(NULL)));
    struct cg_tls *c, *s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    assert_false(cg_tls_sent_nonce(c));
    handshake_ok(c, s);
    assert_false(srv.got_nonce);
    const struct cg_attestation *att = cp_fresh_attestation(cctx);
    assert_non_null(att);
    assert_false(att->nonce_matched);
    exchange(c, s);
    cg_tls_free(c);
    cg_tls_free(s);
    client_ctx_free(cctx);
    server_free(&srv);

    /* An old one is not. */
    server_init(&srv, CG_ALPN_HTTP, time(NULL) - 1000);
    refused(&srv, &p, CG_EEVIDENCE, "freshness.age");
    server_free(&srv);
}

/* A ticket belongs to the key it was issued under: once another key is remembered, the
 * ticket is gone, and the old server must show evidence again. */
static void test_ticket_follows_key(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "nonce", 0);
    struct server a, b;
    server_init(&a, CG_ALPN_HTTP, time(NULL));
    server_init(&b, CG_ALPN_HTTP, time(NULL));
    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_HTTP);

    struct cg_tls *c, *s = server_conn(&a);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    handshake_ok(c, s);
    exchange(c, s); /* the client reads a's ticket */
    cg_tls_free(c);
    cg_tls_free(s);

    s = server_conn(&b);
    assert_int_equal(cp_fresh_tls_new(cctx, 1, &c), 0);
    handshake_ok(c, s);
    cg_tls_free(c);
    cg_tls_free(s);

    s = server_conn(&a);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    assert_false(cg_tls_sent_nonce(c));
    expect_refused(c, s, CG_EEVIDENCE, "freshness.key_changed");
    assert_false(cg_tls_resumed(c));
    cg_tls_free(c);
    cg_tls_free(s);

    client_ctx_free(cctx);
    server_free(&a);
    server_free(&b);
}

static void test_policy_swap(void **state)
{
    (void)state;
    struct cg_policy p, same, other;
    make_policy(&p, "nonce", 0);
    make_policy(&same, "nonce", 0);
    make_policy(&other, "max-age", 0);
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_HTTP);
    struct cg_tls *c, *s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    handshake_ok(c, s);
    cg_tls_free(c);
    cg_tls_free(s);
    assert_false(cp_fresh_needs_nonce(cctx, time(NULL)));

    /* The same policy again (same file bytes): the verification still stands. */
    cp_fresh_set_policy(cctx, &same);
    assert_false(cp_fresh_needs_nonce(cctx, time(NULL)));
    /* Another policy: verify again (back in nonce mode, a nonce is needed). */
    cp_fresh_set_policy(cctx, &other);
    cp_fresh_set_policy(cctx, &p);
    assert_true(cp_fresh_needs_nonce(cctx, time(NULL)));
    assert_non_null(cp_fresh_attestation(cctx)); /* the last verification, for reports */
    client_ctx_free(cctx);
    server_free(&srv);
}

/* max-age mode remembers verified certificates by hash: servers taking turns behind one name
 * cost one appraisal each. Shown by tightening the policy in place (same digest): a cached
 * certificate still passes, a new one is appraised and refused. */
static void test_max_age_cache(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "max-age", 0);
    struct server a, b, n;
    server_init(&a, CG_ALPN_HTTP, time(NULL));
    server_init(&b, CG_ALPN_HTTP, time(NULL));
    server_init(&n, CG_ALPN_HTTP, time(NULL));
    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_HTTP);
    struct server *order[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        struct cg_tls *c, *s = server_conn(order[i]);
        assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
        handshake_ok(c, s);
        cg_tls_free(c);
        cg_tls_free(s);
    }
    p.sim.allow = 0;
    struct cg_tls *c, *s = server_conn(&a);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    handshake_ok(c, s);
    assert_false(cg_tls_resumed(c));
    cg_tls_free(c);
    cg_tls_free(s);
    s = server_conn(&n);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    expect_refused(c, s, CG_EPOLICY, "evidence.tee");
    cg_tls_free(c);
    cg_tls_free(s);
    client_ctx_free(cctx);
    server_free(&a);
    server_free(&b);
    server_free(&n);
}

static void test_misuse_and_server_errors(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "nonce", 0);
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_HTTP);
    struct cg_tls *c, *s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);

    /* No plaintext either way before the handshake. */
    uint8_t buf[16];
    assert_int_equal(cg_tls_write(c, (const uint8_t *)"early", 5), CG_ETLS);
    assert_int_equal(cg_tls_read(s, buf, sizeof(buf)), CG_ETLS);
    cg_tls_shutdown(c);
    assert_int_equal(cg_tls_pending_out(c), 0);

    /* Certificates the server engine refuses: not DER, not the key's, a client engine. */
    assert_int_equal(cg_tls_use_cert(s, (const uint8_t *)"\x30\x00", 2, srv.key), CG_ETLS);
    struct cg_ratls_key *other;
    assert_int_equal(cg_ratls_key_new(&other), 0);
    assert_int_equal(cg_tls_use_cert(s, srv.periodic, srv.periodic_len, other), CG_ETLS);
    assert_int_equal(cg_tls_use_cert(c, srv.periodic, srv.periodic_len, srv.key), CG_ETLS);
    cg_ratls_key_free(other);
    cg_tls_free(c);
    cg_tls_free(s);

    /* The evidence request failed: the handshake fails on both sides. */
    srv.mode = NO_EVIDENCE;
    s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    int crc = CG_TLS_WANT, src = CG_TLS_WANT;
    pump(c, s, &crc, &src);
    assert_int_equal(crc, CG_ETLS);
    assert_int_equal(src, CG_ETLS);
    assert_string_equal(cg_tls_verdict(c)->check, "tls.handshake");
    assert_null(cp_fresh_attestation(cctx));
    cg_tls_free(c);
    cg_tls_free(s);
    client_ctx_free(cctx);
    server_free(&srv);
}

/* Past max_age_s, neither the remembered key nor its ticket is used: evidence again. */
static void test_memory_expires(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy_age(&p, "nonce", 0, 1);
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_HTTP);
    struct cg_tls *c, *s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    handshake_ok(c, s);
    exchange(c, s); /* the ticket arrives */
    cg_tls_free(c);
    cg_tls_free(s);

    sleep(2);
    assert_true(cp_fresh_needs_nonce(cctx, time(NULL)));
    s = server_conn(&srv);
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    assert_true(cg_tls_sent_nonce(c));
    handshake_ok(c, s);
    assert_false(cg_tls_resumed(c));
    assert_true(srv.got_nonce);
    cg_tls_free(c);
    cg_tls_free(s);
    client_ctx_free(cctx);
    server_free(&srv);
}

/* ---- clients that are not ccgate ---- */

struct raw {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *in, *out;
};

static int add_short_nonce(SSL *ssl, unsigned int type, unsigned int context,
                           const unsigned char **out, size_t *outlen, X509 *x, size_t chainidx,
                           int *al, void *arg)
{
    (void)ssl;
    (void)type;
    (void)context;
    (void)x;
    (void)chainidx;
    (void)al;
    (void)arg;
    static const unsigned char nonce[CG_NONCE_LEN - 1];
    *out = nonce;
    *outlen = sizeof(nonce);
    return 1;
}

static void raw_new(struct raw *r, int max_version, int short_nonce)
{
    r->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(r->ctx);
    assert_int_equal(SSL_CTX_set_max_proto_version(r->ctx, max_version), 1);
    if (short_nonce)
        assert_int_equal(SSL_CTX_add_custom_ext(r->ctx, CG_TLS_NONCE_EXT, SSL_EXT_CLIENT_HELLO,
                                                add_short_nonce, NULL, NULL, NULL, NULL),
                         1);
    r->ssl = SSL_new(r->ctx);
    r->in = BIO_new(BIO_s_mem());
    r->out = BIO_new(BIO_s_mem());
    SSL_set_bio(r->ssl, r->in, r->out);
    SSL_set_connect_state(r->ssl);
}

static void raw_free(struct raw *r)
{
    SSL_free(r->ssl);
    SSL_CTX_free(r->ctx);
}

/* Runs the foreign client against the server engine; returns the server's result. */
static int raw_pump(struct raw *r, struct cg_tls *s)
{
    int src = CG_TLS_WANT;
    for (int i = 0; i < 64; i++) {
        (void)SSL_do_handshake(r->ssl);
        uint8_t buf[4096];
        size_t moved = 0;
        int n;
        while ((n = BIO_read(r->out, buf, sizeof(buf))) > 0) {
            assert_int_equal(cg_tls_feed(s, buf, (size_t)n), 0);
            moved += (size_t)n;
        }
        if (waiting(src))
            src = cg_tls_handshake(s);
        size_t m;
        while ((m = cg_tls_take_out(s, buf, sizeof(buf))) > 0) {
            BIO_write(r->in, buf, (int)m);
            moved += m;
        }
        if (moved == 0)
            break;
    }
    return src;
}

static void test_foreign_clients(void **state)
{
    (void)state;
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    struct raw r;

    /* TLS 1.2 only: refused, and no evidence asked for. */
    raw_new(&r, TLS1_2_VERSION, 0);
    struct cg_tls *s = server_conn(&srv);
    assert_int_equal(raw_pump(&r, s), CG_ETLS);
    assert_int_not_equal(SSL_is_init_finished(r.ssl), 1);
    assert_int_equal(srv.calls, 0);
    cg_tls_free(s);
    raw_free(&r);

    /* A nonce of 31 bytes. */
    raw_new(&r, TLS1_3_VERSION, 1);
    s = server_conn(&srv);
    assert_int_equal(raw_pump(&r, s), CG_ETLS);
    assert_int_equal(srv.calls, 0);
    cg_tls_free(s);
    raw_free(&r);

    /* Control: a plain TLS 1.3 client without ALPN (openssl s_client) gets the periodic
     * certificate, which it cannot verify but the handshake completes. */
    raw_new(&r, TLS1_3_VERSION, 0);
    s = server_conn(&srv);
    assert_int_equal(raw_pump(&r, s), 0);
    assert_int_equal(SSL_is_init_finished(r.ssl), 1);
    assert_int_equal(srv.calls, 1);
    assert_false(srv.got_nonce);
    cg_tls_free(s);
    raw_free(&r);

    server_free(&srv);
}

/* A server that ignores ALPN (not ccgate) but shows a valid attested certificate: the client
 * still refuses, after the certificate checks, with tls.alpn. */
static void test_server_without_alpn(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "max-age", 0);
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(sctx);
    assert_int_equal(SSL_CTX_use_certificate_ASN1(sctx, (int)srv.periodic_len, srv.periodic), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(sctx, cg__ratls_key_pkey(srv.key)), 1);
    SSL *ssl = SSL_new(sctx);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, in, out);
    SSL_set_accept_state(ssl);

    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_HTTP);
    struct cg_tls *c;
    assert_int_equal(cp_fresh_tls_new(cctx, 0, &c), 0);
    int crc = CG_TLS_WANT;
    for (int i = 0; i < 64 && crc == CG_TLS_WANT; i++) {
        uint8_t buf[4096];
        size_t n;
        crc = cg_tls_handshake(c);
        while ((n = cg_tls_take_out(c, buf, sizeof(buf))) > 0)
            BIO_write(in, buf, (int)n);
        (void)SSL_do_handshake(ssl);
        int m;
        while ((m = BIO_read(out, buf, sizeof(buf))) > 0)
            assert_int_equal(cg_tls_feed(c, buf, (size_t)m), 0);
    }
    assert_int_equal(crc, CG_ETLS);
    assert_string_equal(cg_tls_verdict(c)->check, "tls.alpn");
    assert_string_equal(cg_tls_verdict(c)->expected, CG_ALPN_HTTP);
    assert_int_equal(cg_tls_write(c, (const uint8_t *)"secret", 6), CG_ETLS);
    cg_tls_free(c);
    client_ctx_free(cctx);
    SSL_free(ssl);
    SSL_CTX_free(sctx);
    server_free(&srv);
}

/* A certificate made for a batch of nonces serves each handshake of the batch (the later ones
 * from the cache of full appraisals) and never a handshake whose nonce it does not name. */
static void test_batch_certificate(void **state)
{
    (void)state;
    struct cg_policy p;
    make_policy(&p, "nonce", 0);
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    srv.defer = 1;
    struct cp_fresh *cctx = client_ctx(&p, CG_ALPN_HTTP);

    struct cg_tls *c[3], *s[3];
    int crc[3], src[3];
    uint8_t nonces[3][CG_NONCE_LEN];
    for (int i = 0; i < 3; i++) {
        s[i] = server_conn(&srv);
        assert_int_equal(cp_fresh_tls_new(cctx, 1, &c[i]), 0);
        assert_true(cg_tls_sent_nonce(c[i]));
        memcpy(nonces[i], cg_tls_nonce(c[i]), CG_NONCE_LEN);
        crc[i] = src[i] = CG_TLS_WANT;
        pump(c[i], s[i], &crc[i], &src[i]);
        assert_int_equal(src[i], CG_TLS_PENDING);
        assert_memory_equal(srv.nonce, nonces[i], CG_NONCE_LEN);
    }

    /* One evidence request for the first two nonces only. */
    uint8_t *claims, *der;
    size_t claims_len, der_len;
    uint8_t rd[CG_REPORT_DATA_LEN];
    struct cg_evidence ev = {0};
    assert_int_equal(cg_ratls_claims(srv.key, (const uint8_t(*)[CG_NONCE_LEN])nonces, 2, time(NULL),
                                     &claims, &claims_len, rd),
                     0);
    assert_int_equal(F.prov->get(F.prov, rd, &ev), 0);
    assert_int_equal(
        cg_ratls_cert_new(srv.key, claims, claims_len, &ev, time(NULL), 3600, &der, &der_len), 0);
    cg_evidence_clear(&ev);
    free(claims);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(cg_tls_use_cert(s[i], der, der_len, srv.key), 0);
        src[i] = CG_TLS_WANT;
        pump(c[i], s[i], &crc[i], &src[i]);
    }
    assert_int_equal(crc[0], 0);
    assert_int_equal(crc[1], 0);
    assert_int_equal(crc[2], CG_EEVIDENCE);
    assert_string_equal(cg_tls_verdict(c[2])->check, "freshness.nonce");
    exchange(c[1], s[1]);

    for (int i = 0; i < 3; i++) {
        cg_tls_free(c[i]);
        cg_tls_free(s[i]);
    }
    free(der);
    client_ctx_free(cctx);
    server_free(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonce_handshake_data_close),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_key_memory_and_change),
        cmocka_unit_test(test_other_nonce),
        cmocka_unit_test(test_wrong_measurement),
        cmocka_unit_test(test_alpn_mismatch),
        cmocka_unit_test(test_bad_certificates),
        cmocka_unit_test(test_max_age),
        cmocka_unit_test(test_foreign_clients),
        cmocka_unit_test(test_ticket_follows_key),
        cmocka_unit_test(test_policy_swap),
        cmocka_unit_test(test_max_age_cache),
        cmocka_unit_test(test_misuse_and_server_errors),
        cmocka_unit_test(test_memory_expires),
        cmocka_unit_test(test_server_without_alpn),
        cmocka_unit_test(test_batch_certificate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
