#include <stdlib.h>
#include <string.h>

#include "ccgate/log.h"
#include "cp_int.h"

/*
 * The attested server as the connections of a forward share it: the pool of idle verified
 * legs, and the gate. The gate lets one handshake go first and the others wait for its
 * verdict: a handshake with a nonce (a burst of new connections costs one evidence request),
 * or a probe of a server that refused connections (retried with backoff, so that a restarting
 * server costs waiting, not errors). Waiting connections are released from the loop, never
 * inside the call that ended the probe.
 */

#define DOWN_FIRST_MS 25
#define DOWN_MAX_MS 1000

/* ---- the gate ---- */

int cp__gate_must_wait(struct cp_server *srv, int nonce)
{
    struct cp_peer *p = &srv->peer;
    if (p->down_ms > 0)
        return p->gate_inflight > 0 || uv_is_active((uv_handle_t *)&p->gate_timer);
    return nonce && p->gate_inflight > 0;
}

void cp__gate_unlink(struct cp_conn *c)
{
    struct cp_peer *p = &c->srv->peer;
    if (c->up_state != UP_WAITING)
        return;
    if (c->gate_prev != NULL)
        c->gate_prev->gate_next = c->gate_next;
    else
        p->gate_head = c->gate_next;
    if (c->gate_next != NULL)
        c->gate_next->gate_prev = c->gate_prev;
    else
        p->gate_tail = c->gate_prev;
    c->gate_prev = c->gate_next = NULL;
    c->up_state = UP_NONE;
}

void cp__gate_park(struct cp_conn *c)
{
    struct cp_peer *p = &c->srv->peer;
    c->up_state = UP_WAITING;
    c->gate_next = NULL;
    c->gate_prev = p->gate_tail;
    if (p->gate_tail != NULL)
        p->gate_tail->gate_next = c;
    else
        p->gate_head = c;
    p->gate_tail = c;
    cp__rearm(c);
}

/* From the loop: with the server verified and reachable, every waiting connection goes on;
 * otherwise the first one becomes the next probe and the others keep waiting. */
static void gate_release(uv_timer_t *t)
{
    struct cp_server *srv = t->data;
    struct cp_peer *p = &srv->peer;
    while (p->gate_head != NULL && p->gate_inflight == 0) {
        struct cp_conn *w = p->gate_head;
        int verified = !cp_fresh_needs_nonce(&p->fresh, time(NULL)) && p->down_ms == 0;
        cp__gate_unlink(w);
        cp__up_start(w, 0);
        if (!verified)
            break;
    }
}

void cp__gate_end(struct cp_up *u)
{
    struct cp_peer *p = &u->srv->peer;
    if (!u->gate)
        return;
    u->gate = 0;
    p->gate_inflight--;
    if (p->gate_head == NULL || uv_is_active((uv_handle_t *)&p->gate_timer))
        return;
    (void)uv_timer_start(&p->gate_timer, gate_release, p->down_ms, 0);
}

int cp__peer_unreachable(struct cp_conn *c, int err)
{
    struct cp_server *srv = c->srv;
    struct cp_peer *p = &srv->peer;
    if (srv->server_wait_ms == 0 || srv->stopping)
        return 0;
    p->down_err = err;
    if (c->wait_since_ms == 0)
        c->wait_since_ms = uv_now(srv->loop);
    p->down_ms = p->down_ms == 0 ? DOWN_FIRST_MS : p->down_ms * 2;
    if (p->down_ms > DOWN_MAX_MS)
        p->down_ms = DOWN_MAX_MS;
    cp__gate_park(c);
    (void)uv_timer_start(&p->gate_timer, gate_release, p->down_ms, 0);
    return 1;
}

void cp__peer_reachable(struct cp_server *srv)
{
    srv->peer.down_ms = 0;
}

/* ---- the pool of idle attested connections ---- */

static void pool_unlink(struct cp_peer *p, struct cp_up *u)
{
    if (!u->pooled)
        return;
    if (u->pool_prev != NULL)
        u->pool_prev->pool_next = u->pool_next;
    else
        p->pool = u->pool_next;
    if (u->pool_next != NULL)
        u->pool_next->pool_prev = u->pool_prev;
    u->pool_prev = u->pool_next = NULL;
    u->pooled = 0;
    p->pool_len--;
}

void cp__pool_drop(struct cp_up *u, const char *why)
{
    struct cp_server *srv = u->srv;
    pool_unlink(&srv->peer, u);
    srv->stats.pool_dropped++;
    cg_log_debug("pool.drop", "forward=%s reason=%s pooled=%zu", srv->name, why,
                 srv->peer.pool_len);
    cg_stream_shutdown(&u->s);
    cg_stream_close(&u->s, cp__up_closed, u);
}

/* Whether c's leg is between messages and may serve another app: every exchange answered,
 * nothing half-parsed, the server did not say close, same key generation, still fresh. */
static int poolable(const struct cp_conn *c)
{
    const struct cp_server *srv = c->srv;
    const struct cp_up *u = c->up;
    if (u == NULL || srv->pool_max == 0 || srv->stopping || srv->peer.pool_len >= srv->pool_max)
        return 0;
    if (c->state == CP_PIPE || c->state == CP_UPGRADING || c->up_state != UP_READY || u->last ||
        c->leg_tainted)
        return 0;
    if (c->q_forward != 0 || c->pending.len != 0 || cg_http_parser_in_message(u->resp))
        return 0;
    if (c->req != NULL && cg_http_parser_in_message(c->req) && c->q_len > 0 &&
        c->q[(c->q_head + c->q_len - 1) % c->q_cap].kind == X_FORWARD)
        return 0;
    if (u->s.eof || u->s.failed || u->s.shut || u->gen != srv->peer.pool_gen)
        return 0;
    return time(NULL) - u->verified_at < (time_t)srv->policy->freshness.max_age_s;
}

int cp__pool_put(struct cp_conn *c)
{
    struct cp_server *srv = c->srv;
    struct cp_peer *p = &srv->peer;
    struct cp_up *u = c->up;
    if (!poolable(c))
        return 0;
    c->up = NULL;
    c->up_state = UP_NONE;
    u->c = NULL;
    cg_conn_release(&c->conn);
    u->pooled = 1;
    u->pooled_at_ms = uv_now(srv->loop);
    u->pool_prev = NULL;
    u->pool_next = p->pool;
    if (p->pool != NULL)
        p->pool->pool_prev = u;
    p->pool = u;
    p->pool_len++;
    /* It keeps reading so that a close by the server is noticed while it waits. */
    (void)cg_stream_read_start(&u->s);
    return 1;
}

/* Takes the most recently used pooled leg that is still usable, or NULL. */
static struct cp_up *pool_take(struct cp_server *srv)
{
    struct cp_peer *p = &srv->peer;
    time_t now = time(NULL);
    while (p->pool != NULL) {
        struct cp_up *u = p->pool;
        if (u->gen != p->pool_gen || u->s.eof || u->s.failed ||
            now - u->verified_at >= (time_t)srv->policy->freshness.max_age_s) {
            cp__pool_drop(u, "stale");
            continue;
        }
        pool_unlink(p, u);
        return u;
    }
    return NULL;
}

int cp__pool_attach(struct cp_conn *c)
{
    struct cp_server *srv = c->srv;
    struct cp_up *u = pool_take(srv);
    if (u == NULL)
        return 0;
    struct cg_http_parser *resp = NULL;
    if (cp__up_parser(c, &resp) < 0) {
        cp__pool_drop(u, "no_memory");
        return 0;
    }
    cg_http_parser_free(u->resp);
    u->resp = resp;
    u->c = c;
    c->up = u;
    cg_conn_hold(&c->conn);
    c->up_state = UP_READY;
    srv->stats.pool_reused++;
    return 1;
}

static void pool_sweep(uv_timer_t *t)
{
    struct cp_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    for (struct cp_up *u = srv->peer.pool, *next; u != NULL; u = next) {
        next = u->pool_next;
        if (now - u->pooled_at_ms >= srv->pool_idle_ms)
            cp__pool_drop(u, "idle");
    }
}

void cp_server_pool_flush(struct cp_server *s)
{
    s->peer.pool_gen++;
    while (s->peer.pool != NULL)
        cp__pool_drop(s->peer.pool, "flush");
}

void cp__peer_start(struct cp_server *srv)
{
    struct cp_peer *p = &srv->peer;
    (void)uv_timer_init(srv->loop, &p->sweep_timer);
    (void)uv_timer_init(srv->loop, &p->gate_timer);
    p->sweep_timer.data = p->gate_timer.data = srv;
    unsigned sweep = srv->pool_idle_ms < 2000 ? srv->pool_idle_ms / 2 + 1 : 1000;
    (void)uv_timer_start(&p->sweep_timer, pool_sweep, sweep, sweep);
    uv_unref((uv_handle_t *)&p->sweep_timer);
    uv_unref((uv_handle_t *)&p->gate_timer);
}

void cp__peer_stop(struct cp_server *srv)
{
    uv_close((uv_handle_t *)&srv->peer.sweep_timer, NULL);
    uv_close((uv_handle_t *)&srv->peer.gate_timer, NULL);
    cp_server_pool_flush(srv);
}
