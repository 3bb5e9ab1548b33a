#include <stdlib.h>
#include <string.h>

#include "ccgate/log.h"
#include "cp_int.h"

/*
 * The servers of a forward as its connections share them: which one a new leg goes to, the
 * pool of idle verified legs of each, the gate, and ejection.
 *
 * A new leg goes to the server cp_select prefers: in rotation (its last appraisal passed)
 * before not appraised yet before ejected, then the one with the fewest outstanding requests;
 * never one that failed appraisal for the same requests. With no server in rotation the
 * request goes to an ejected one, whose handshake (with a nonce) is its re-appraisal.
 *
 * The gate of a server lets one handshake go first and the others wait for its verdict: a
 * handshake with a nonce (a burst of new connections costs one evidence request), or a probe
 * of a server that refused connections (retried with backoff, so that a restarting server
 * costs waiting, not errors). Waiting connections are released from the loop, never inside
 * the call that ended the probe, and choose their server again.
 */

#define DOWN_FIRST_MS 25
#define DOWN_MAX_MS 1000
#define EJECT_FIRST_MS 250
#define EJECT_MAX_MS 10000

static const char *const state_names[] = {"never", "verified", "ejected", "unreachable"};

/* ---- choosing a server ---- */

static enum cp_rank rank(const struct cp_conn *c, const struct cp_peer *p)
{
    if ((c->refused >> p->index) & 1u)
        return CP_RANK_EXCLUDED;
    switch (p->state) {
    case CP_PEER_VERIFIED:
        return CP_RANK_VERIFIED;
    case CP_PEER_NEVER:
        return CP_RANK_NEVER;
    default:
        return p->probe == NULL && !uv_is_active((const uv_handle_t *)&p->probe_timer)
                   ? CP_RANK_DUE
                   : CP_RANK_BACKOFF;
    }
}

struct cp_peer *cp__pick(const struct cp_conn *c)
{
    const struct cp_server *srv = c->srv;
    struct cp_cand cands[CP_MAX_SERVERS];
    for (size_t i = 0; i < srv->n_peers; i++) {
        const struct cp_peer *p = srv->peers[i];
        cands[i] = (struct cp_cand){rank(c, p), cp__tried(c, p), p->outstanding};
    }
    int i = cp_select(cands, srv->n_peers, srv->rr % (srv->n_peers ? srv->n_peers : 1));
    return i < 0 ? NULL : srv->peers[i];
}

void cp__track(struct cp_conn *c)
{
    unsigned want = 0;
    if (c->peer != NULL && c->state != CP_CLOSED)
        want = c->state == CP_PIPE ? 1 : c->q_forward;
    if (c->peer != NULL)
        c->peer->outstanding = c->peer->outstanding - c->charged + want;
    c->charged = want;
}

void cp__bind(struct cp_conn *c, struct cp_peer *p)
{
    if (c->peer == p)
        return;
    if (c->peer != NULL)
        c->peer->outstanding -= c->charged;
    c->charged = 0;
    c->peer = p;
    if (p != NULL) {
        c->last_server = p->addr.text;
        c->srv->rr++;
    }
    cp__track(c);
}

/* ---- the gate ---- */

int cp__gate_must_wait(struct cp_peer *p, int nonce)
{
    if (p->down_ms > 0)
        return p->gate_inflight > 0 || uv_is_active((uv_handle_t *)&p->gate_timer);
    return nonce && p->gate_inflight > 0;
}

void cp__gate_unlink(struct cp_conn *c)
{
    struct cp_peer *p = c->peer;
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
    cp__bind(c, NULL);
}

void cp__gate_park(struct cp_conn *c, struct cp_peer *p)
{
    cp__bind(c, p);
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

/* From the loop: each waiting connection chooses its server again and goes on, until one
 * becomes this server's next probe (the others keep waiting for its verdict). */
static void gate_release(uv_timer_t *t)
{
    struct cp_peer *p = t->data;
    while (p->gate_head != NULL && p->gate_inflight == 0) {
        struct cp_conn *w = p->gate_head;
        cp__gate_unlink(w);
        cp__up_start(w, NULL, 0);
    }
}

void cp__gate_end(struct cp_up *u)
{
    struct cp_peer *p = u->peer;
    if (!u->gate)
        return;
    u->gate = 0;
    p->gate_inflight--;
    if (p->gate_head == NULL || uv_is_active((uv_handle_t *)&p->gate_timer))
        return;
    (void)uv_timer_start(&p->gate_timer, gate_release, p->down_ms, 0);
}

int cp__peer_unreachable(struct cp_conn *c, struct cp_peer *p, int err)
{
    struct cp_server *srv = c->srv;
    if (srv->server_wait_ms == 0 || srv->stopping)
        return 0;
    p->down_err = err;
    if (c->wait_since_ms == 0)
        c->wait_since_ms = uv_now(srv->loop);
    p->down_ms = cp_backoff_next(p->down_ms, DOWN_FIRST_MS, DOWN_MAX_MS);
    cp__gate_park(c, p);
    (void)uv_timer_start(&p->gate_timer, gate_release, p->down_ms, 0);
    return 1;
}

/* ---- rotation ---- */

void cp__peer_verified(struct cp_peer *p, int nonce)
{
    struct cp_server *srv = p->srv;
    p->down_ms = 0;
    p->eject_ms = 0;
    if (nonce || p->state != CP_PEER_VERIFIED) {
        uint64_t max_ms = (uint64_t)srv->policy->freshness.max_age_s * 1000;
        /* Appraised again before the key ages out, so that requests never wait for it. */
        cp__probe_schedule(p, max_ms * 3 / 4 > 500 ? max_ms * 3 / 4 : 500);
    }
    if (p->state == CP_PEER_VERIFIED)
        return;
    cg_log_info("server.verified", "forward=%s server=%s previous=%s", p->srv->name, p->addr.text,
                state_names[p->state]);
    p->state = CP_PEER_VERIFIED;
    /* Connections waiting at the gate of a server that is down choose again. */
    for (size_t i = 0; i < srv->n_peers; i++) {
        struct cp_peer *q = srv->peers[i];
        if (q != p && q->gate_head != NULL && q->gate_inflight == 0)
            (void)uv_timer_start(&q->gate_timer, gate_release, 0, 0);
    }
}

void cp__peer_eject(struct cp_peer *p, enum cp_peer_state state, const struct cg_verdict *why)
{
    struct cp_server *srv = p->srv;
    if (srv->stopping)
        return;
    int was_in = p->state == CP_PEER_VERIFIED || p->state == CP_PEER_NEVER;
    /* Nothing verified before is trusted again without new evidence. */
    cp_fresh_forget(&p->fresh);
    cp__pool_flush(p);
    if (was_in) {
        p->ejections++;
        p->eject_ms = 0;
        cg_log_warn("server.ejected", "forward=%s server=%s state=%s check=%s actual=\"%s\"",
                    p->srv->name, p->addr.text, state_names[state], why->check, why->actual);
    }
    p->state = state;
    /* The next appraisal after the backoff, unless one is on its way (its end schedules). */
    if (p->probe == NULL && (was_in || !uv_is_active((uv_handle_t *)&p->probe_timer))) {
        p->eject_ms = cp_backoff_next(p->eject_ms, EJECT_FIRST_MS, EJECT_MAX_MS);
        cp__probe_schedule(p, p->eject_ms);
    }
}

const char *cp__peer_state_name(enum cp_peer_state s)
{
    return state_names[s];
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
    pool_unlink(u->peer, u);
    srv->stats.pool_dropped++;
    cg_log_debug("pool.drop", "forward=%s server=%s reason=%s pooled=%zu", srv->name,
                 u->peer->addr.text, why, u->peer->pool_len);
    cg_stream_shutdown(&u->s);
    cg_stream_close(&u->s, cp__up_closed, u);
}

/* Whether a leg may stay for another app: not failed, same key generation, still fresh. */
static int leg_usable(const struct cp_up *u, time_t now)
{
    return !u->s.eof && !u->s.failed && !u->s.shut && u->gen == u->peer->pool_gen &&
           now - u->verified_at < (time_t)u->srv->policy->freshness.max_age_s;
}

/* Whether c's leg is between messages and may serve another app: every exchange answered,
 * nothing half-parsed, the server did not say close. */
static int poolable(const struct cp_conn *c)
{
    const struct cp_up *u = c->up;
    if (u == NULL || c->state == CP_PIPE || c->state == CP_UPGRADING || c->up_state != UP_READY ||
        u->last || c->leg_tainted)
        return 0;
    if (c->q_forward != 0 || c->pending.len != 0 || cg_http_parser_in_message(u->resp))
        return 0;
    if (c->req != NULL && cg_http_parser_in_message(c->req) && c->q_len > 0 &&
        c->q[(c->q_head + c->q_len - 1) % c->q_cap].kind == X_FORWARD)
        return 0;
    return 1;
}

int cp__pool_insert(struct cp_up *u)
{
    struct cp_server *srv = u->srv;
    struct cp_peer *p = u->peer;
    if (srv->pool_max == 0 || srv->stopping || srv->tcp_mode || p->pool_len >= srv->pool_max ||
        !leg_usable(u, time(NULL)))
        return 0;
    u->c = NULL;
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

int cp__pool_put(struct cp_conn *c)
{
    struct cp_up *u = c->up;
    if (!poolable(c) || !cp__pool_insert(u))
        return 0;
    c->up = NULL;
    c->up_state = UP_NONE;
    cp__bind(c, NULL);
    cg_conn_release(&c->conn);
    return 1;
}

/* Takes p's most recently used pooled leg that is still usable, or NULL. */
static struct cp_up *pool_take(struct cp_peer *p)
{
    time_t now = time(NULL);
    while (p->pool != NULL) {
        struct cp_up *u = p->pool;
        if (!leg_usable(u, now)) {
            cp__pool_drop(u, "stale");
            continue;
        }
        pool_unlink(p, u);
        return u;
    }
    return NULL;
}

int cp__pool_attach(struct cp_conn *c, struct cp_peer *p)
{
    struct cp_up *u = pool_take(p);
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
    cp__bind(c, p);
    c->up_state = UP_READY;
    c->srv->stats.pool_reused++;
    return 1;
}

static void pool_sweep(uv_timer_t *t)
{
    struct cp_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    time_t wall = time(NULL);
    for (size_t i = 0; i < srv->n_peers; i++) {
        for (struct cp_up *u = srv->peers[i]->pool, *next; u != NULL; u = next) {
            next = u->pool_next;
            if (now - u->pooled_at_ms >= srv->pool_idle_ms)
                cp__pool_drop(u, "idle");
            else if (!leg_usable(u, wall))
                cp__pool_drop(u, "stale"); /* e.g. older than max_age_s: never taken again */
        }
    }
}

void cp__pool_flush(struct cp_peer *p)
{
    p->pool_gen++;
    while (p->pool != NULL)
        cp__pool_drop(p->pool, "flush");
}

size_t cp_server_pool_len(const struct cp_server *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_peers; i++)
        n += s->peers[i]->pool_len;
    return n;
}

/* ---- the servers' lifetime ---- */

int cp_server_add_server(struct cp_server *s, const char *hostport, char *err, size_t errlen)
{
    struct cp_peer *p = NULL;
    if (s->n_peers >= CP_MAX_SERVERS) {
        snprintf(err, errlen, "at most %d servers per forward", CP_MAX_SERVERS);
        return CG_ECONFIG;
    }
    p = calloc(1, sizeof(*p));
    struct cp_peer **peers = realloc(s->peers, (s->n_peers + 1) * sizeof(*peers));
    if (p == NULL || peers == NULL) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return CG_ECONFIG;
    }
    s->peers = peers;
    char why[256];
    if (cg_addr_parse(hostport, 0, &p->addr, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "server '%s': %s", hostport, why);
        free(p);
        return CG_ECONFIG;
    }
    for (size_t i = 0; i < s->n_peers; i++) {
        if (strcmp(s->peers[i]->addr.text, p->addr.text) == 0) {
            snprintf(err, errlen, "server '%s' is listed twice", hostport);
            free(p);
            return CG_ECONFIG;
        }
    }
    p->srv = s;
    p->index = (unsigned)s->n_peers;
    s->peers[s->n_peers++] = p;
    return 0;
}

void cp_server_free(struct cp_server *s)
{
    for (size_t i = 0; i < s->n_peers; i++) {
        cp_fresh_free(&s->peers[i]->fresh);
        free(s->peers[i]);
    }
    free(s->peers);
    s->peers = NULL;
    s->n_peers = 0;
}

void cp__peers_start(struct cp_server *srv)
{
    (void)uv_timer_init(srv->loop, &srv->sweep_timer);
    srv->sweep_timer.data = srv;
    unsigned sweep = srv->pool_idle_ms < 2000 ? srv->pool_idle_ms / 2 + 1 : 1000;
    (void)uv_timer_start(&srv->sweep_timer, pool_sweep, sweep, sweep);
    uv_unref((uv_handle_t *)&srv->sweep_timer);
    for (size_t i = 0; i < srv->n_peers; i++) {
        struct cp_peer *p = srv->peers[i];
        (void)uv_timer_init(srv->loop, &p->gate_timer);
        (void)uv_timer_init(srv->loop, &p->probe_timer);
        p->gate_timer.data = p->probe_timer.data = p;
        uv_unref((uv_handle_t *)&p->gate_timer);
        uv_unref((uv_handle_t *)&p->probe_timer);
        cp__probe_schedule(p, 0);
    }
}

void cp__peers_stop(struct cp_server *srv)
{
    uv_close((uv_handle_t *)&srv->sweep_timer, NULL);
    for (size_t i = 0; i < srv->n_peers; i++) {
        struct cp_peer *p = srv->peers[i];
        if (p->probe == NULL)
            (void)uv_timer_stop(&p->probe_timer);
        cp__pool_flush(p);
    }
}

void cp__peers_close(struct cp_server *srv)
{
    for (size_t i = 0; i < srv->n_peers; i++) {
        struct cp_peer *p = srv->peers[i];
        uv_close((uv_handle_t *)&p->gate_timer, NULL);
        uv_close((uv_handle_t *)&p->probe_timer, NULL);
        cp__probe_abort(p);
    }
}
