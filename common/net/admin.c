#include "ccgate/admin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/conn.h"
#include "ccgate/err.h"
#include "ccgate/http.h"
#include "ccgate/httpmsg.h"
#include "ccgate/log.h"
#include "ccgate/stream.h"

#define ADMIN_TIMEOUT_MS 10000 /* the whole exchange; then the core closes ("timeout") */
#define ADMIN_MAX_BODY (1024 * 1024)

struct admin_conn {
    struct cg_conn conn;
    struct cg_admin *ad;
    struct cg_stream s;
    struct cg_http_parser *parser;
    char path[64];
    int is_get;
    int is_head;
    int answered;
};

struct cg_admin {
    struct cg_conns set;
    const struct cg_admin_handlers *h;
};

static void conn_close(struct admin_conn *c)
{
    cg_conn_close(&c->conn, 0, "done");
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
    struct admin_conn *c = s->data;
    cg_conn_close(&c->conn, err, "error");
}

static const struct cg_stream_callbacks stream_cb = {
    .on_read = s_on_read, .on_eof = s_on_eof, .on_error = s_on_error, .on_drain = s_on_drain};

static void on_accept(struct cg_conns *set, uv_stream_t *listener)
{
    struct cg_admin *ad = set->data;
    struct admin_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        cg_log_error("admin.accept", "err=\"out of memory\"");
        return;
    }
    cg_conn_init(&c->conn, set, c);
    c->ad = ad;
    struct cg_http_limits lim = {.max_header_bytes = 8192, .max_headers = 64, .max_body_bytes = 0};
    int rc = cg_conn_accept(&c->conn, &c->s, listener, &stream_cb);
    if (rc == 0)
        rc = cg_http_parser_new(CG_HTTP_REQUEST, &lim, &parser_cb, c, &c->parser);
    if (rc == 0)
        rc = cg_stream_read_start(&c->s);
    if (rc < 0) {
        cg_conn_close(&c->conn, rc, "accept_failed");
        return;
    }
    cg_conn_timer(&c->conn, ADMIN_TIMEOUT_MS);
}

static void on_free(struct cg_conn *conn)
{
    struct admin_conn *c = conn->data;
    cg_http_parser_free(c->parser);
    free(c);
}

static void on_stopped(struct cg_conns *set)
{
    free(set->data);
}

/* Admin requests are answered in one turn: draining closes the idle and the slow at once. */
static const struct cg_conn_ops conn_ops = {
    .on_accept = on_accept, .on_free = on_free, .on_stopped = on_stopped};

int cg_admin_start(uv_loop_t *loop, const struct cg_addr *a, const struct cg_admin_handlers *h,
                   struct cg_admin **out)
{
    struct cg_admin *ad = calloc(1, sizeof(*ad));
    if (ad == NULL)
        return UV_ENOMEM;
    ad->h = h;
    int rc = cg_conns_init(&ad->set, loop, &conn_ops, ad);
    if (rc < 0) {
        free(ad);
        return rc;
    }
    ad->set.name = "admin";
    rc = cg_conns_listen(&ad->set, a, 64);
    if (rc < 0) {
        cg_conns_drain(&ad->set); /* frees ad once its handles closed */
        return rc;
    }
    *out = ad;
    return 0;
}

void cg_admin_close(struct cg_admin *ad)
{
    if (ad != NULL)
        cg_conns_abort(&ad->set, "shutdown");
}

const double cg_hist_bounds[CG_HIST_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, HUGE_VAL};

void cg_hist_observe(struct cg_hist *h, double seconds)
{
    size_t i = 0;
    while (i + 1 < CG_HIST_BUCKETS && seconds > cg_hist_bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += seconds;
}

void cg_hist_write(struct cg_buf *out, const char *name, const char *help, const struct cg_hist *h)
{
    (void)cg_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cum = 0;
    for (size_t i = 0; i < CG_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        if (i + 1 == CG_HIST_BUCKETS)
            (void)cg_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
        else
            (void)cg_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, cg_hist_bounds[i], cum);
    }
    (void)cg_buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name,
                        (unsigned long long)h->count);
}
