#define TLS_FIXTURE_NAME "tls"
#include "tls_fixture.h"

/*
 * The transport alone: the client's certificate decided by a test verify callback. What the
 * client trusts is cp_fresh's (tests/unit/test_cp_fresh.c).
 */

/* ---- the verify callback under test ---- */

struct verifier {
    int calls;
    int reject; /* return CG_EPOLICY with a verdict */
    size_t der_len;
    uint8_t der_hash[32];
    uint8_t cert_hash[32];
    uint8_t spki[32];
    int sent_nonce;
};

static int verify(void *arg, struct cg_tls *t, const uint8_t *der, size_t der_len,
                  struct cg_verdict *verdict)
{
    struct verifier *v = arg;
    v->calls++;
    v->der_len = der_len;
    assert_non_null(EVP_Digest(der, der_len, v->der_hash, NULL, EVP_sha256(), NULL) == 1 ? der
                                                                                         : NULL);
    cg_tls_cert_hash(t, v->cert_hash);
    cg_tls_peer_spki(t, v->spki);
    v->sent_nonce = cg_tls_sent_nonce(t);
    if (v->reject)
        return cg_reject(verdict, CG_EPOLICY, "test.check", "accept", "rejected by the test");
    return 0;
}

/* Reads on the client after the handshake so that it processes the server's ticket. */
static void take_ticket(struct cg_tls *c, struct cg_tls *s)
{
    uint8_t buf[16];
    size_t got;
    move(s, c);
    (void)drain(c, buf, sizeof(buf), &got);
}

/* Ends both connections; close_notify first, or OpenSSL marks the client's session (and its
 * ticket) not resumable when the connection is freed. */
static void close_clean(struct cg_tls *c, struct cg_tls *s)
{
    cg_tls_shutdown(c);
    cg_tls_free(c);
    cg_tls_free(s);
}

/* The callback sees the certificate the server presented, its hash and its key; accepting
 * completes the handshake and data flows. */
static void test_verify_accepts(void **state)
{
    (void)state;
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    struct verifier v = {0};
    struct cg_tls_ctx *cctx;
    assert_int_equal(cg_tls_client_ctx_new(CG_ALPN_HTTP, verify, &v, &cctx), 0);
    struct cg_tls *c, *s = server_conn(&srv);
    assert_int_equal(cg_tls_new(cctx, 0, &c), 0);
    handshake_ok(c, s);
    assert_int_equal(v.calls, 1);
    assert_int_equal(v.der_len, srv.periodic_len);
    assert_memory_equal(v.der_hash, v.cert_hash, 32);
    uint8_t spki[32], peer[32];
    cg_ratls_key_spki_hash(srv.key, spki);
    assert_memory_equal(v.spki, spki, 32);
    cg_tls_peer_spki(c, peer);
    assert_memory_equal(peer, spki, 32);
    assert_false(v.sent_nonce);
    assert_false(srv.got_nonce);
    exchange(c, s);
    cg_tls_free(c);
    cg_tls_free(s);
    cg_tls_ctx_free(cctx);
    server_free(&srv);
}

/* A callback that refuses fails the handshake with its code and verdict; no byte flows and
 * no ticket is kept. */
static void test_verify_rejects(void **state)
{
    (void)state;
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    struct verifier v = {.reject = 1};
    struct cg_tls_ctx *cctx;
    assert_int_equal(cg_tls_client_ctx_new(CG_ALPN_HTTP, verify, &v, &cctx), 0);
    struct cg_tls *c, *s = server_conn(&srv);
    assert_int_equal(cg_tls_new(cctx, 0, &c), 0);
    int crc = CG_TLS_WANT, src = CG_TLS_WANT;
    pump(c, s, &crc, &src);
    assert_int_equal(crc, CG_EPOLICY);
    assert_int_equal(src, CG_ETLS);
    assert_string_equal(cg_tls_verdict(c)->check, "test.check");
    assert_string_equal(cg_tls_verdict(c)->expected, "accept");
    assert_int_equal(cg_tls_write(c, (const uint8_t *)"secret", 6), CG_ETLS);
    assert_int_equal(cg_tls_handshake(c), CG_EPOLICY); /* stays failed */
    uint8_t spki[32];
    time_t at;
    assert_false(cg_tls_ctx_ticket(cctx, spki, &at));
    cg_tls_free(c);
    cg_tls_free(s);
    cg_tls_ctx_free(cctx);
    server_free(&srv);
}

/* A ticket is kept only from an accepted handshake, with that key; it is offered only with
 * CG_TLS_TICKET (then no certificate and no callback), never with a nonce, and dropped on
 * request. */
static void test_ticket_from_verified_only(void **state)
{
    (void)state;
    struct server srv;
    server_init(&srv, CG_ALPN_HTTP, time(NULL));
    struct verifier v = {0};
    struct cg_tls_ctx *cctx;
    assert_int_equal(cg_tls_client_ctx_new(CG_ALPN_HTTP, verify, &v, &cctx), 0);
    struct cg_tls *c, *s = server_conn(&srv);
    assert_int_equal(cg_tls_new(cctx, 0, &c), 0);
    handshake_ok(c, s);
    take_ticket(c, s);
    uint8_t spki[32], key[32];
    time_t at;
    assert_true(cg_tls_ctx_ticket(cctx, spki, &at));
    cg_ratls_key_spki_hash(srv.key, key);
    assert_memory_equal(spki, key, 32);
    assert_true(at <= time(NULL) && time(NULL) - at < 60);
    close_clean(c, s);

    /* Without CG_TLS_TICKET: a full handshake, the callback asked again. */
    s = server_conn(&srv);
    assert_int_equal(cg_tls_new(cctx, 0, &c), 0);
    handshake_ok(c, s);
    assert_false(cg_tls_resumed(c));
    assert_int_equal(v.calls, 2);
    take_ticket(c, s);
    close_clean(c, s);

    /* With it: resumed, no certificate to decide on; the key is the ticket's. */
    s = server_conn(&srv);
    assert_int_equal(cg_tls_new(cctx, CG_TLS_TICKET, &c), 0);
    handshake_ok(c, s);
    assert_true(cg_tls_resumed(c));
    assert_int_equal(v.calls, 2);
    uint8_t peer[32];
    cg_tls_peer_spki(c, peer);
    assert_memory_equal(peer, key, 32);
    exchange(c, s);
    close_clean(c, s);

    /* A nonce wins over the ticket: fresh evidence, a full handshake. */
    s = server_conn(&srv);
    assert_int_equal(cg_tls_new(cctx, CG_TLS_NONCE | CG_TLS_TICKET, &c), 0);
    handshake_ok(c, s);
    assert_false(cg_tls_resumed(c));
    assert_true(srv.got_nonce);
    assert_memory_equal(srv.nonce, cg_tls_nonce(c), CG_NONCE_LEN);
    assert_true(v.sent_nonce);
    close_clean(c, s);

    cg_tls_ctx_drop_ticket(cctx);
    assert_false(cg_tls_ctx_ticket(cctx, spki, &at));
    s = server_conn(&srv);
    assert_int_equal(cg_tls_new(cctx, CG_TLS_TICKET, &c), 0);
    handshake_ok(c, s);
    assert_false(cg_tls_resumed(c));
    close_clean(c, s);
    cg_tls_ctx_free(cctx);
    server_free(&srv);
}

/* A client context needs a callback. */
static void test_verify_required(void **state)
{
    (void)state;
    struct cg_tls_ctx *cctx = NULL;
    assert_int_equal(cg_tls_client_ctx_new(CG_ALPN_HTTP, NULL, NULL, &cctx), CG_ECONFIG);
    assert_null(cctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_accepts),
        cmocka_unit_test(test_verify_rejects),
        cmocka_unit_test(test_ticket_from_verified_only),
        cmocka_unit_test(test_verify_required),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
