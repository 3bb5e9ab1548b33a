/* ccgate-kbs: HTTP(S) in front of the RCAR handlers (kb_http.h), on the connection core. */
#include "kb_http.h"

#include <stdlib.h>
#include <string.h>

#include "ccgate/addr.h"
#include "ccgate/buf.h"
#include "ccgate/conn.h"
#include "ccgate/err.h"
#include "ccgate/http.h"
#include "ccgate/httpmsg.h"
#include "ccgate/log.h"
#include "ccgate/stream.h"

struct conn {
    struct cg_conn conn; /* the connection core: list, timer, one deferred close */
    struct kb_http *h;
    struct cg_stream s;
    struct cg_http_parser *parser;
    char method[8];
    char target[512];
    char *cookie, *authorization;
    struct cg_buf body;
    char peer[64];
    int answered; /* the request is complete: answered, or its evidence being verified */
    uv_work_t work;
    struct kb_attest_job *job; /* verified on libuv's thread pool (verify_done ends it) */
};

struct kb_http {
    struct cg_conns set; /* the listener and the live connections */
    struct kb_broker *broker;
    struct cg_tls_ctx *tls;
    void (*on_stopped)(void *arg);
    void *arg;
};

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

static void verify_work(uv_work_t *w)
{
    struct conn *c = w->data;
    kb_attest_job_verify(c->job);
}

/* Back on the loop: the decision is recorded whether or not the client is still there. */
static void verify_done(uv_work_t *w, int status)
{
    struct conn *c = w->data;
    struct kb_response rs;
    (void)status; /* never cancelled: the job always ran */
    kb_attest_job_finish(c->h->broker, c->job, &rs);
    c->job = NULL;
    if (cg_conn_live(&c->conn)) {
        send_response(c, rs.status, rs.set_cookie, &rs.body);
        if (c->s.eof && c->s.queued == 0) /* the client half-closed while it waited */
            cg_conn_close(&c->conn, 0, "done");
    }
    cg_buf_free(&rs.body);
    cg_conn_release(&c->conn);
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
    kb_broker_begin(c->h->broker, &rq, &rs, &c->job);
    if (c->job == NULL) {
        send_response(c, rs.status, rs.set_cookie, &rs.body);
        cg_buf_free(&rs.body);
        return CG_EHTTP; /* one request per connection: stop parsing */
    }
    /* The evidence is verified off the loop; c's memory stays until verify_done, even if the
     * connection closes meanwhile (timeout, client gone, drain deadline). */
    c->answered = 1;
    c->work.data = c;
    cg_conn_hold(&c->conn);
    /* uv_queue_work fails only without a work callback. */
    (void)uv_queue_work(c->conn.set->loop, &c->work, verify_work, verify_done);
    return CG_EHTTP;
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
    struct conn *c = s->data;
    if (s->queued > 0 || c->job != NULL)
        return; /* s_on_drain or verify_done closes once the answer is out */
    cg_conn_close(&c->conn, 0, "done");
}

static void s_on_drain(struct cg_stream *s)
{
    struct conn *c = s->data;
    if (s->eof && s->queued == 0)
        cg_conn_close(&c->conn, 0, "done");
}

static void s_on_error(struct cg_stream *s, int err)
{
    struct conn *c = s->data;
    cg_conn_close(&c->conn, err, "error");
}

static void s_on_handshake(struct cg_stream *s, int status)
{
    struct conn *c = s->data;
    if (status != 0)
        cg_conn_close(&c->conn, status, "handshake_failed");
}

static const struct cg_stream_callbacks stream_cb = {.on_read = s_on_read,
                                                     .on_eof = s_on_eof,
                                                     .on_error = s_on_error,
                                                     .on_handshake = s_on_handshake,
                                                     .on_drain = s_on_drain};

/* The client's address, for the audit log ("" when the socket has none). */
static void peer_name(struct conn *c)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->s.h.tcp, (struct sockaddr *)&ss, &sl) == 0)
        (void)cg_addr_format((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
}

/* ---- the connection core's callbacks ---- */

static void on_accept(struct cg_conns *set, uv_stream_t *listener)
{
    struct kb_http *h = set->data;
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        cg_log_error("kbs.accept", "err=\"out of memory\"");
        return;
    }
    cg_conn_init(&c->conn, set, c);
    c->h = h;
    cg_buf_init(&c->body, KB_MAX_BODY + 1);
    int rc = cg_conn_accept(&c->conn, &c->s, listener, &stream_cb);
    if (rc < 0) {
        cg_conn_close(&c->conn, rc, "accept_failed");
        return;
    }
    if (cg_conns_full(set)) {
        cg_log_warn("kbs.overload", "connections=%llu", (unsigned long long)set->stats.live);
        cg_conn_close(&c->conn, UV_EBUSY, "too_many_connections");
        return;
    }
    struct cg_http_limits lim = {
        .max_header_bytes = 16384, .max_headers = 64, .max_body_bytes = KB_MAX_BODY};
    rc = cg_http_parser_new(CG_HTTP_REQUEST, &lim, &parser_cb, c, &c->parser);
    struct cg_tls *t = NULL;
    if (rc == 0 && h->tls != NULL && (rc = cg_tls_new(h->tls, 0, &t)) == 0)
        cg_stream_set_tls(&c->s, t);
    if (rc == 0)
        rc = cg_stream_read_start(&c->s);
    if (rc < 0) {
        cg_conn_close(&c->conn, rc, "init_failed");
        return;
    }
    peer_name(c);
    cg_conn_timer(&c->conn, KB_HTTP_TIMEOUT_MS); /* the whole exchange; then "timeout" */
}

/* Draining: a connection that has sent nothing goes now; one in the middle of its request
 * gets its answer first (the answer ends it; the timer bounds it). */
static void on_drain(struct cg_conn *conn)
{
    struct conn *c = conn->data;
    if (!c->answered && !cg_http_parser_in_message(c->parser))
        cg_conn_close(conn, 0, "shutdown");
}

static void on_free(struct cg_conn *conn)
{
    struct conn *c = conn->data;
    cg_http_parser_free(c->parser);
    cg_buf_free(&c->body);
    free(c->cookie);
    free(c->authorization);
    free(c);
}

static void on_stopped(struct cg_conns *set)
{
    struct kb_http *h = set->data;
    if (h->on_stopped != NULL)
        h->on_stopped(h->arg);
    free(h);
}

static const struct cg_conn_ops conn_ops = {
    .on_accept = on_accept, .on_drain = on_drain, .on_free = on_free, .on_stopped = on_stopped};

int kb_http_start(uv_loop_t *loop, const struct cg_addr *a, struct kb_broker *broker,
                  struct cg_tls_ctx *tls, void (*on_stopped_cb)(void *arg), void *arg,
                  struct kb_http **out)
{
    struct kb_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return UV_ENOMEM;
    h->broker = broker;
    h->tls = tls;
    int rc = cg_conns_init(&h->set, loop, &conn_ops, h);
    if (rc < 0) {
        free(h);
        return rc;
    }
    h->set.name = "kbs";
    h->set.max_conns = KB_HTTP_MAX_CONNS;
    rc = cg_conns_listen(&h->set, a, 64);
    if (rc < 0) {
        cg_conns_drain(&h->set); /* frees h once its handles closed (no on_stopped call) */
        return rc;
    }
    h->on_stopped = on_stopped_cb;
    h->arg = arg;
    *out = h;
    return 0;
}

void kb_http_drain(struct kb_http *h)
{
    cg_conns_drain(&h->set);
}

void kb_http_abort(struct kb_http *h)
{
    cg_conns_abort(&h->set, "shutdown_deadline");
}
