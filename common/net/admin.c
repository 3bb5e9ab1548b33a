#include "ccgate/admin.h"

#include <stdlib.h>
#include <string.h>

#include "ccgate/err.h"
#include "ccgate/http.h"
#include "ccgate/httpmsg.h"
#include "ccgate/log.h"
#include "ccgate/stream.h"

#define ADMIN_TIMEOUT_MS 10000
#define ADMIN_MAX_BODY (1024 * 1024)

struct admin_conn {
    struct admin_conn *prev, *next;
    struct cg_admin *ad;
    struct cg_stream s;
    uv_timer_t timer;
    struct cg_http_parser *parser;
    char path[64];
    int is_get;
    int is_head;
    int answered;
    int handles;
};

struct cg_admin {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } listener;
    const struct cg_admin_handlers *h;
    struct admin_conn conns; /* list head */
    int closing;
};

static void conn_handle_closed(uv_handle_t *h)
{
    struct admin_conn *c = h->data;
    if (--c->handles > 0)
        return;
    cg_http_parser_free(c->parser);
    free(c);
}

static void conn_close(struct admin_conn *c)
{
    if (c->next == NULL)
        return;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->next = c->prev = NULL;
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    c->s.h.handle.data = c;
    cg_stream_close(&c->s, conn_handle_closed);
}

static void respond(struct admin_conn *c, int status, const char *ctype, struct cg_buf *body)
{
    struct cg_buf out;
    cg_buf_init(&out, ADMIN_MAX_BODY + 1024);
    /* HEAD: the headers GET would have, Content-Length included, and no body. */
    if (cg_httpmsg_response(&out, status, ctype, body->data ? body->data : "", body->len, 1) == 0)
        (void)cg_stream_write(&c->s, out.data, out.len - (c->is_head ? body->len : 0));
    cg_buf_free(&out);
    c->answered = 1;
    cg_stream_shutdown(&c->s);
}

static int on_head(void *arg, const struct cg_http_head *h)
{
    struct admin_conn *c = arg;
    c->is_head = strcmp(h->method, "HEAD") == 0;
    c->is_get = strcmp(h->method, "GET") == 0 || c->is_head;
    snprintf(c->path, sizeof(c->path), "%s", h->target);
    return 0;
}

static int on_body(void *arg, const uint8_t *data, size_t len)
{
    (void)arg;
    (void)data;
    (void)len;
    return 0;
}

static int on_complete(void *arg)
{
    struct admin_conn *c = arg;
    const struct cg_admin_handlers *h = c->ad->h;
    struct cg_buf body;
    cg_buf_init(&body, ADMIN_MAX_BODY);
    int status = 404;
    const char *ctype = "text/plain; charset=utf-8";
    if (!c->is_get) {
        status = 405;
        (void)cg_buf_printf(&body, "method not allowed\n");
    } else if (strcmp(c->path, "/healthz") == 0 && h->healthz == NULL) {
        status = 200;
        (void)cg_buf_printf(&body, "ok\n");
    } else if (strcmp(c->path, "/healthz") == 0) {
        status = h->healthz(h->arg, &body);
    } else if (strcmp(c->path, "/readyz") == 0) {
        status = h->readyz(h->arg, &body);
    } else if (strcmp(c->path, "/metrics") == 0) {
        status = h->metrics(h->arg, &body);
        (void)cg_buf_printf(&body,
                            "# HELP ccgate_build_info The program and its version (always 1).\n"
                            "# TYPE ccgate_build_info gauge\n"
                            "ccgate_build_info{program=\"%s\",version=\"%s\"} 1\n",
                            cg_log_prog(), CCGATE_VERSION);
        ctype = "text/plain; version=0.0.4; charset=utf-8";
    } else {
        (void)cg_buf_printf(&body, "not found: try /healthz, /readyz or /metrics\n");
    }
    respond(c, status, ctype, &body);
    cg_buf_free(&body);
    return CG_EHTTP; /* one request per connection: stop parsing */
}

static const struct cg_http_callbacks parser_cb = {on_head, on_body, on_complete};

static void s_on_read(struct cg_stream *s, const uint8_t *data, size_t len)
{
    struct admin_conn *c = s->data;
    if (c->answered)
        return;
    if (cg_http_parser_feed(c->parser, data, len) < 0 && !c->answered) {
        struct cg_buf body;
        cg_buf_init(&body, 256);
        (void)cg_buf_printf(&body, "%s\n", cg_http_parser_reason(c->parser));
        respond(c, cg_http_parser_status(c->parser), "text/plain; charset=utf-8", &body);
        cg_buf_free(&body);
    }
}

static void s_on_eof(struct cg_stream *s)
{
    /* A client may half-close right after its request: finish sending the answer first
     * (s_on_drain closes); closing now would cut what is still queued. */
    if (s->queued > 0)
        return;
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

static const struct cg_stream_callbacks stream_cb = {
    .on_read = s_on_read, .on_eof = s_on_eof, .on_error = s_on_error, .on_drain = s_on_drain};

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct cg_admin *ad = server->data;
    if (status < 0 || ad->closing)
        return;
    struct admin_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->ad = ad;
    if (cg_stream_init(&c->s, server->loop, server->type == UV_NAMED_PIPE, &stream_cb, c) < 0) {
        free(c);
        return;
    }
    c->handles = 2;
    (void)uv_timer_init(server->loop, &c->timer);
    c->timer.data = c;
    c->next = ad->conns.next;
    c->prev = &ad->conns;
    ad->conns.next->prev = c;
    ad->conns.next = c;
    struct cg_http_limits lim = {.max_header_bytes = 8192, .max_headers = 64, .max_body_bytes = 0};
    if (cg_stream_accept(&c->s, server) < 0 ||
        cg_http_parser_new(CG_HTTP_REQUEST, &lim, &parser_cb, c, &c->parser) < 0 ||
        cg_stream_read_start(&c->s) < 0) {
        conn_close(c);
        return;
    }
    (void)uv_timer_start(&c->timer, on_timeout, ADMIN_TIMEOUT_MS, 0);
}

int cg_admin_start(uv_loop_t *loop, const struct cg_addr *a, const struct cg_admin_handlers *h,
                   struct cg_admin **out)
{
    struct cg_admin *ad = calloc(1, sizeof(*ad));
    if (ad == NULL)
        return UV_ENOMEM;
    ad->h = h;
    ad->conns.next = ad->conns.prev = &ad->conns;
    int rc;
    if (a->is_unix) {
        rc = uv_pipe_init(loop, &ad->listener.pipe, 0);
        if (rc == 0)
            rc = uv_pipe_bind(&ad->listener.pipe, a->path);
    } else {
        rc = uv_tcp_init(loop, &ad->listener.tcp);
        if (rc == 0)
            rc = uv_tcp_bind(&ad->listener.tcp, (const struct sockaddr *)&a->ss, 0);
    }
    ad->listener.handle.data = ad;
    if (rc == 0)
        rc = uv_listen(&ad->listener.stream, 64, on_connection);
    if (rc < 0) {
        if (uv_is_active(&ad->listener.handle) || ad->listener.handle.loop != NULL)
            uv_close(&ad->listener.handle, (uv_close_cb)free);
        else
            free(ad);
        return rc;
    }
    *out = ad;
    return 0;
}

void cg_admin_close(struct cg_admin *ad)
{
    if (ad == NULL || ad->closing)
        return;
    ad->closing = 1;
    while (ad->conns.next != &ad->conns)
        conn_close(ad->conns.next);
    uv_close(&ad->listener.handle, (uv_close_cb)free);
}
