#include <stdlib.h>

#include "ccgate/log.h"
#include "cp_int.h"

/*
 * The background appraisal of each server: a handshake with a nonce that no app connection
 * waits on, at start, again before the verified key gets older than the policy's max_age_s,
 * and after an ejection's backoff. It holds the server's gate like any handshake with a
 * nonce, so that connections arriving meanwhile wait for its verdict instead of asking for
 * evidence of their own. A passing one leaves its verified leg in the pool; a failing one
 * ejects the server (again), with a longer backoff.
 */

#define PROBE_BUSY_MS 250 /* another handshake holds the gate: look again after this */

static void probe_due(uv_timer_t *t);

void cp__probe_schedule(struct cp_peer *p, uint64_t ms)
{
    uv_timer_t *t = &p->probe_timer;
    if (p->srv->stopping || p->probe != NULL || uv_is_closing((uv_handle_t *)t))
        return; /* stopping, or the one in flight schedules the next */
    (void)uv_timer_start(t, probe_due, ms, 0);
}

/* The appraisal ended: the server no longer waits on it. */
static void probe_end(struct cp_up *u)
{
    struct cp_peer *p = u->peer;
    p->probe = NULL;
    u->probe = 0;
    (void)uv_timer_stop(&p->probe_timer);
    cp__gate_end(u);
}

static void probe_failed(struct cp_up *u, enum cp_peer_state state, const struct cg_verdict *v)
{
    struct cp_peer *p = u->peer;
    probe_end(u);
    cg_stream_close(&u->s, cp__up_closed, u);
    cp__peer_eject(p, state, v);
}

static void probe_due(uv_timer_t *t)
{
    struct cp_peer *p = t->data;
    struct cp_server *srv = p->srv;
    struct cg_verdict v;
    struct cp_up *u = p->probe;
    if (u != NULL) {
        (void)cg_reject(&v, CG_ETIMEOUT, "server.handshake_timeout", "a handshake in time",
                        "none after %u ms", srv->handshake_timeout_ms);
        cp__record_failure(p, &v);
        cg_log_error("attest.failed", "forward=%s server=%s check=%s actual=\"%s\" background=1",
                     p->srv->name, p->addr.text, v.check, v.actual);
        probe_failed(u, CP_PEER_EJECTED, &v);
        return;
    }
    if (srv->stopping)
        return;
    if (p->gate_inflight > 0) {
        (void)uv_timer_start(t, probe_due, PROBE_BUSY_MS, 0);
        return;
    }
    int rc = cp__up_open(p, NULL, 1, &u);
    if (rc == 0 && (rc = cg_stream_connect(&u->s, &p->addr)) < 0)
        cg_stream_close(&u->s, cp__up_closed, u);
    if (rc < 0) {
        cg_log_error("attest.probe_failed", "forward=%s server=%s err=\"%s\"", p->srv->name,
                     p->addr.text, cg_strerror(rc));
        (void)uv_timer_start(t, probe_due, srv->handshake_timeout_ms, 0);
        return;
    }
    u->probe = 1;
    u->gate = 1;
    p->gate_inflight++;
    p->probe = u;
    (void)uv_timer_start(t, probe_due, srv->handshake_timeout_ms, 0);
}

void cp__probe_connected(struct cp_up *u, int status)
{
    if (status < 0) {
        struct cg_verdict v;
        cp__connect_failed(u->peer, status, &v);
        probe_failed(u, CP_PEER_UNREACHABLE, &v);
        return;
    }
    u->peer->down_ms = 0;
    (void)cg_stream_read_start(&u->s);
    cg_stream_handshake(&u->s);
}

void cp__probe_handshake(struct cp_up *u, int status)
{
    struct cp_peer *p = u->peer;
    if (status == 0) {
        probe_end(u);
        cp__handshake_passed(u);
        cg_log_debug("attest.refreshed", "forward=%s server=%s", p->srv->name, p->addr.text);
        if (!cp__pool_insert(u)) {
            cg_stream_shutdown(&u->s);
            cg_stream_close(&u->s, cp__up_closed, u);
        }
        return;
    }
    struct cg_verdict v;
    cp__handshake_verdict(u->s.tls, status, &v);
    cp__record_failure(p, &v);
    cg_log_error("attest.failed",
                 "forward=%s server=%s check=%s expected=\"%s\" actual=\"%s\" background=1",
                 p->srv->name, p->addr.text, v.check, v.expected, v.actual);
    probe_failed(u, CP_PEER_EJECTED, &v);
}

void cp__probe_lost(struct cp_up *u, int err)
{
    struct cg_verdict v;
    (void)cg_reject(&v, err, "tls.handshake", "a TLS 1.3 RA-TLS server", "%s", cg_strerror(err));
    cp__note_failure(u->peer, &v);
    cg_log_warn("attest.failed", "forward=%s server=%s check=%s actual=\"%s\" background=1",
                u->srv->name, u->peer->addr.text, v.check, v.actual);
    probe_failed(u, CP_PEER_EJECTED, &v);
}

void cp__probe_abort(struct cp_peer *p)
{
    struct cp_up *u = p->probe;
    if (u == NULL)
        return;
    p->probe = NULL;
    u->probe = 0;
    u->gate = 0;
    p->gate_inflight--; /* no connection is left to release */
    cg_stream_close(&u->s, cp__up_closed, u);
}
