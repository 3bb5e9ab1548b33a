/* A blocking HTTP/1.1 client, one request per connection (httpc.h). */
#include "ccgate/httpc.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ccgate/err.h"
#include "ccgate/http.h"

struct exchange {
    const struct cg_httpc_req *q;
    struct cg_httpc_resp *r;
    int complete;
    int too_big;
};

static int on_head(void *arg, const struct cg_http_head *h)
{
    struct exchange *x = arg;
    x->r->status = h->status;
    const char *name = x->q->cookie_name;
    if (name == NULL)
        return 0;
    size_t nl = strlen(name);
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct cg_http_header *hd = &h->headers[i];
        if (hd->name_len != 10 || strncasecmp(hd->name, "set-cookie", 10) != 0 ||
            hd->value_len <= nl || strncmp(hd->value, name, nl) != 0 || hd->value[nl] != '=')
            continue;
        size_t n = strcspn(hd->value, ";");
        if (n > hd->value_len)
            n = hd->value_len;
        if (n < sizeof(x->r->cookie))
            snprintf(x->r->cookie, sizeof(x->r->cookie), "%.*s", (int)n, hd->value);
    }
    return 0;
}

static int on_body(void *arg, const uint8_t *data, size_t len)
{
    struct exchange *x = arg;
    if (x->r->body.len + len > x->q->max_body) {
        x->too_big = 1;
        return CG_ELIMIT;
    }
    return cg_buf_append(&x->r->body, data, len);
}

static int on_complete(void *arg)
{
    ((struct exchange *)arg)->complete = 1;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    int64_t left = deadline_ms - now_ms();
    if (left <= 0)
        return CG_ETIMEOUT;
    struct pollfd p = {.fd = fd, .events = events};
    int rc = poll(&p, 1, (int)left);
    return rc > 0 ? 0 : rc == 0 ? CG_ETIMEOUT : -errno;
}

static int connect_to(const struct cg_addr *a, int64_t deadline, int *fdp, char *err, size_t errlen)
{
    struct sockaddr_un un;
    const struct sockaddr *sa;
    socklen_t alen;
    if (a->is_unix) {
        memset(&un, 0, sizeof(un));
        un.sun_family = AF_UNIX;
        memcpy(un.sun_path, a->path, sizeof(un.sun_path) - 1);
        sa = (const struct sockaddr *)&un;
        alen = sizeof(un);
    } else {
        sa = (const struct sockaddr *)&a->ss;
        alen =
            a->ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    }
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return cg_errf(err, errlen, -errno, "socket: %s", strerror(errno));
    *fdp = fd;
    if (connect(fd, sa, alen) != 0 && errno != EINPROGRESS && errno != EAGAIN)
        return cg_errf(err, errlen, -errno, "connect %s: %s", a->text, strerror(errno));
    int soerr = 0, rc;
    socklen_t sl = sizeof(soerr);
    if ((rc = wait_fd(fd, POLLOUT, deadline)) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
        return cg_errf(err, errlen, rc != 0 ? rc : -soerr, "connect %s: %s", a->text,
                       rc != 0 ? cg_strerror(rc) : strerror(soerr));
    return 0;
}

static int tls_start(const struct cg_httpc_req *q, int fd, int64_t deadline, SSL_CTX **ctxp,
                     SSL **sslp, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    *ctxp = ctx;
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        (q->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, q->ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(ctx)) != 1)
        return cg_errf(err, errlen, CG_ECONFIG, "CA file %s: no usable CA certificates",
                       q->ca_file != NULL ? q->ca_file : "(system)");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    *sslp = ssl;
    /* An IP address is checked against the certificate's IP names and sent no SNI. */
    int ip = ssl != NULL && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), q->tls_name) == 1;
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 ||
        (!ip &&
         (SSL_set_tlsext_host_name(ssl, q->tls_name) != 1 || SSL_set1_host(ssl, q->tls_name) != 1)))
        return cg_errf(err, errlen, CG_ETLS, "TLS set-up failed");
    for (;;) {
        ERR_clear_error();
        int hr = SSL_connect(ssl);
        if (hr == 1)
            return 0;
        int e = SSL_get_error(ssl, hr), rc;
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            long vr = SSL_get_verify_result(ssl);
            return cg_errf(err, errlen, CG_ETLS, "TLS handshake with %s: %s", q->addr->text,
                           vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "failed");
        }
        if ((rc = wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) != 0)
            return cg_errf(err, errlen, rc, "TLS handshake with %s: timed out", q->addr->text);
    }
}

/* Writes all of buf; 0 or a code with err set. */
static int send_all(const struct cg_httpc_req *q, int fd, SSL *ssl, const char *buf, size_t n,
                    int64_t deadline, char *err, size_t errlen)
{
    for (size_t off = 0; off < n;) {
        ssize_t w;
        if (ssl != NULL) {
            ERR_clear_error();
            int wr = SSL_write(ssl, buf + off, (int)(n - off));
            int e = wr > 0 ? 0 : SSL_get_error(ssl, wr);
            w = wr > 0 ? wr : (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? 0 : -1;
        } else {
            w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EINTR))
                w = 0;
        }
        if (w < 0)
            return cg_errf(err, errlen, CG_EHTTP, "sending to %s failed", q->addr->text);
        off += (size_t)w;
        int rc;
        if (w == 0 && (rc = wait_fd(fd, POLLOUT | POLLIN, deadline)) != 0)
            return cg_errf(err, errlen, rc, "sending to %s: %s", q->addr->text, cg_strerror(rc));
    }
    return 0;
}

/* Reads and parses the answer until it is complete. */
static int read_answer(struct exchange *x, int fd, SSL *ssl, int64_t deadline, char *err,
                       size_t errlen)
{
    static const struct cg_http_callbacks cb = {on_head, on_body, on_complete};
    const char *who = x->q->addr->text;
    struct cg_http_parser *p = NULL;
    int rc = cg_http_parser_new(CG_HTTP_RESPONSE, NULL, &cb, x, &p);
    while (rc == 0 && !x->complete) {
        uint8_t buf[16384];
        ssize_t got;
        if (ssl != NULL) {
            ERR_clear_error();
            int rr = SSL_read(ssl, buf, sizeof(buf));
            int e = rr > 0 ? 0 : SSL_get_error(ssl, rr);
            got = rr > 0                                                  ? rr
                  : e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -2
                  : e == SSL_ERROR_ZERO_RETURN                            ? 0
                                                                          : -1;
        } else {
            got = recv(fd, buf, sizeof(buf), 0);
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                got = -2;
        }
        if (got == -2) {
            if ((rc = wait_fd(fd, POLLIN, deadline)) != 0)
                cg_errf(err, errlen, rc, "waiting for %s: %s", who, cg_strerror(rc));
            continue;
        }
        if (got < 0) {
            rc = cg_errf(err, errlen, CG_EHTTP, "reading from %s failed", who);
            break;
        }
        long fr = got == 0 ? cg_http_parser_finish(p) : cg_http_parser_feed(p, buf, (size_t)got);
        if (fr < 0)
            rc = cg_errf(err, errlen, (int)fr, "bad answer from %s: %s", who,
                         x->too_big ? "body too large" : cg_http_parser_reason(p));
        else if (got == 0 && !x->complete)
            rc = cg_errf(err, errlen, CG_EHTTP, "%s closed before answering", who);
    }
    cg_http_parser_free(p);
    return rc;
}

int cg_httpc_do(const struct cg_httpc_req *q, struct cg_httpc_resp *r, char *err, size_t errlen)
{
    int fd = -1, rc;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    char *req = NULL;
    int64_t deadline = now_ms() + q->timeout_ms;
    struct exchange x = {q, r, 0, 0};

    memset(r, 0, sizeof(*r));
    cg_buf_init(&r->body, q->max_body + 1);
    if ((rc = connect_to(q->addr, deadline, &fd, err, errlen)) != 0)
        goto out;
    if (q->tls && (rc = tls_start(q, fd, deadline, &ctx, &ssl, err, errlen)) != 0)
        goto out;
    size_t blen = q->body != NULL ? strlen(q->body) : 0;
    const char *host = q->addr->is_unix ? "localhost" : q->addr->text;
    size_t cap =
        512 + strlen(q->path) + strlen(host) + blen + (q->cookie != NULL ? strlen(q->cookie) : 0);
    req = malloc(cap);
    if (req == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nAccept: "
                     "application/json\r\n%s%s%s%s",
                     q->method, q->path, host, q->cookie != NULL ? "Cookie: " : "",
                     q->cookie != NULL ? q->cookie : "", q->cookie != NULL ? "\r\n" : "",
                     q->body != NULL ? "Content-Type: application/json\r\n" : "");
    n += snprintf(req + n, cap - (size_t)n, "Content-Length: %zu\r\n\r\n%s", blen,
                  q->body != NULL ? q->body : "");
    if ((rc = send_all(q, fd, ssl, req, (size_t)n, deadline, err, errlen)) != 0 ||
        (rc = read_answer(&x, fd, ssl, deadline, err, errlen)) != 0)
        goto out;
    if ((rc = cg_buf_append(&r->body, "", 1)) == 0) /* NUL-terminated for messages */
        r->body.len--;
out:
    free(req);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    return rc;
}
