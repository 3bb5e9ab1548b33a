#include <stdlib.h>
#include <string.h>

#include "ccgate/log.h"
#include "cp_int.h"

/*
 * The attested leg: connect, handshake (the appraisal runs inside it), the response path
 * towards the app, and what happens when the leg ends under unanswered exchanges: an
 * idempotent request that got no byte of its answer is sent again once on a new, verified
 * leg, to another server when there is one; any other gets a 502 from here. A leg that fails
 * before it carried a byte (connect, appraisal, handshake timeout) costs nothing: its requests
 * go to another server not tried yet, or get the 502 when none is left. The app never sees
 * its connection end without a status for a request whose head it sent, unless an answer was
 * already half delivered.
 */

static const struct cg_http_callbacks resp_cb;

/* The next response answers a HEAD request: its parser must not expect a body. */
static void arm_head(struct cp_conn *c)
{
    struct cp_exchange *x = cp__front(c);
    if (c->up != NULL && x != NULL && x->kind == X_FORWARD && x->head)
        cg_http_parser_expect_head_response(c->up->resp);
}

int cp__up_parser(struct cp_conn *c, struct cg_http_parser **out)
{
    return cg_http_parser_new(CG_HTTP_RESPONSE, NULL, &resp_cb, c, out);
}

void cp__up_closed(struct cg_stream *s, void *arg)
{
    struct cp_up *u = arg;
    (void)s;
    struct cp_conn *c = u->c;
    cg_conns_count_free(&u->srv->set);
    cg_http_parser_free(u->resp);
    free(u);
    if (c != NULL)
        cg_conn_release(&c->conn);
}

void cp__up_discard(struct cp_conn *c, int clean)
{
    struct cp_up *u = c->up;
    if (u == NULL)
        return;
    cp__gate_end(u);
    c->up = NULL;
    c->up_state = UP_NONE;
    cp__bind(c, NULL);
    if (clean && u->s.handshaken)
        cg_stream_shutdown(&u->s); /* close_notify: a clean end, not a truncation */
    cg_stream_close(&u->s, cp__up_closed, u);
}

/* ---- app -> server ---- */

static void write_up(struct cp_conn *c, const void *data, size_t len)
{
    if (cg_stream_write(&c->up->s, data, len) < 0)
        cp__conn_close(c, "server_write_failed");
}

void cp__send_up(struct cp_conn *c, const void *data, size_t len)
{
    if (c->state == CP_CLOSED)
        return;
    if (c->replay_ok && c->state != CP_PIPE) {
        if (cg_buf_append(&c->replay, data, len) < 0) {
            c->replay_ok = 0;
            cg_buf_free(&c->replay);
        } else if (c->q_len > 0) {
            c->q[(c->q_head + c->q_len - 1) % c->q_cap].up_bytes += (uint32_t)len;
        }
    }
    if (c->up_state == UP_READY) {
        write_up(c, data, len);
        cp__track(c);
        return;
    }
    if (cg_buf_append(&c->pending, data, len) < 0) {
        cp__conn_close(c, "pending_overflow");
        return;
    }
    if (c->up_state == UP_NONE)
        cp__up_start(c, NULL, 0); /* a pooled leg sends the pending bytes at once */
    cp__track(c);
}

/* ---- server -> app ---- */

static int resp_on_head(void *arg, const struct cg_http_head *h)
{
    struct cp_conn *c = arg;
    struct cp_exchange *x = cp__front(c);
    if (x == NULL || x->kind != X_FORWARD)
        return CG_EHTTP; /* a response nobody asked for */
    c->resp_status = h->status;
    c->front_bytes = 1;
    int informational = h->status >= 100 && h->status < 200;
    if (!informational) {
        c->resp_head_ns = uv_hrtime();
        cp__observe(&c->srv->stats.response_latency, c->front_sent_ns);
    }
    /* Any head is progress; after a 1xx the final response gets a full timeout again. */
    c->resp_started = !informational;
    c->timer_kind = T_NONE;
    if (!informational && !h->keep_alive)
        c->up->last = 1; /* the server closes after this one: the app's connection stays */
    /* The app's connection ends after this answer when it asked so (no request follows). */
    int keep = informational || !(c->state == CP_ENDING && c->q_len == 1);
    c->to_app.request_id = cp__xid(x);
    int rc = cp_fwd_head(&c->to_app, h, keep);
    c->to_app.request_id = NULL;
    return rc;
}

static int resp_on_body(void *arg, const uint8_t *data, size_t len)
{
    struct cp_conn *c = arg;
    cp_fwd_body(&c->to_app, data, len);
    return 0;
}

static void start_pipe(struct cp_conn *c);

static int resp_on_complete(void *arg)
{
    struct cp_conn *c = arg;
    if (c->resp_status == 101) {
        if (c->state != CP_UPGRADING)
            return CG_EHTTP; /* switching protocols nobody asked for */
        start_pipe(c);
        return 0;
    }
    if (c->resp_status >= 100 && c->resp_status < 200)
        return 0; /* the final response follows */
    cp_fwd_end(&c->to_app);
    if (!cp__front(c)->complete)
        c->up->last = 1; /* answered before its body ended: the rest of it goes nowhere */
    cp__count_status(c->srv, c->resp_status);
    cp__front_done(c);
    arm_head(c);
    return 0;
}

static const struct cg_http_callbacks resp_cb = {resp_on_head, resp_on_body, resp_on_complete};

/* ---- a byte pipe after a 101 ---- */

/* The server answered an Upgrade with 101: from now on bytes pass untouched both ways. */
static void start_pipe(struct cp_conn *c)
{
    cp__count_status(c->srv, 101);
    c->state = CP_PIPE;
    cp__front_done(c);
    c->replay_ok = 0;
    cg_buf_free(&c->replay);
    c->timer_kind = T_NONE;
    if (c->held.len > 0)
        cp__send_up(c, c->held.data, c->held.len);
    cg_buf_free(&c->held);
    if (c->state == CP_CLOSED)
        return;
    if (c->down.eof)
        cg_stream_shutdown(&c->up->s);
    else
        (void)cg_stream_read_start(&c->down);
    cp__rearm(c);
}

/* Both directions ended (FIN one way, close_notify the other) and all is written. */
void cp__pipe_maybe_done(struct cp_conn *c)
{
    if (c->state != CP_PIPE || c->up == NULL)
        return;
    if (c->down.eof && c->up->s.eof && c->down.queued == 0 && c->up->s.queued == 0)
        cp__conn_close(c, "done");
}

/* ---- losing the leg ---- */

/* A leg died before any byte of the front's answer: the unanswered requests (all
 * idempotent, all in the replay buffer) go again on a new leg, verified before they go.
 * Returns 1 if so. */
static int retry(struct cp_conn *c, const char *why)
{
    if (!c->replay_ok || c->retried || c->replay.len == 0 || c->srv->stopping)
        return 0;
    struct cp_server *srv = c->srv;
    srv->stats.retries++;
    cg_log_info("request.retry", "id=%llu forward=%s server=%s reason=%s bytes=%zu",
                (unsigned long long)c->conn.id, srv->name, c->peer->addr.text, why, c->replay.len);
    c->retried = 1;
    c->tried |= 1u << c->peer->index; /* another server, when there is one */
    cp__up_discard(c, 0);
    c->resp_started = 0;
    c->front_bytes = 0;
    /* The new leg sends the replayed requests first; pending bytes were never sent. */
    cg_buf_free(&c->pending);
    if (cg_buf_append(&c->pending, c->replay.data, c->replay.len) < 0) {
        cp__conn_close(c, "pending_overflow");
        return 1;
    }
    cp__up_start(c, NULL, 0);
    return 1;
}

/* c's leg to p failed before it carried a byte of c's (connect, appraisal, handshake): its
 * requests, all still pending, go to a server not tried yet (the leg, if any, is closed).
 * Returns 1 if so; else c keeps its leg. */
static int move_on(struct cp_conn *c, struct cp_peer *p)
{
    c->tried |= 1u << p->index;
    struct cp_peer *q = cp__pick(c);
    if (q == NULL || cp__tried(c, q) || c->srv->stopping)
        return 0;
    cg_log_info("request.failover", "id=%llu forward=%s from=%s server=%s",
                (unsigned long long)c->conn.id, c->srv->name, p->addr.text, q->addr.text);
    c->nonce_retry_done = 0;
    cp__up_discard(c, 0);
    cp__up_start(c, q, 0);
    return 1;
}

/* p reset or cut a leg (err): out of rotation until appraised again. */
static void peer_reset(struct cp_peer *p, int err)
{
    struct cg_verdict v;
    (void)cg_reject(&v, err, "server.reset", "the connection ended cleanly", "%s",
                    cg_strerror(err));
    cp__note_failure(p, &v);
    cp__peer_eject(p, CP_PEER_EJECTED, &v);
}

/* The leg ended (error or close) under the app connection. */
static void up_lost(struct cp_conn *c, const char *why)
{
    if (c->state == CP_PIPE) {
        cp__conn_close(c, why);
        return;
    }
    if (c->q_forward == 0 && c->pending.len == 0) {
        /* Nothing asked: the app's connection stays; its next request takes another leg. */
        cp__up_discard(c, 0);
        return;
    }
    if (c->front_bytes || c->resp_started) {
        /* Part of an answer went out: it stays truncated (the app sees the close). */
        cp__conn_close(c, why);
        return;
    }
    if (retry(c, why))
        return;
    cp__up_discard(c, 0);
    struct cp_error e = {
        .status = 502, .error = "server_closed", .reason = why, .retried = c->retried};
    cp__fail_all(c, &e);
}

static void up_on_read(struct cg_stream *s, const uint8_t *data, size_t len)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    if (c == NULL) {
        cp__pool_drop(u, "unexpected_data"); /* nothing was asked: the stream is out of step */
        return;
    }
    if (c->state == CP_CLOSED) {
        u->last = 1; /* bytes nobody reads: the leg is out of step, never pooled */
        return;
    }
    if (c->state == CP_PIPE) {
        cp__write_down(c, data, len);
        if (c->state != CP_CLOSED && c->down.queued >= CG_STREAM_HIGH_WATER)
            cg_stream_read_stop(s);
        cp__rearm(c);
        return;
    }
    long n = cg_http_parser_feed(u->resp, data, len);
    if (c->state == CP_CLOSED || c->up != u)
        return;
    if (n < 0) {
        cg_log_warn("server.bad_response", "id=%llu forward=%s reason=\"%s\"",
                    (unsigned long long)c->conn.id, c->srv->name, cg_http_parser_reason(u->resp));
        if (c->front_bytes && !c->resp_started)
            c->front_bytes = 0; /* only the bad bytes: nothing of them reached the app */
        if (c->resp_started) {
            cp__conn_close(c, "bad_response");
            return;
        }
        /* No answer began: nobody's, or the front's, which gets a 502 (never a retry: the
         * server did answer something). */
        c->retried = 1;
        up_lost(c, "bad_response");
        return;
    }
    if (cg_http_parser_in_message(u->resp))
        c->front_bytes = 1;
    if (c->state == CP_PIPE && (size_t)n < len)
        cp__write_down(c, data + n, len - (size_t)n); /* the first bytes of the tunnel */
    if (c->state != CP_CLOSED && c->down.queued >= CG_STREAM_HIGH_WATER)
        cg_stream_read_stop(s);
    /* The server said close and has answered everything sent: the leg ends here. */
    if (c->up == u && u->last && c->q_forward == 0 && c->state != CP_PIPE)
        cp__up_discard(c, 1);
}

static void up_on_eof(struct cg_stream *s)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    if (u->probe) {
        cp__probe_lost(u, UV_EOF);
        return;
    }
    if (c == NULL) {
        cp__pool_drop(u, "server_closed");
        return;
    }
    if (c->state == CP_CLOSED)
        return; /* its close pools or closes the leg; eof keeps it out of the pool */
    if (c->state == CP_PIPE) {
        cg_stream_shutdown(&c->down);
        cp__pipe_maybe_done(c);
        return;
    }
    if (cg_http_parser_in_message(u->resp) && cg_http_parser_finish(u->resp) < 0) {
        up_lost(c, "server_truncated");
        return;
    }
    if (c->state == CP_CLOSED || c->up != u)
        return;
    up_lost(c, "server_closed");
}

static void up_on_error(struct cg_stream *s, int err)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    struct cp_peer *p = u->peer;
    if (u->probe) {
        cp__probe_lost(u, err);
        return;
    }
    if (c == NULL) {
        cp__pool_drop(u, "server_error");
        peer_reset(p, err);
        return;
    }
    if (c->state == CP_CLOSED)
        return;
    peer_reset(p, err);
    if (c->up_state != UP_READY && move_on(c, p))
        return; /* cut during the handshake: nothing of c's went up */
    up_lost(c, "server_error");
}

static void up_on_drain(struct cg_stream *s)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    if (c == NULL || c->state == CP_CLOSED)
        return;
    cp__resume_down(c);
    cp__pipe_maybe_done(c);
}

void cp__up_ready(struct cp_conn *c)
{
    struct cp_up *u = c->up;
    c->up_state = UP_READY;
    arm_head(c);
    if (c->pending.len > 0 && cg_stream_write(&u->s, c->pending.data, c->pending.len) < 0) {
        cp__conn_close(c, "server_write_failed");
        return;
    }
    cg_buf_free(&c->pending);
    if (c->state == CP_PIPE && c->down.eof)
        cg_stream_shutdown(&u->s);
    cp__resume_down(c);
    cp__rearm(c);
}

void cp__handshake_verdict(const struct cg_tls *t, int status, struct cg_verdict *out)
{
    const struct cg_verdict *v = cg_tls_verdict(t);
    if (v == NULL || v->check[0] == '\0')
        (void)cg_reject(out, CG_ETLS, "tls.handshake", "a TLS 1.3 RA-TLS server", "%s",
                        cg_strerror(status));
    else
        *out = *v;
}

void cp__handshake_passed(struct cp_up *u)
{
    struct cp_server *srv = u->srv;
    struct cp_peer *p = u->peer;
    int nonce = cg_tls_sent_nonce(u->s.tls);
    srv->stats.handshakes++;
    srv->stats.handshake_seconds_sum += (double)(uv_hrtime() - u->started_ns) / 1e9;
    if (nonce) {
        srv->stats.verify_ok++;
        cp__record_success(p);
        cp__observe(&srv->stats.verification_latency, u->started_ns);
    }
    u->verified_at = time(NULL);
    u->gen = p->pool_gen;
    cp__gate_end(u);
    cp__peer_verified(p, nonce);
}

static void up_on_handshake(struct cg_stream *s, int status)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    struct cp_peer *p = u->peer;
    if (u->probe) {
        cp__probe_handshake(u, status);
        return;
    }
    if (c->state == CP_CLOSED)
        return; /* closed meanwhile: its close ends the leg (and the gate's probe) */
    c->timer_kind = T_NONE;
    cg_conn_timer(&c->conn, 0);
    if (status == 0) {
        cp__handshake_passed(u);
        c->nonce_retry_done = 0; /* the next key change (another server, a restart) gets one */
        cp__up_ready(c);
        return;
    }
    if (cp_fresh_key_changed(s->tls) && !c->nonce_retry_done) {
        /* The server presents a key we have not verified (restart, rotation): ask for
         * fresh evidence bound to that key. */
        c->srv->stats.key_changes++;
        cg_log_info("attest.key_changed", "id=%llu forward=%s server=%s: reconnecting with a nonce",
                    (unsigned long long)c->conn.id, c->srv->name, p->addr.text);
        cp_fresh_forget(&p->fresh);
        cp__pool_flush(p);
        c->nonce_retry_done = 1;
        cp__up_discard(c, 0);
        cp__up_start(c, p, 1);
        return;
    }
    struct cg_verdict v;
    cp__handshake_verdict(s->tls, status, &v);
    cp__record_failure(p, &v);
    cg_log_error("attest.failed",
                 "id=%llu forward=%s server=%s check=%s expected=\"%s\" actual=\"%s\": nothing "
                 "was sent",
                 (unsigned long long)c->conn.id, c->srv->name, p->addr.text, v.check, v.expected,
                 v.actual);
    cp__up_discard(c, 0);
    c->refused |= 1u << p->index; /* these requests never go there */
    cp__peer_eject(p, CP_PEER_EJECTED, &v);
    if (move_on(c, p))
        return;
    cp__fail_verdict(c, "attestation_failed", &v);
}

void cp__connect_failed(struct cp_peer *p, int status, struct cg_verdict *v)
{
    p->srv->stats.server_unreachable++;
    (void)cg_reject(v, status, "server.connect", p->addr.text, "%s", cg_strerror(status));
    cg_log_warn("server.unreachable", "forward=%s server=%s err=\"%s\"", p->srv->name, p->addr.text,
                cg_strerror(status));
    cp__note_failure(p, v);
    cp__peer_eject(p, CP_PEER_UNREACHABLE, v);
}

static void up_on_connect(struct cg_stream *s, int status)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    struct cp_peer *p = u->peer;
    if (u->probe) {
        cp__probe_connected(u, status);
        return;
    }
    if (c->state == CP_CLOSED)
        return;
    if (status < 0) {
        struct cg_verdict v;
        cp__up_discard(c, 0);
        cp__connect_failed(p, status, &v);
        if (move_on(c, p))
            return;
        /* Every server was tried: wait for the best one's next probe (until
         * server-wait-ms). */
        struct cp_peer *q = cp__pick(c);
        if (q != NULL && c->state != CP_PIPE && cp__peer_unreachable(c, q, status))
            return;
        cp__fail_verdict(c, "server_unreachable", &v);
        return;
    }
    p->down_ms = 0;
    c->wait_since_ms = 0;
    c->up_state = UP_HANDSHAKING;
    (void)cg_stream_read_start(s);
    cg_stream_handshake(s);
}

static const struct cg_stream_callbacks up_cb = {
    .on_read = up_on_read,
    .on_eof = up_on_eof,
    .on_error = up_on_error,
    .on_handshake = up_on_handshake,
    .on_drain = up_on_drain,
    .on_connect = up_on_connect,
};

int cp__up_open(struct cp_peer *p, struct cp_conn *c, int nonce, struct cp_up **out)
{
    struct cp_server *srv = p->srv;
    struct cg_tls *t = NULL;
    struct cp_up *u = calloc(1, sizeof(*u));
    int rc = UV_ENOMEM;
    if (u == NULL)
        return rc;
    u->c = c;
    u->srv = srv;
    u->peer = p;
    u->started_ns = uv_hrtime();
    if (c != NULL && !srv->tcp_mode && (rc = cp__up_parser(c, &u->resp)) < 0)
        goto fail;
    if ((rc = cp_fresh_tls_new(&p->fresh, nonce, &t)) < 0)
        goto fail;
    if ((rc = cg_stream_init(&u->s, srv->loop, 0, &up_cb, u)) < 0) {
        cg_tls_free(t);
        goto fail;
    }
    cg_stream_set_tls(&u->s, t);
    if (nonce)
        srv->stats.handshakes_with_nonce++;
    *out = u;
    return 0;
fail:
    cg_http_parser_free(u->resp);
    free(u);
    return rc;
}

void cp__up_start(struct cp_conn *c, struct cp_peer *p, int with_nonce)
{
    struct cp_server *srv = c->srv;
    struct cp_up *u;
    if (p == NULL && (p = cp__pick(c)) == NULL) {
        struct cg_verdict v;
        (void)cg_reject(&v, CG_EEVIDENCE, "server.none",
                        "a server that did not fail appraisal for this request", "%zu failed",
                        srv->n_peers);
        cp__fail_verdict(c, "attestation_failed", &v);
        return;
    }
    int nonce = with_nonce || cp_fresh_needs_nonce(&p->fresh, time(NULL));
    if (!with_nonce && cp__gate_must_wait(p, nonce)) {
        cp__gate_park(c, p);
        return;
    }
    /* A verified idle leg goes first, except for a retry (that one may be as stale as the
     * leg that just died). */
    if (!srv->tcp_mode && !nonce && !c->retried && cp__pool_attach(c, p)) {
        cp__up_ready(c);
        return;
    }
    if (cp__up_open(p, c, nonce, &u) < 0) {
        cp__conn_close(c, "server_connect_failed");
        return;
    }
    cg_conn_hold(&c->conn);
    c->up = u;
    c->up_state = UP_CONNECTING;
    cp__bind(c, p);
    if (nonce || p->down_ms > 0) {
        u->gate = 1;
        p->gate_inflight++;
    }
    c->timer_kind = T_NONE;
    cp__rearm(c);
    if (cg_stream_connect(&u->s, &p->addr) < 0) {
        cp__up_discard(c, 0);
        cp__conn_close(c, "server_connect_failed");
    }
}

void cp__up_timeout(struct cp_conn *c, int waited_for_server)
{
    struct cp_server *srv = c->srv;
    struct cp_peer *p = c->peer != NULL ? c->peer : srv->peers[0];
    struct cg_verdict v;
    cp__gate_unlink(c);
    cp__up_discard(c, 0);
    if (waited_for_server) {
        (void)cg_reject(&v, p->down_err, "server.connect", p->addr.text, "%s for %u ms",
                        cg_strerror(p->down_err), srv->server_wait_ms);
        cp__fail_verdict(c, "server_unreachable", &v);
        return;
    }
    (void)cg_reject(&v, CG_ETIMEOUT, "server.handshake_timeout", "a handshake in time",
                    "none after %u ms", srv->handshake_timeout_ms);
    cp__record_failure(p, &v);
    cg_log_error("attest.failed",
                 "id=%llu forward=%s server=%s check=%s actual=\"%s\": nothing was sent",
                 (unsigned long long)c->conn.id, srv->name, p->addr.text, v.check, v.actual);
    cp__peer_eject(p, CP_PEER_EJECTED, &v);
    if (move_on(c, p))
        return;
    cp__fail_verdict(c, "attestation_failed", &v);
}
