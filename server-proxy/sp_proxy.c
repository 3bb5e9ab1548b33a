#include "sp_proxy.h"

#include <stdlib.h>
#include <string.h>

#include "ccgate/buf.h"
#include "ccgate/http.h"
#include "ccgate/httpmsg.h"
#include "ccgate/log.h"
#include "ccgate/stream.h"

#define TRACK_MAX 64 /* pipelined requests followed; more turns tracking off */

struct sp_conn {
    struct sp_conn *prev, *next;
    struct sp_server *srv;
    uint64_t id;
    struct cg_stream down; /* RA-TLS towards the client sidecar */
    struct cg_stream up;   /* plain towards the upstream */
    struct sp_waiter waiter;
    uv_timer_t timer;
    struct cg_buf early; /* client bytes that arrived before the upstream connected */
    /* HTTP mode: the bytes pass untouched, but parsers follow the message boundaries so that
     * a drain can end a connection between messages (the client pools them). */
    struct cg_http_parser *reqp, *respp;
    uint8_t is_head[TRACK_MAX]; /* per request awaiting its response: was it HEAD */
    size_t track_head, track_len;
    int tracking; /* boundaries known; 0 after an upgrade, a parse error or an overflow */
    int resp_status;
    int handles;
    unsigned up_inited : 1, up_connected : 1, up_dead : 1, closing : 1;
};

static void on_timeout(uv_timer_t *t);

static void conn_release(struct sp_conn *c)
{
    if (--c->handles > 0)
        return;
    cg_http_parser_free(c->reqp);
    cg_http_parser_free(c->respp);
    cg_buf_free(&c->early);
    free(c);
}

static void timer_closed(uv_handle_t *h)
{
    conn_release(h->data);
}

static void leg_closed(struct cg_stream *s, void *arg)
{
    (void)s;
    conn_release(arg);
}

/* Runs on_idle once, when stopping and the last connection closed. */
static void notify_idle(struct sp_server *srv)
{
    if (!srv->stopping || srv->conns != NULL || srv->on_idle == NULL || srv->idle_notified)
        return;
    srv->idle_notified = 1;
    srv->on_idle(srv);
}

static void conn_close(struct sp_conn *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = 1;
    struct sp_server *srv = c->srv;
    cg_logf(CG_LOG_DEBUG, "conn.close", CG_LF_UINT("id", c->id), CG_LF_STR("reason", reason),
            CG_LF_UINT("from_client", c->down.bytes_in),
            CG_LF_UINT("to_client", c->down.bytes_out));
    srv->stats.bytes_from_client += c->down.bytes_in;
    srv->stats.bytes_to_client += c->down.bytes_out;
    srv->stats.conns_active--;
    sp_attester_cancel(&c->waiter);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;

    uv_close((uv_handle_t *)&c->timer, timer_closed);
    cg_stream_close(&c->down, leg_closed, c);
    if (c->up_inited) {
        cg_stream_close(&c->up, leg_closed, c);
    }
    notify_idle(srv);
}

static struct cg_stream *peer_of(struct sp_conn *c, struct cg_stream *s)
{
    return s == &c->down ? &c->up : &c->down;
}

static void maybe_done(struct sp_conn *c)
{
    if (c->down.eof && c->up.eof && c->down.queued == 0 && c->up.queued == 0)
        conn_close(c, "done");
}

/* ---- message boundaries (HTTP mode) ---- */

static void track_arm_head(struct sp_conn *c)
{
    if (c->track_len > 0 && c->is_head[c->track_head])
        cg_http_parser_expect_head_response(c->respp);
}

static int track_req_head(void *arg, const struct cg_http_head *h)
{
    struct sp_conn *c = arg;
    if (c->track_len == TRACK_MAX || h->upgrade) {
        c->tracking = 0;
        return 0;
    }
    c->is_head[(c->track_head + c->track_len) % TRACK_MAX] = strcmp(h->method, "HEAD") == 0;
    if (++c->track_len == 1 && !cg_http_parser_in_message(c->respp))
        track_arm_head(c);
    return 0;
}

static int track_resp_complete(void *arg)
{
    struct sp_conn *c = arg;
    if (c->resp_status < 200)
        return 0; /* the final answer follows */
    if (c->track_len == 0) {
        c->tracking = 0; /* an answer nobody asked for */
        return 0;
    }
    c->track_head = (c->track_head + 1) % TRACK_MAX;
    c->track_len--;
    track_arm_head(c);
    return 0;
}

static int track_resp_head(void *arg, const struct cg_http_head *h)
{
    struct sp_conn *c = arg;
    c->resp_status = h->status;
    if (h->status == 101)
        c->tracking = 0;
    return 0;
}

static int track_body(void *arg, const uint8_t *data, size_t len)
{
    (void)arg;
    (void)data;
    (void)len;
    return 0;
}

static int track_nop(void *arg)
{
    (void)arg;
    return 0;
}

static const struct cg_http_callbacks track_req_cb = {track_req_head, track_body, track_nop};
static const struct cg_http_callbacks track_resp_cb = {track_resp_head, track_body,
                                                       track_resp_complete};

static void track(struct sp_conn *c, struct cg_stream *from, const uint8_t *data, size_t len)
{
    if (!c->tracking)
        return;
    struct cg_http_parser *p = from == &c->down ? c->reqp : c->respp;
    long n = cg_http_parser_feed(p, data, len);
    if (n < 0 || (size_t)n < len)
        c->tracking = 0;
}

/* Between messages: every request answered, nothing half-parsed, nothing queued. */
static int between_messages(const struct sp_conn *c)
{
    return c->tracking && c->track_len == 0 && !cg_http_parser_in_message(c->reqp) &&
           !cg_http_parser_in_message(c->respp) && c->down.queued == 0 &&
           (!c->up_inited || c->up.queued == 0);
}

static void on_read(struct cg_stream *s, const uint8_t *data, size_t len)
{
    struct sp_conn *c = s->data;
    if (c->up_connected)
        (void)uv_timer_start(&c->timer, on_timeout, c->srv->idle_timeout_ms, 0);
    track(c, s, data, len);
    if (s == &c->down && !c->up_connected) {
        if (cg_buf_append(&c->early, data, len) < 0)
            conn_close(c, "early_data_overflow");
        else if (c->early.len >= CG_STREAM_HIGH_WATER)
            cg_stream_read_stop(s);
        return;
    }
    struct cg_stream *peer = peer_of(c, s);
    if (cg_stream_write(peer, data, len) < 0) {
        conn_close(c, "write_failed");
        return;
    }
    if (peer->queued >= CG_STREAM_HIGH_WATER)
        cg_stream_read_stop(s);
}

static void on_drain(struct cg_stream *s)
{
    struct sp_conn *c = s->data;
    struct cg_stream *peer = peer_of(c, s);
    if (!peer->eof && (peer != &c->up || c->up_connected))
        (void)cg_stream_read_start(peer);
    if (c->srv->stopping && c->up_connected && between_messages(c)) {
        conn_close(c, "shutdown");
        return;
    }
    maybe_done(c);
}

static void on_eof(struct cg_stream *s)
{
    struct sp_conn *c = s->data;
    struct cg_stream *peer = peer_of(c, s);
    if (peer == &c->up && !c->up_connected) {
        if (c->up_dead)
            conn_close(c, "upstream_unreachable");
        return; /* else shut down once connected */
    }
    cg_stream_shutdown(peer);
    maybe_done(c);
}

static void on_error(struct cg_stream *s, int err)
{
    struct sp_conn *c = s->data;
    if (s == &c->up)
        conn_close(c, "upstream_error");
    else
        conn_close(c, err == CG_ETLS ? "client_tls_error_or_truncation" : "client_error");
}

#define LINGER_MS 5000

/* The upstream cannot be reached (error or connect timeout): HTTP mode answers 502 JSON, TCP
 * mode closes; the connection lingers until the client closes. */
static void upstream_failed(struct sp_conn *c, int status)
{
    if (c->up_inited) {
        cg_stream_close(&c->up, leg_closed, c);
        c->up_inited = 0;
    }
    c->srv->stats.upstream_failures++;
    cg_logf(CG_LOG_WARN, "upstream.connect", CG_LF_UINT("id", c->id),
            CG_LF_STR("upstream", c->srv->upstream.text), CG_LF_STR("err", cg_strerror(status)));
    if (!c->srv->tcp_mode) {
        static const char body[] = "{\"error\": \"upstream_unreachable\"}\n";
        struct cg_buf out;
        cg_buf_init(&out, 1024);
        if (cg_httpmsg_response(&out, 502, "application/json", body, sizeof(body) - 1, 1) == 0)
            (void)cg_stream_write(&c->down, out.data, out.len);
        cg_buf_free(&out);
    }
    /* TCP mode has no way to say why: close_notify alone. */
    cg_stream_shutdown(&c->down);
    c->up_dead = 1;
    (void)uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
}

static void on_up_connect(struct cg_stream *s, int status)
{
    struct sp_conn *c = s->data;
    if (status < 0) {
        upstream_failed(c, status);
        return;
    }
    c->up_connected = 1;
    (void)uv_timer_start(&c->timer, on_timeout, c->srv->idle_timeout_ms, 0);
    if (c->early.len > 0 && cg_stream_write(&c->up, c->early.data, c->early.len) < 0) {
        conn_close(c, "write_failed");
        return;
    }
    cg_buf_free(&c->early);
    if (c->down.eof)
        cg_stream_shutdown(&c->up);
    else
        (void)cg_stream_read_start(&c->down);
    (void)cg_stream_read_start(&c->up);
}

static void on_handshake(struct cg_stream *s, int status);

static const struct cg_stream_callbacks down_cb = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_handshake = on_handshake,
    .on_drain = on_drain,
};

static const struct cg_stream_callbacks up_cb = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_drain = on_drain,
    .on_connect = on_up_connect,
};

static void on_handshake(struct cg_stream *s, int status)
{
    struct sp_conn *c = s->data;
    (void)uv_timer_stop(&c->timer);
    if (status < 0) {
        c->srv->stats.handshake_failures++;
        conn_close(c, "handshake_failed");
        return;
    }
    int rc = cg_stream_init(&c->up, c->srv->loop, c->srv->upstream.is_unix, &up_cb, c);
    if (rc == 0) {
        c->up_inited = 1;
        c->handles++;
        rc = cg_stream_connect(&c->up, &c->srv->upstream);
    }
    if (rc < 0) {
        upstream_failed(c, rc);
        return;
    }
    (void)uv_timer_start(&c->timer, on_timeout, c->srv->upstream_connect_timeout_ms, 0);
}

static void on_cert_ready(struct sp_waiter *w, int status)
{
    struct sp_conn *c = (struct sp_conn *)((char *)w - offsetof(struct sp_conn, waiter));
    if (status < 0) {
        c->srv->stats.handshake_failures++;
        conn_close(c, "evidence_failed");
        return;
    }
    cg_stream_handshake(&c->down);
}

static void on_timeout(uv_timer_t *t)
{
    struct sp_conn *c = t->data;
    if (c->up_dead) {
        conn_close(c, "upstream_unreachable");
        return;
    }
    if (c->up_connected) {
        conn_close(c, "idle_timeout");
        return;
    }
    if (c->up_inited) {
        upstream_failed(c, UV_ETIMEDOUT);
        return;
    }
    c->srv->stats.handshake_failures++;
    conn_close(c, "handshake_timeout");
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct sp_server *srv = listener->data;
    if (status < 0 || srv->stopping)
        return;
    struct sp_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->srv = srv;
    c->id = ++srv->stats.conns_total;
    cg_buf_init(&c->early, CG_STREAM_HIGH_WATER + 64 * 1024);
    if (!srv->tcp_mode) {
        /* Generous limits: the client sidecar enforces the real ones; these only follow. */
        struct cg_http_limits lim = {.max_header_bytes = 1024 * 1024,
                                     .max_headers = CG_HTTP_MAX_HEADERS_CAP};
        c->tracking = cg_http_parser_new(CG_HTTP_REQUEST, &lim, &track_req_cb, c, &c->reqp) == 0 &&
                      cg_http_parser_new(CG_HTTP_RESPONSE, &lim, &track_resp_cb, c, &c->respp) == 0;
    }
    if (cg_stream_init(&c->down, srv->loop, 0, &down_cb, c) < 0) {
        free(c);
        return;
    }
    c->handles = 2;
    (void)uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->waiter.ready = on_cert_ready;
    srv->stats.conns_active++;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;

    struct cg_tls *t = NULL;
    if (cg_stream_accept(&c->down, listener) < 0) {
        conn_close(c, "accept_failed");
        return;
    }
    if (srv->stats.conns_active > srv->max_conns) {
        conn_close(c, "too_many_connections");
        return;
    }
    if (cg_tls_new(srv->tls, 0, &t) < 0) {
        conn_close(c, "tls_init_failed");
        return;
    }
    cg_tls_set_data(t, &c->waiter);
    c->waiter.tls = t;
    cg_stream_set_tls(&c->down, t);
    (void)uv_timer_start(&c->timer, on_timeout, srv->handshake_timeout_ms, 0);
    if (cg_stream_read_start(&c->down) < 0)
        conn_close(c, "read_failed");
}

int sp_server_start(struct sp_server *s)
{
    int rc = uv_tcp_init(s->loop, &s->listener.tcp);
    if (rc < 0)
        return rc;
    s->listener.handle.data = s;
    rc = uv_tcp_bind(&s->listener.tcp, (const struct sockaddr *)&s->listen_addr.ss, 0);
    if (rc == 0)
        rc = uv_listen(&s->listener.stream, 511, on_connection);
    if (rc < 0)
        uv_close(&s->listener.handle, NULL);
    return rc;
}

void sp_server_stop(struct sp_server *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    uv_close(&s->listener.handle, NULL);
    /* Connections between messages (idle in a client's pool) end now; the others after
     * their current response (on_drain), or at the deadline. */
    for (struct sp_conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->up_connected && between_messages(c))
            conn_close(c, "shutdown");
    }
    notify_idle(s);
}

void sp_server_abort(struct sp_server *s)
{
    while (s->conns != NULL)
        conn_close(s->conns, "shutdown_deadline");
}
