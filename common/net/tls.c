#include "ccgate/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define CIPHERSUITES "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
#define GROUPS "X25519:P-256"
#define TLS13_WIRE_VERSION 0x0304
/* A memory BIO keeps the capacity of the most it ever held. After the handshake (whose
 * certificate flight carries the evidence: kilobytes to a hundred), an empty one holding more
 * than this is replaced by a fresh one, once. Later the stream moves at most about one record
 * at a time through each, so they stay near a record's size; replacing them per record would
 * only churn the allocator. */
#define BIO_KEEP_MAX 4096
/* Evidence, claims (GPU evidence included) and endorsements at their limits, plus the
 * certificate around them. */
#define CLIENT_MAX_CERT_LIST                                                                       \
    (CG_EVIDENCE_MAX_BYTES + CG_CLAIMS_MAX_BYTES + CG_ENDORSEMENTS_MAX_BYTES + 64 * 1024)

struct cg_tls_ctx {
    SSL_CTX *ssl_ctx;
    int server;
    char alpn[256];
    uint8_t alpn_wire[256]; /* length-prefixed, as on the wire */
    size_t alpn_wire_len;
    /* server */
    cg_tls_cert_cb cb;
    void *cb_arg;
    X509 *cert; /* the certificate parsed last, shared by the connections presenting it */
    const struct cg_ratls_key *cert_key;
    uint8_t cert_hash[32];
    /* client */
    cg_tls_verify_cb verify;
    void *verify_arg;
    SSL_SESSION *ticket; /* only ever from a verified session, of the key ticket_spki */
    uint8_t ticket_spki[32];
    time_t ticket_time;
};

enum cb_state { CB_NOT_ASKED, CB_ASKED };

struct cg_tls {
    struct cg_tls_ctx *ctx;
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    void *data;
    int done, fatal, closed, shut;
    unsigned trim; /* BIOs still to trim after the handshake: 1 read, 2 write */
    int fatal_rc;
    struct cg_verdict verdict;
    uint8_t cert_hash[32];
    /* server */
    enum cb_state cb_state;
    int cert_set;
    /* client */
    int sent_nonce;
    uint8_t nonce[CG_NONCE_LEN];
    int offered_ticket;
    uint8_t offered_spki[32];
    int verified;
    int verify_rc;
    uint8_t spki[32];
    uint8_t *peer_der; /* capture contexts */
    size_t peer_der_len;
};

static BIO *new_mem_bio(int is_read)
{
    BIO *b = BIO_new(BIO_s_mem());
    /* An empty input BIO means "retry later", never EOF: EOF is the caller's to detect. */
    if (b != NULL && is_read)
        BIO_set_mem_eof_return(b, -1);
    return b;
}

/* After the handshake, once: gives back an empty memory BIO's storage when the handshake
 * made it grow past BIO_KEEP_MAX. */
static void trim_bio(struct cg_tls *t, int is_read)
{
    unsigned bit = is_read ? 1u : 2u;
    BIO *b = is_read ? t->rbio : t->wbio;
    BUF_MEM *bm = NULL;
    if (!t->done || !(t->trim & bit) || BIO_ctrl_pending(b) != 0)
        return;
    t->trim &= ~bit;
    if (BIO_get_mem_ptr(b, &bm) != 1 || bm == NULL || bm->max <= BIO_KEEP_MAX)
        return;
    BIO *fresh = new_mem_bio(is_read);
    if (fresh == NULL)
        return; /* keep the old one: correct, only larger */
    if (is_read) {
        SSL_set0_rbio(t->ssl, fresh);
        t->rbio = fresh;
    } else {
        SSL_set0_wbio(t->ssl, fresh);
        t->wbio = fresh;
    }
}

/* ERR_clear_error() before and after each SSL call (STYLE.md), without its cost (about 800
 * instructions, several times per request) when the queue is already empty, as it nearly
 * always is. */
static void clear_errors(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

static int sha256(const uint8_t *d, size_t n, uint8_t out[32])
{
    return EVP_Digest(d, n, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : CG_ECRYPTO;
}

/* ---- server ---------------------------------------------------------------------------- */

/* Whether the protocol-name list (RFC 7301) in[0..inlen) names ours; where, in *at. */
static int alpn_offered(const struct cg_tls_ctx *c, const unsigned char *in, size_t inlen,
                        const unsigned char **at)
{
    for (size_t i = 0; i < inlen;) {
        size_t n = in[i];
        if (n == 0 || i + 1 + n > inlen)
            return 0;
        if (n + 1 == c->alpn_wire_len && memcmp(in + i, c->alpn_wire, n + 1) == 0) {
            *at = in + i + 1;
            return 1;
        }
        i += 1 + n;
    }
    return 0;
}

/* Whether the ClientHello offers TLS 1.3, so that a client we will refuse anyway never makes
 * the server produce evidence. */
static int offers_tls13(SSL *ssl)
{
    const unsigned char *p;
    size_t n;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &n) != 1 || n < 1 ||
        p[0] != n - 1 || (n - 1) % 2 != 0)
        return 0;
    for (size_t i = 1; i + 1 < n; i += 2)
        if ((p[i] << 8 | p[i + 1]) == TLS13_WIRE_VERSION)
            return 1;
    return 0;
}

static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
    struct cg_tls_ctx *c = arg;
    struct cg_tls *t = SSL_get_app_data(ssl);
    if (t->cert_set)
        return SSL_CLIENT_HELLO_SUCCESS;
    if (t->cb_state == CB_ASKED)
        return SSL_CLIENT_HELLO_RETRY; /* still waiting for cg_tls_use_cert() */
    if (!offers_tls13(ssl)) {
        *al = SSL_AD_PROTOCOL_VERSION;
        return SSL_CLIENT_HELLO_ERROR;
    }
    /* A client offering ALPN without our protocol would fail later in alpn_select_cb; refuse
     * it before it costs evidence. */
    const unsigned char *alpn, *at;
    size_t alpn_len;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &alpn,
                                  &alpn_len) == 1 &&
        (alpn_len < 2 || (size_t)(alpn[0] << 8 | alpn[1]) != alpn_len - 2 ||
         !alpn_offered(c, alpn + 2, alpn_len - 2, &at))) {
        *al = SSL_AD_NO_APPLICATION_PROTOCOL;
        return SSL_CLIENT_HELLO_ERROR;
    }
    const unsigned char *nonce = NULL;
    size_t nonce_len = 0;
    if (SSL_client_hello_get0_ext(ssl, CG_TLS_NONCE_EXT, &nonce, &nonce_len) == 1 &&
        nonce_len != CG_NONCE_LEN) {
        *al = SSL_AD_ILLEGAL_PARAMETER;
        return SSL_CLIENT_HELLO_ERROR;
    }
    t->cb_state = CB_ASKED;
    int rc = c->cb(c->cb_arg, t, nonce);
    /* Whatever the callback left on OpenSSL's error queue would make SSL_get_error() report
     * this handshake's next WANT_READ as a fatal error. */
    clear_errors();
    if (rc == CG_TLS_PENDING)
        return SSL_CLIENT_HELLO_RETRY;
    if (rc != 0 || !t->cert_set) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Registered so that OpenSSL keeps the nonce extension for SSL_client_hello_get0_ext() (it
 * drops unknown ones); the client hello callback has checked it by now. */
static int nonce_parse_cb(SSL *ssl, unsigned int ext_type, unsigned int context,
                          const unsigned char *in, size_t inlen, X509 *x, size_t chainidx, int *al,
                          void *parse_arg)
{
    (void)ssl;
    (void)ext_type;
    (void)context;
    (void)in;
    (void)x;
    (void)chainidx;
    (void)parse_arg;
    if (inlen != CG_NONCE_LEN) {
        *al = SSL_AD_ILLEGAL_PARAMETER;
        return 0;
    }
    return 1;
}

static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    struct cg_tls_ctx *c = arg;
    if (!alpn_offered(c, in, inlen, out))
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol */
    *outlen = (unsigned char)(c->alpn_wire_len - 1);
    return SSL_TLSEXT_ERR_OK;
}

/* ---- client ---------------------------------------------------------------------------- */

static int nonce_add_cb(SSL *ssl, unsigned int ext_type, unsigned int context,
                        const unsigned char **out, size_t *outlen, X509 *x, size_t chainidx,
                        int *al, void *add_arg)
{
    (void)ext_type;
    (void)context;
    (void)x;
    (void)chainidx;
    (void)al;
    (void)add_arg;
    struct cg_tls *t = SSL_get_app_data(ssl);
    if (t == NULL || !t->sent_nonce)
        return 0; /* leave the extension out */
    *out = t->nonce;
    *outlen = CG_NONCE_LEN;
    return 1;
}

/* Capture contexts: trust nothing, keep the certificate for the caller to verify. */
static int capture_verify(void *arg, struct cg_tls *t, const uint8_t *der, size_t der_len,
                          struct cg_verdict *verdict)
{
    (void)arg;
    (void)verdict;
    t->peer_der = malloc(der_len);
    if (t->peer_der == NULL)
        return -ENOMEM;
    memcpy(t->peer_der, der, der_len);
    t->peer_der_len = der_len;
    return 0;
}

static int cert_verify_cb(X509_STORE_CTX *sctx, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct cg_tls *t = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(sctx);
    unsigned char *der = NULL;
    int len, rc = CG_ECRYPTO;
    if (t == NULL)
        return 0;
    if (leaf == NULL || (len = i2d_X509(leaf, &der)) <= 0)
        goto out;
    if (sha256(der, (size_t)len, t->cert_hash) != 0 ||
        cg__ratls_spki_sha256(X509_get0_pubkey(leaf), t->spki) != 0)
        goto out;
    rc = t->ctx->verify(t->ctx->verify_arg, t, der, (size_t)len, &t->verdict);
out:
    OPENSSL_free(der);
    clear_errors();
    if (rc != 0) {
        if (t->verdict.check[0] == '\0')
            cg_reject(&t->verdict, rc, "cert.parse", "a certificate", "unreadable");
        t->verify_rc = rc;
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    t->verified = 1;
    return 1;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct cg_tls *t = SSL_get_app_data(ssl);
    struct cg_tls_ctx *c = t->ctx;
    if (!t->verified || t->fatal)
        return 0; /* OpenSSL frees it */
    SSL_SESSION_free(c->ticket);
    c->ticket = sess;
    memcpy(c->ticket_spki, t->spki, 32);
    c->ticket_time = time(NULL);
    return 1;
}

/* ---- contexts -------------------------------------------------------------------------- */

static int ctx_new(int server, const char *alpn, struct cg_tls_ctx **out)
{
    size_t n = alpn != NULL ? strlen(alpn) : 0;
    if (n == 0 || n > 255)
        return CG_ECONFIG;
    struct cg_tls_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->server = server;
    memcpy(c->alpn, alpn, n + 1);
    c->alpn_wire[0] = (uint8_t)n;
    memcpy(c->alpn_wire + 1, alpn, n);
    c->alpn_wire_len = n + 1;
    clear_errors();
    c->ssl_ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (c->ssl_ctx == NULL || SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(c->ssl_ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(c->ssl_ctx, CIPHERSUITES) != 1 ||
        SSL_CTX_set1_groups_list(c->ssl_ctx, GROUPS) != 1) {
        cg_tls_ctx_free(c);
        clear_errors();
        return CG_ETLS;
    }
    SSL_CTX_set_options(c->ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* An idle connection keeps no record buffers (about 34 KiB each otherwise). */
    SSL_CTX_set_mode(c->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_app_data(c->ssl_ctx, c);
    *out = c;
    return 0;
}

int cg_tls_server_ctx_new(const char *alpn, cg_tls_cert_cb cb, void *cb_arg,
                          struct cg_tls_ctx **out)
{
    struct cg_tls_ctx *c;
    if (cb == NULL)
        return CG_ECONFIG;
    int rc = ctx_new(1, alpn, &c);
    if (rc != 0)
        return rc;
    c->cb = cb;
    c->cb_arg = cb_arg;
    SSL_CTX_set_client_hello_cb(c->ssl_ctx, client_hello_cb, c);
    SSL_CTX_set_alpn_select_cb(c->ssl_ctx, alpn_select_cb, c);
    SSL_CTX_set_num_tickets(c->ssl_ctx, 1);
    SSL_CTX_set_options(c->ssl_ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_add_custom_ext(c->ssl_ctx, CG_TLS_NONCE_EXT,
                               SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_ONLY, NULL, NULL, NULL,
                               nonce_parse_cb, NULL) != 1) {
        cg_tls_ctx_free(c);
        clear_errors();
        return CG_ETLS;
    }
    *out = c;
    return 0;
}

int cg_tls_client_ctx_new(const char *alpn, cg_tls_verify_cb verify, void *verify_arg,
                          struct cg_tls_ctx **out)
{
    struct cg_tls_ctx *c;
    if (verify == NULL)
        return CG_ECONFIG;
    int rc = ctx_new(0, alpn, &c);
    if (rc != 0)
        return rc;
    c->verify = verify;
    c->verify_arg = verify_arg;
    SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(c->ssl_ctx, cert_verify_cb, c);
    SSL_CTX_set_session_cache_mode(c->ssl_ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c->ssl_ctx, new_session_cb);
    /* The default 100 KiB would refuse certificates that carry TDX collateral. */
    SSL_CTX_set_max_cert_list(c->ssl_ctx, CLIENT_MAX_CERT_LIST);
    /* SSL_CTX_set_alpn_protos returns 0 on success. */
    if (SSL_CTX_set_alpn_protos(c->ssl_ctx, c->alpn_wire, (unsigned)c->alpn_wire_len) != 0 ||
        SSL_CTX_add_custom_ext(c->ssl_ctx, CG_TLS_NONCE_EXT,
                               SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_ONLY, nonce_add_cb, NULL, NULL,
                               NULL, NULL) != 1) {
        cg_tls_ctx_free(c);
        clear_errors();
        return CG_ETLS;
    }
    *out = c;
    return 0;
}

int cg_tls_client_ctx_new_capture(const char *alpn, struct cg_tls_ctx **out)
{
    return cg_tls_client_ctx_new(alpn, capture_verify, NULL, out);
}

int cg_tls_ctx_ticket(const struct cg_tls_ctx *c, uint8_t spki[32], time_t *stored_at)
{
    if (c->ticket == NULL || !SSL_SESSION_is_resumable(c->ticket))
        return 0;
    memcpy(spki, c->ticket_spki, 32);
    *stored_at = c->ticket_time;
    return 1;
}

void cg_tls_ctx_drop_ticket(struct cg_tls_ctx *c)
{
    SSL_SESSION_free(c->ticket);
    c->ticket = NULL;
}

void cg_tls_ctx_free(struct cg_tls_ctx *c)
{
    if (c == NULL)
        return;
    SSL_SESSION_free(c->ticket);
    X509_free(c->cert);
    SSL_CTX_free(c->ssl_ctx);
    free(c);
}

/* ---- connections ----------------------------------------------------------------------- */

int cg_tls_new(struct cg_tls_ctx *c, unsigned flags, struct cg_tls **out)
{
    struct cg_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    t->ctx = c;
    clear_errors();
    t->ssl = SSL_new(c->ssl_ctx);
    BIO *rbio = new_mem_bio(1), *wbio = new_mem_bio(0);
    if (t->ssl == NULL || rbio == NULL || wbio == NULL) {
        BIO_free(rbio);
        BIO_free(wbio);
        goto fail;
    }
    SSL_set_bio(t->ssl, rbio, wbio);
    t->rbio = rbio;
    t->wbio = wbio;
    SSL_set_app_data(t->ssl, t);
    if (c->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (flags & CG_TLS_NONCE) {
            if (RAND_bytes(t->nonce, sizeof(t->nonce)) != 1)
                goto fail;
            t->sent_nonce = 1;
        } else if ((flags & CG_TLS_TICKET) && c->ticket != NULL &&
                   SSL_SESSION_is_resumable(c->ticket)) {
            if (SSL_set_session(t->ssl, c->ticket) != 1)
                goto fail;
            t->offered_ticket = 1;
            memcpy(t->offered_spki, c->ticket_spki, 32);
        }
    }
    *out = t;
    return 0;
fail:
    SSL_free(t->ssl);
    free(t);
    clear_errors();
    return CG_ETLS;
}

void cg_tls_free(struct cg_tls *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    free(t->peer_der);
    free(t);
}

void cg_tls_set_data(struct cg_tls *t, void *data)
{
    t->data = data;
}

void *cg_tls_get_data(const struct cg_tls *t)
{
    return t->data;
}

int cg_tls_use_cert(struct cg_tls *t, const uint8_t *der, size_t der_len,
                    const struct cg_ratls_key *key)
{
    struct cg_tls_ctx *c = t->ctx;
    if (!c->server || t->cert_set || der_len > LONG_MAX)
        return CG_ETLS;
    if (sha256(der, der_len, t->cert_hash) != 0)
        return CG_ETLS;
    clear_errors();
    /* Every connection given the same certificate shares one parsed X509 (a reference): a
     * certificate carrying evidence costs about 11 KiB parsed, per connection otherwise. */
    int cached =
        c->cert != NULL && c->cert_key == key && memcmp(c->cert_hash, t->cert_hash, 32) == 0;
    X509 *x = c->cert;
    if (!cached) {
        const unsigned char *p = der;
        x = d2i_X509(NULL, &p, (long)der_len);
        if (x == NULL || p != der + der_len) {
            X509_free(x);
            clear_errors();
            return CG_ETLS;
        }
    }
    int ok = SSL_use_certificate(t->ssl, x) == 1 &&
             SSL_use_PrivateKey(t->ssl, cg__ratls_key_pkey(key)) == 1 &&
             (cached || SSL_check_private_key(t->ssl) == 1);
    clear_errors();
    if (!ok) {
        if (!cached)
            X509_free(x);
        return CG_ETLS;
    }
    if (!cached) {
        X509_free(c->cert);
        c->cert = x; /* the context's reference; the connection took its own */
        c->cert_key = key;
        memcpy(c->cert_hash, t->cert_hash, 32);
    }
    t->cert_set = 1;
    return 0;
}

int cg_tls_feed(struct cg_tls *t, const uint8_t *data, size_t len)
{
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        clear_errors();
        int w = BIO_write(t->rbio, data, n);
        if (w <= 0)
            return -ENOMEM;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Marks the connection dead: no SSL_shutdown and no further SSL call after this. */
static int set_fatal(struct cg_tls *t, int rc)
{
    t->fatal = 1;
    t->fatal_rc = rc;
    return rc;
}

static int fail_tls(struct cg_tls *t, const char *what)
{
    if (t->verdict.check[0] == '\0') {
        unsigned long e = ERR_peek_last_error();
        const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
        /* The usual mistakes, said in words: a port that is not TLS, or the two sidecars in
         * different --mode (each offers its mode as the ALPN protocol). */
        if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER && !t->ctx->server)
            cg_reject(&t->verdict, CG_ETLS, "tls.handshake", what,
                      "not TLS: the peer answered something else (a plain HTTP port? the server "
                      "address must be a ccgate-server listener)");
        else if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
                 ERR_GET_REASON(e) == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL)
            cg_reject(&t->verdict, CG_ETLS, "tls.handshake", what,
                      "the peer refused ALPN \"%s\": the two sidecars run different --mode "
                      "(http or tcp)",
                      t->ctx->alpn);
        else if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
                 ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST && t->ctx->server)
            cg_reject(&t->verdict, CG_ETLS, "tls.handshake", what,
                      "a plain HTTP request: the peer is no ccgate-client (apps talk to "
                      "ccgate-client, which speaks RA-TLS to this port)");
        else
            cg_reject(&t->verdict, CG_ETLS, "tls.handshake", what, "%s",
                      reason != NULL ? reason : "connection failed");
    }
    clear_errors();
    return set_fatal(t, CG_ETLS);
}

/* Client, once OpenSSL reports the handshake complete: ALPN, and how the key was vouched for. */
static int client_finish(struct cg_tls *t)
{
    const unsigned char *proto = NULL;
    unsigned int proto_len = 0;
    SSL_get0_alpn_selected(t->ssl, &proto, &proto_len);
    if (proto_len + 1 != t->ctx->alpn_wire_len ||
        memcmp(proto, t->ctx->alpn_wire + 1, proto_len) != 0) {
        if (proto_len == 0)
            cg_reject(&t->verdict, CG_ETLS, "tls.alpn", t->ctx->alpn, "none");
        else
            cg_reject(&t->verdict, CG_ETLS, "tls.alpn", t->ctx->alpn, "%.*s", (int)proto_len,
                      (const char *)proto);
        return set_fatal(t, CG_ETLS);
    }
    if (SSL_session_reused(t->ssl)) {
        X509 *peer = SSL_get0_peer_certificate(t->ssl);
        unsigned char *der = NULL;
        int len = peer != NULL ? i2d_X509(peer, &der) : -1;
        int ok = t->offered_ticket && len > 0 && sha256(der, (size_t)len, t->cert_hash) == 0;
        OPENSSL_free(der);
        if (!ok) {
            cg_reject(&t->verdict, CG_ETLS, "tls.resumption", "a ticket of a verified session",
                      "unexpected resumption");
            return set_fatal(t, CG_ETLS);
        }
        memcpy(t->spki, t->offered_spki, 32);
        t->verified = 1;
    } else if (!t->verified) {
        cg_reject(&t->verdict, CG_ETLS, "tls.unverified", "a verified certificate", "none");
        return set_fatal(t, CG_ETLS);
    }
    return 0;
}

int cg_tls_handshake(struct cg_tls *t)
{
    if (t->fatal)
        return t->fatal_rc;
    if (t->done)
        return 0;
    clear_errors();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        if (SSL_version(t->ssl) != TLS1_3_VERSION)
            return fail_tls(t, "TLS 1.3");
        if (!t->ctx->server && client_finish(t) != 0)
            return t->fatal_rc;
        t->done = 1;
        t->trim = 3;
        trim_bio(t, 1);
        return 0;
    }
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return CG_TLS_WANT;
    case SSL_ERROR_WANT_CLIENT_HELLO_CB:
        return CG_TLS_PENDING;
    default:
        if (t->verify_rc != 0) {
            clear_errors();
            return set_fatal(t, t->verify_rc);
        }
        return fail_tls(t, "a TLS 1.3 handshake");
    }
}

long cg_tls_read(struct cg_tls *t, uint8_t *buf, size_t cap)
{
    if (t->fatal || !t->done)
        return CG_ETLS;
    if (t->closed)
        return CG_TLS_CLOSED;
    if (cap == 0)
        return CG_TLS_WANT;
    size_t got = 0;
    clear_errors();
    if (SSL_read_ex(t->ssl, buf, cap > INT_MAX ? INT_MAX : cap, &got) == 1)
        return (long)got;
    switch (SSL_get_error(t->ssl, 0)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        trim_bio(t, 1);
        return CG_TLS_WANT;
    case SSL_ERROR_ZERO_RETURN:
        t->closed = 1;
        return CG_TLS_CLOSED;
    default:
        clear_errors();
        return set_fatal(t, CG_ETLS);
    }
}

long cg_tls_write(struct cg_tls *t, const uint8_t *data, size_t len)
{
    if (t->fatal || !t->done || t->shut || len > LONG_MAX)
        return CG_ETLS;
    if (len == 0)
        return 0;
    size_t written = 0;
    clear_errors();
    /* Without SSL_MODE_ENABLE_PARTIAL_WRITE and with a memory BIO this writes everything. */
    if (SSL_write_ex(t->ssl, data, len, &written) != 1 || written != len) {
        clear_errors();
        return set_fatal(t, CG_ETLS);
    }
    return (long)len;
}

void cg_tls_shutdown(struct cg_tls *t)
{
    if (t->fatal || !t->done || t->shut)
        return;
    t->shut = 1;
    clear_errors();
    (void)SSL_shutdown(t->ssl);
    clear_errors();
}

size_t cg_tls_pending_out(const struct cg_tls *t)
{
    return BIO_ctrl_pending(t->wbio);
}

size_t cg_tls_take_out(struct cg_tls *t, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    if (cap == 0)
        return 0;
    clear_errors();
    if (BIO_read_ex(t->wbio, buf, cap, &got) != 1)
        got = 0;
    trim_bio(t, 0);
    clear_errors();
    return got;
}

const struct cg_verdict *cg_tls_verdict(const struct cg_tls *t)
{
    return &t->verdict;
}

int cg_tls_sent_nonce(const struct cg_tls *t)
{
    return t->sent_nonce;
}

void cg_tls_peer_spki(const struct cg_tls *t, uint8_t out[32])
{
    memcpy(out, t->spki, 32);
}

int cg_tls_resumed(const struct cg_tls *t)
{
    return t->done && SSL_session_reused(t->ssl);
}

void cg_tls_cert_hash(const struct cg_tls *t, uint8_t out[32])
{
    memcpy(out, t->cert_hash, 32);
}

const uint8_t *cg_tls_peer_cert(const struct cg_tls *t, size_t *len)
{
    *len = t->peer_der_len;
    return t->peer_der;
}

const uint8_t *cg_tls_nonce(const struct cg_tls *t)
{
    return t->nonce;
}
