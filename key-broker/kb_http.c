/* ccgate-kbs: HTTP(S) in front of the RCAR handlers (kb_http.h). */
#include "kb_http.h"

#include <stdlib.h>
#include <string.h>

#include "ccgate/buf.h"
#include "ccgate/err.h"
#include "ccgate/http.h"
#include "ccgate/httpmsg.h"
#include "ccgate/log.h"
#include "ccgate/stream.h"

struct conn {
    struct conn *prev, *next;
    struct kb_http *h;
    struct cg_stream s;
    uv_timer_t timer;
    struct cg_http_parser *parser;
    char method[8];
    char target[512];
    char *cookie, *authorization;
    struct cg_buf body;
    char peer[64];
    int answered;
    int handles;
};

struct kb_http {
    uv_tcp_t listener;
    struct kb_broker *broker;
    struct cg_tls_ctx *tls;
    struct conn conns; /* list head */
    size_t n_conns;
    int closing;
};

/* Each of a connection's two handles (timer, stream) releases it once closed. */
static void conn_release(struct conn *c)
{
    if (--c->handles > 0)
        return;
    cg_http_parser_free(c->parser);
    cg_buf_free(&c->body);
    free(c->cookie);
    free(c->authorization);
    free(c);
}

static void timer_closed(uv_handle_t *hd)
{
    conn_release(hd->data);
}

static void stream_closed(struct cg_stream *s, void *arg)
{
    (void)s;
    conn_release(arg);
}

static void conn_close(struct conn *c)
{
    if (c->next == NULL)
        return;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->h->n_conns--;
    uv_close((uv_handle_t *)&c->timer, timer_closed);
    cg_stream_close(&c->s, stream_closed, c);
}

static void send_response(struct conn *c, int status, const char *set_cookie,
                          const struct cg_buf *body)
{
    struct cg_buf out;
    cg_buf_init(&out, KB_MAX_BODY + 4096);
    if (cg_buf_printf(&out,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                      "%zu\r\nCache-Control: no-store\r\nConnection: close\r\n",
                      status, cg_httpmsg_reason(status), body->len) == 0 &&
        (set_cookie[0] == '\0' || cg_buf_printf(&out, "Set-Cookie: %s\r\n", set_cookie) == 0) &&
        cg_buf_append(&out, "\r\n", 2) == 0 &&
        (body->len == 0 || cg_buf_append(&out, body->data, body->len) == 0))
        (void)cg_stream_write(&c->s, out.data, out.len);
    if (out.data != NULL)
        explicit_bzero(out.data, out.len); /* may hold a JWE: nothing secret, but no copies */
    cg_buf_free(&out);
    c->answered = 1;
    cg_stream_shutdown(&c->s);
}

static char *dup_value(const struct cg_http_head *h, const char *name)
{
    const struct cg_http_header *x = cg_http_head_get(h, name);
    if (x == NULL)
        return NULL;
    char *s = malloc(x->value_len + 1);
    if (s != NULL) {
        memcpy(s, x->value, x->value_len);
        s[x->value_len] = '\0';
    }
    return s;
}

static int on_head(void *arg, const struct cg_http_head *h)
{
    struct conn *c = arg;
    snprintf(c->method, sizeof(c->method), "%s", h->method);
    if (strlen(h->target) >= sizeof(c->target))
        return CG_ELIMIT;
    snprintf(c->target, sizeof(c->target), "%s", h->target);
    c->cookie = dup_value(h, "cookie");
    c->authorization = dup_value(h, "authorization");
    return 0;
}

static int on_body(void *arg, const uint8_t *data, size_t len)
{
    struct conn *c = arg;
    return cg_buf_append(&c->body, data, len);
}

static int on_complete(void *arg)
{
    struct conn *c = arg;
    struct kb_response rs;
    if (cg_buf_append(&c->body, "", 1) != 0) /* NUL-terminated for the JSON parser */
        return CG_ELIMIT;
    struct kb_request rq = {
        .method = c->method,
        .target = c->target,
        .cookie = c->cookie,
        .authorization = c->authorization,
        .peer = c->peer,
        .body = c->body.data,
        .body_len = c->body.len - 1,
        .now = time(NULL),
    };
    kb_broker_handle(c->h->broker, &rq, &rs);
    send_response(c, rs.status, rs.set_cookie, &rs.body);
    cg_buf_free(&rs.body);
    return CG_EHTTP; /* one request per connection: stop parsing */
}

static const struct cg_http_callbacks parser_cb = {on_head, on_body, on_complete};

static void s_on_read(struct cg_stream *s, const uint8_t *data, size_t len)
{
    struct conn *c = s->data;
    if (c->answered)
        return;
    if (cg_http_parser_feed(c->parser, data, len) < 0 && !c->answered) {
        struct cg_buf body;
        cg_buf_init(&body, 512);
        int status = cg_http_parser_status(c->parser);
        (void)cg_buf_printf(&body, "{\"type\":\"ccgate-kbs/http\",\"detail\":\"%s\"}",
                            status == 413 ? "body too large" : "malformed request");
        send_response(c, status, "", &body);
        cg_buf_free(&body);
    }
}

static void s_on_eof(struct cg_stream *s)
{
    if (s->queued > 0)
        return; /* s_on_drain closes once the answer is out */
    conn_close(s->data);
}

static void s_on_drain(struct cg_stream *s)
{
    if (s->eof && s->queued == 0)
        conn_close(s->data);
}

static void s_on_error(struct cg_stream *s, int err)
{
    (void)err;
    conn_close(s->data);
}

static void s_on_handshake(struct cg_stream *s, int status)
{
    if (status != 0)
        conn_close(s->data);
}

static const struct cg_stream_callbacks stream_cb = {.on_read = s_on_read,
                                                     .on_eof = s_on_eof,
                                                     .on_error = s_on_error,
                                                     .on_handshake = s_on_handshake,
                                                     .on_drain = s_on_drain};

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct kb_http *h = server->data;
    if (status < 0 || h->closing)
        return;
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->h = h;
    cg_buf_init(&c->body, KB_MAX_BODY + 1);
    if (cg_stream_init(&c->s, server->loop, 0, &stream_cb, c) < 0) {
        free(c);
        return;
    }
    c->handles = 2;
    (void)uv_timer_init(server->loop, &c->timer);
    c->timer.data = c;
    c->next = h->conns.next;
    c->prev = &h->conns;
    h->conns.next->prev = c;
    h->conns.next = c;
    h->n_conns++;
    struct cg_http_limits lim = {
        .max_header_bytes = 16384, .max_headers = 64, .max_body_bytes = KB_MAX_BODY};
    struct cg_tls *t = NULL;
    if (cg_stream_accept(&c->s, server) < 0 || h->n_conns > KB_HTTP_MAX_CONNS ||
        cg_http_parser_new(CG_HTTP_REQUEST, &lim, &parser_cb, c, &c->parser) < 0 ||
        (h->tls != NULL && cg_tls_new(h->tls, 0, &t) < 0)) {
        if (h->n_conns > KB_HTTP_MAX_CONNS)
            cg_log_warn("kbs.overload", "connections=%zu", h->n_conns);
        conn_close(c);
        return;
    }
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->s.h.tcp, (struct sockaddr *)&ss, &sl) == 0) {
        char ip[48] = "";
        if (ss.ss_family == AF_INET) {
            (void)uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "%s:%u", ip,
                     ntohs(((struct sockaddr_in *)&ss)->sin_port));
        } else {
            (void)uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip,
                     ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
        }
    }
    if (t != NULL)
        cg_stream_set_tls(&c->s, t);
    if (cg_stream_read_start(&c->s) < 0) {
        conn_close(c);
        return;
    }
    (void)uv_timer_start(&c->timer, on_timeout, KB_HTTP_TIMEOUT_MS, 0);
}

int kb_http_start(uv_loop_t *loop, const struct cg_addr *a, struct kb_broker *broker,
                  struct cg_tls_ctx *tls, struct kb_http **out)
{
    struct kb_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return UV_ENOMEM;
    h->broker = broker;
    h->tls = tls;
    h->conns.next = h->conns.prev = &h->conns;
    int rc = uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    if (rc == 0)
        rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&a->ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 64, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)&h->listener, (uv_close_cb)free);
        return rc;
    }
    *out = h;
    return 0;
}

void kb_http_close(struct kb_http *h)
{
    if (h == NULL || h->closing)
        return;
    h->closing = 1;
    while (h->conns.next != &h->conns)
        conn_close(h->conns.next);
    uv_close((uv_handle_t *)&h->listener, (uv_close_cb)free);
}
