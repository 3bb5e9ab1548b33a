#include "sp_proxy.h"

#include <stdlib.h>
#include <string.h>

#include "ccgate/buf.h"
#include "ccgate/http.h"
#include "ccgate/httpmsg.h"
#include "ccgate/log.h"
#include "ccgate/stream.h"
#include "sp_conn.h"

#define LINGER_MS 5000       /* after a 502 or a graceful end: wait this long for the client */
#define STOP_GRACE_MS 1000   /* stopping: how long an idle connection still takes a request */
#define HELD_MAX (64 * 1024) /* stopping: most bytes of a response head held to annotate */

void sp_conn_close(struct sp_conn *c, int err, const char *reason)
{
    cg_conn_close(&c->conn, err, reason);
}

static void arm(struct sp_conn *c, enum sp_phase phase, uint64_t ms)
{
    c->phase = phase;
    cg_conn_timer(&c->conn, ms);
}

static struct cg_stream *peer_of(struct sp_conn *c, struct cg_stream *s)
{
    return s == &c->down ? &c->up : &c->down;
}

static void maybe_done(struct sp_conn *c)
{
    if (c->down.eof && c->up.eof && c->down.queued == 0 && c->up.queued == 0)
        sp_conn_close(c, 0, "done");
}

/* ---- graceful stop ---- */

/* Ends the connection cleanly: close_notify and FIN to the client (which then closes), FIN to
 * the upstream; the client's close (or the linger timer) closes. */
void sp_end_gracefully(struct sp_conn *c)
{
    if (c->phase == PH_LINGER)
        return;
    (void)cg_stream_shutdown(&c->down);
    if (c->up_connected)
        (void)cg_stream_shutdown(&c->up);
    arm(c, PH_LINGER, LINGER_MS);
}

/* Stopping: a connection ends at a message boundary once it answered since the stop, or
 * once its idle grace ran out. */
static void maybe_stop(struct sp_conn *c)
{
    if (c->srv->stopping && c->up_connected && (c->answered_since_stop || c->grace_over) &&
        sp_msg_between(c))
        sp_end_gracefully(c);
}

/* Where the response head in held ends (after its blank line), or 0 while incomplete. */
static size_t held_head_end(struct sp_conn *c)
{
    const uint8_t *d = (const uint8_t *)c->held.data;
    for (size_t i = c->held_scan; i + 4 <= c->held.len; i++)
        if (d[i] == '\r' && d[i + 1] == '\n' && d[i + 2] == '\r' && d[i + 3] == '\n')
            return i + 4;
    c->held_scan = c->held.len > 3 ? c->held.len - 3 : 0;
    return 0;
}

/* The status of the response head at d (HTTP/1.x NNN ...), or 0 when it does not look so. */
static int head_status(const uint8_t *d, size_t len)
{
    if (len < 12 || memcmp(d, "HTTP/1.", 7) != 0 || d[8] != ' ')
        return 0;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (d[i] < '0' || d[i] > '9')
            return 0;
        st = st * 10 + (d[i] - '0');
    }
    return st;
}

static void held_reset(struct sp_conn *c)
{
    c->held.len = 0;
    c->held_scan = 0;
}

/*
 * Stopping: upstream bytes that start at a response boundary are held until the response
 * head is complete, then sent with "Connection: close" added before its blank line (a 1xx
 * head is sent as is and the search goes on). The parser has seen the bytes already; this
 * only changes what the client reads. Returns 0 or a negative code (write failed).
 */
static int relay_announcing(struct sp_conn *c, const uint8_t *data, size_t len)
{
    static const char close_hdr[] = "Connection: close\r\n\r\n";
    if (c->held.len + len > HELD_MAX || cg_buf_append(&c->held, data, len) < 0) {
        /* A head this large is not annotated: send it as it came. */
        int rc = cg_stream_write(&c->down, c->held.data, c->held.len);
        if (rc == 0)
            rc = cg_stream_write(&c->down, data, len);
        held_reset(c);
        c->announced = 1;
        return rc;
    }
    for (;;) {
        size_t end = held_head_end(c);
        if (end == 0)
            return 0; /* hold until the head is complete */
        int status = head_status((const uint8_t *)c->held.data, end);
        if (status >= 100 && status < 200) {
            int rc = cg_stream_write(&c->down, c->held.data, end);
            if (rc < 0)
                return rc;
            memmove(c->held.data, c->held.data + end, c->held.len - end);
            c->held.len -= end;
            c->held_scan = 0;
            if (c->held.len == 0)
                return 0;
            continue;
        }
        uv_buf_t bufs[3] = {uv_buf_init((char *)c->held.data, (unsigned)end),
                            uv_buf_init((char *)c->held.data + end, (unsigned)(c->held.len - end))};
        unsigned n = 2;
        if (status != 0) {
            bufs[0].len = end - 2; /* before the blank line */
            bufs[2] = bufs[1];
            bufs[1] = uv_buf_init((char *)close_hdr, sizeof(close_hdr) - 1);
            n = 3;
        }
        int rc = cg_stream_writev(&c->down, bufs, n);
        cg_buf_free(&c->held);
        c->held_scan = 0;
        c->announced = 1;
        return rc;
    }
}

/* ---- relaying ---- */

/* Adds what the client leg moved since the last call to the server's byte counters. */
static void count_bytes(struct sp_conn *c)
{
    cg_stream_count(&c->down, &c->srv->stats.bytes_from_client, &c->srv->stats.bytes_to_client);
}

static void from_client(struct sp_conn *c, const uint8_t *data, size_t len)
{
    if (!sp_msg_from_client(c, data, len)) {
        if (!c->up_connected) {
            if (cg_buf_append(&c->early, data, len) < 0) {
                sp_conn_close(c, UV_ENOBUFS, "early_data_overflow");
                return;
            }
        } else {
            int rc = cg_stream_write(&c->up, data, len);
            if (rc < 0) {
                sp_conn_close(c, rc, "write_failed");
                return;
            }
        }
    }
    if (!cg_conn_live(&c->conn))
        return;
    if (!c->up_connected) {
        if (c->early.len >= CG_STREAM_HIGH_WATER)
            cg_stream_read_stop(&c->down);
        return;
    }
    if (c->up.queued >= CG_STREAM_HIGH_WATER)
        cg_stream_read_stop(&c->down);
    maybe_stop(c);
}

static void from_upstream(struct sp_conn *c, const uint8_t *data, size_t len)
{
    int announce = c->srv->stopping && !c->announced && c->tracking &&
                   (c->held.len > 0 || !cg_http_parser_in_message(c->respp));
    sp_msg_track_response(c, data, len);
    int rc = announce ? relay_announcing(c, data, len) : cg_stream_write(&c->down, data, len);
    if (rc < 0) {
        sp_conn_close(c, rc, "write_failed");
        return;
    }
    if (c->down.queued >= CG_STREAM_HIGH_WATER)
        cg_stream_read_stop(&c->up);
    if (c->gated) {
        if (!c->tracking && !c->tunnel) {
            /* Access control needs the boundaries: an upstream answering out of turn or in
             * broken HTTP ends the connection. */
            sp_conn_close(c, CG_EHTTP, "upstream_http_error");
            return;
        }
        if (c->upgrade_refused && c->track_len == 0) {
            sp_end_gracefully(c); /* an Upgrade answered without 101: no request may follow */
            return;
        }
        sp_msg_unblock(c);
    }
    maybe_stop(c);
}

static void on_read(struct cg_stream *s, const uint8_t *data, size_t len)
{
    struct sp_conn *c = s->data;
    if (c->up_connected && c->phase == PH_RELAY)
        arm(c, PH_RELAY, c->srv->idle_timeout_ms);
    if (s == &c->down)
        from_client(c, data, len);
    else
        from_upstream(c, data, len);
    count_bytes(c);
}

static void on_drain(struct cg_stream *s)
{
    struct sp_conn *c = s->data;
    struct cg_stream *peer = peer_of(c, s);
    if (!peer->eof && (peer != &c->up || c->up_connected) &&
        (peer != &c->down || (!sp_msg_blocked(c) && c->pending.len == 0)))
        (void)cg_stream_read_start(peer);
    maybe_stop(c);
    maybe_done(c);
}

static void on_eof(struct cg_stream *s)
{
    struct sp_conn *c = s->data;
    struct cg_stream *peer = peer_of(c, s);
    if (s == &c->down && c->phase == PH_LINGER) {
        sp_conn_close(c, 0, c->up_dead ? "upstream_unreachable" : "shutdown");
        return;
    }
    if (peer == &c->up && (!c->up_connected || sp_msg_blocked(c) || c->pending.len > 0))
        return; /* shut down once connected (on_up_connect) or unblocked (req_unblock) */
    (void)cg_stream_shutdown(peer);
    maybe_done(c);
}

static void on_error(struct cg_stream *s, int err)
{
    struct sp_conn *c = s->data;
    if (c->phase == PH_LINGER) {
        /* Ended on our side already: how the client or the upstream goes does not matter
         * (many clients close without close_notify once they saw ours). */
        sp_conn_close(c, err, c->up_dead ? "upstream_unreachable" : "shutdown");
        return;
    }
    if (s == &c->up)
        sp_conn_close(c, err, "upstream_error");
    else
        sp_conn_close(c, err, err == CG_ETLS ? "client_tls_error_or_truncation" : "client_error");
}

/* The upstream cannot be reached (error or connect timeout): HTTP mode answers 502 JSON, TCP
 * mode closes; the connection lingers until the client closes. */
static void upstream_failed(struct sp_conn *c, int status)
{
    if (c->up_inited) {
        cg_conn_drop_leg(&c->conn, 1);
        c->up_inited = 0;
    }
    c->srv->stats.upstream_failures++;
    if (!c->srv->tcp_mode)
        sp_msg_count_status(c->srv, 502);
    cg_logf(CG_LOG_WARN, "upstream.connect", CG_LF_UINT("id", c->conn.id),
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
    (void)cg_stream_shutdown(&c->down);
    c->up_dead = 1;
    count_bytes(c);
    arm(c, PH_LINGER, LINGER_MS);
}

static void on_up_connect(struct cg_stream *s, int status)
{
    struct sp_conn *c = s->data;
    if (status < 0) {
        upstream_failed(c, status);
        return;
    }
    c->up_connected = 1;
    arm(c, PH_RELAY, c->srv->idle_timeout_ms);
    if (c->early.len > 0 && cg_stream_write(&c->up, c->early.data, c->early.len) < 0) {
        sp_conn_close(c, UV_EPIPE, "write_failed");
        return;
    }
    cg_buf_free(&c->early);
    if (sp_msg_blocked(c) || c->pending.len > 0)
        ; /* reading resumes in req_unblock */
    else if (c->down.eof)
        (void)cg_stream_shutdown(&c->up);
    else
        (void)cg_stream_read_start(&c->down);
    (void)cg_stream_read_start(&c->up);
    if (c->srv->stopping)
        arm(c, PH_GRACE, STOP_GRACE_MS); /* its first request is answered, then it ends */
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
    if (status < 0) {
        const struct cg_verdict *v = s->tls != NULL ? cg_tls_verdict(s->tls) : NULL;
        c->srv->stats.handshake_failures++;
        /* Said once per failed handshake, in words: the usual cause is a misconfigured peer. */
        if (v != NULL && v->check[0] != '\0')
            cg_logf(CG_LOG_INFO, "handshake.failed", CG_LF_UINT("id", c->conn.id),
                    CG_LF_STR("check", v->check), CG_LF_STR("actual", v->actual));
        sp_conn_close(c, status, "handshake_failed");
        return;
    }
    int rc = cg_stream_init(&c->up, c->srv->loop, c->srv->upstream.is_unix, &up_cb, c);
    if (rc == 0) {
        c->up_inited = 1;
        cg_conn_add_leg(&c->conn, 1, &c->up);
        rc = cg_stream_connect(&c->up, &c->srv->upstream);
    }
    if (rc < 0) {
        upstream_failed(c, rc);
        return;
    }
    arm(c, PH_CONNECTING, c->srv->upstream_connect_timeout_ms);
}

static void on_cert_ready(struct sp_waiter *w, int status)
{
    struct sp_conn *c = (struct sp_conn *)((char *)w - offsetof(struct sp_conn, waiter));
    if (!cg_conn_live(&c->conn))
        return;
    if (status < 0) {
        c->srv->stats.handshake_failures++;
        sp_conn_close(c, status, "evidence_failed");
        return;
    }
    cg_stream_handshake(&c->down);
}

/* ---- the connection core's callbacks ---- */

static void on_timeout(struct cg_conn *conn)
{
    struct sp_conn *c = conn->data;
    switch (c->phase) {
    case PH_HANDSHAKE:
        c->srv->stats.handshake_failures++;
        sp_conn_close(c, UV_ETIMEDOUT, "handshake_timeout");
        break;
    case PH_CONNECTING:
        upstream_failed(c, UV_ETIMEDOUT);
        break;
    case PH_RELAY:
        sp_conn_close(c, UV_ETIMEDOUT, "idle_timeout");
        break;
    case PH_GRACE:
        c->grace_over = 1;
        arm(c, PH_RELAY, c->srv->idle_timeout_ms);
        maybe_stop(c);
        break;
    case PH_LINGER:
        sp_conn_close(c, 0, c->up_dead ? "upstream_unreachable" : "shutdown");
        break;
    }
}

static void on_stop(struct cg_conn *conn)
{
    struct sp_conn *c = conn->data;
    /* Handshaking or connecting: the grace starts once connected (on_up_connect). */
    if (c->phase == PH_RELAY && sp_msg_between(c))
        arm(c, PH_GRACE, STOP_GRACE_MS);
}

static void on_close(struct cg_conn *conn)
{
    struct sp_conn *c = conn->data;
    struct sp_server *srv = c->srv;
    count_bytes(c);
    srv->stats.conns_active--;
    sp_attester_cancel(&c->waiter);
}

static void on_free(struct cg_conn *conn)
{
    struct sp_conn *c = conn->data;
    sp_msg_free(c);
    cg_buf_free(&c->early);
    cg_buf_free(&c->held);
    free(c);
}

static void on_stopped(struct cg_conns *set)
{
    struct sp_server *srv = set->data;
    if (srv->on_idle != NULL)
        srv->on_idle(srv);
}

static void on_accept(struct cg_conns *set, uv_stream_t *listener)
{
    struct sp_server *srv = set->data;
    struct sp_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        cg_log_error("accept", "err=\"out of memory\"");
        return;
    }
    cg_conn_init(&c->conn, set, c);
    c->srv = srv;
    srv->stats.conns_total++;
    srv->stats.conns_active++;
    cg_buf_init(&c->early, EARLY_MAX);
    cg_buf_init(&c->held, HELD_MAX);
    c->waiter.ready = on_cert_ready;
    int rc = cg_conn_accept(&c->conn, &c->down, listener, &down_cb);
    if (rc < 0) {
        sp_conn_close(c, rc, "accept_failed");
        return;
    }
    if (cg_conns_full(set)) {
        sp_conn_close(c, UV_EBUSY, "too_many_connections");
        return;
    }
    if (!srv->tcp_mode && sp_msg_init(c) < 0) {
        sp_conn_close(c, UV_ENOMEM, "out_of_memory");
        return;
    }
    struct cg_tls *t = NULL;
    rc = cg_tls_new(srv->tls, 0, &t);
    if (rc < 0) {
        sp_conn_close(c, rc, "tls_init_failed");
        return;
    }
    cg_tls_set_data(t, &c->waiter);
    c->waiter.tls = t;
    cg_stream_set_tls(&c->down, t);
    arm(c, PH_HANDSHAKE, srv->handshake_timeout_ms);
    rc = cg_stream_read_start(&c->down);
    if (rc < 0)
        sp_conn_close(c, rc, "read_failed");
}

static const struct cg_conn_ops conn_ops = {
    .on_accept = on_accept,
    .on_timeout = on_timeout,
    .on_drain = on_stop,
    .on_close = on_close,
    .on_free = on_free,
    .on_stopped = on_stopped,
};

int sp_server_start(struct sp_server *s)
{
    int rc = cg_conns_init(&s->set, s->loop, &conn_ops, s);
    if (rc < 0)
        return rc;
    s->set.name = "server";
    s->set.max_conns = s->max_conns;
    return cg_conns_listen(&s->set, &s->listen_addr, 511);
}

void sp_server_stop(struct sp_server *s)
{
    s->stopping = 1;
    cg_conns_drain(&s->set);
}

void sp_server_abort(struct sp_server *s)
{
    s->stopping = 1;
    cg_conns_abort(&s->set, "shutdown_deadline");
}
