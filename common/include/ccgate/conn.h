#ifndef CCGATE_CONN_H
#define CCGATE_CONN_H

#include <stdint.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/stream.h"

/*
 * The connection core every daemon shares: a listener, the list of live connections, one
 * timer per connection, one idempotent deferred close, drain and abort.
 *
 * A set (struct cg_conns) owns the listener and the list. A connection (struct cg_conn) is
 * embedded by its owner in the owner's own struct (sp_conn, the admin's connection, ...).
 *
 * Rules:
 * - cg_conn_init() links c into its set; from then on cg_conn_close() is the only way it ends.
 * - Legs (cg_streams) registered with cg_conn_add_leg() and the timer belong to the core:
 *   the core sets their handles' data and closes them; the owner never closes them itself
 *   (cg_conn_drop_leg() ends one leg early).
 * - cg_conn_close(c, err, reason) is idempotent. The first call records err and reason,
 *   stops the timer, mutes the legs (cg_stream_mute: no callback of theirs reaches the owner
 *   afterwards) and queues c; it runs no owner code and touches no other connection. Later
 *   calls do nothing.
 * - Later, from the loop (a uv_idle turn, never inside the call that closed): one log line
 *   `conn.close` with the reason, the error and the byte counts of each leg, then
 *   ops->on_close(c), where the owner updates its counters, releases what it holds (the legs'
 *   TLS engines are still alive there) and may start other work (open another connection,
 *   return a leg to a pool); then the core closes the timer and the legs.
 * - When the last handle of c has closed (legs, timer, plus one per cg_conn_hold()) and
 *   on_close has run, ops->on_free(c) runs: the owner frees the memory.
 * - Drain: cg_conns_drain() stops accepting and asks each live connection to finish its
 *   messages in flight (ops->on_drain, called with c; the owner closes c now when it is
 *   between messages, or at its next message boundary). cg_conns_abort() closes every live
 *   connection now (the drain deadline passed). Once draining and the last connection is
 *   freed, the set closes its own handles and then calls on_stopped once; the set's memory may
 *   be freed there.
 */

struct cg_conn;
struct cg_conns;

struct cg_conn_ops {
    /* A connection waits on the listener: the owner allocates its struct, calls
     * cg_conn_init() and accepts into a leg (cg_conn_accept()). Must accept or close. */
    void (*on_accept)(struct cg_conns *set, uv_stream_t *listener);
    /* The connection's timer fired. NULL: close with UV_ETIMEDOUT, reason "timeout". */
    void (*on_timeout)(struct cg_conn *c);
    /* The set began draining. NULL: close at once, reason "shutdown". */
    void (*on_drain)(struct cg_conn *c);
    /* Deferred close (see above). May be NULL. */
    void (*on_close)(struct cg_conn *c);
    /* Every handle of c has closed: free the owner's struct. Required. */
    void (*on_free)(struct cg_conn *c);
    /* Draining and every connection freed; the set's handles are closed. May be NULL. */
    void (*on_stopped)(struct cg_conns *set);
};

enum cg_conn_state { CG_CONN_LIVE, CG_CONN_CLOSING, CG_CONN_CLOSED };

#define CG_CONN_LEGS 2

struct cg_conn {
    struct cg_conn *prev, *next; /* in the set's live list, then in its close queue */
    struct cg_conns *set;
    void *data; /* the owner's */
    uint64_t id;
    uv_timer_t timer;
    struct cg_stream *legs[CG_CONN_LEGS]; /* legs[0] = down (towards the peer that connected) */
    int err;                              /* what cg_conn_close() recorded */
    const char *reason;                   /* static string */
    unsigned refs;
    enum cg_conn_state state;
};

struct cg_conns_stats {
    uint64_t accepted; /* connections that reached cg_conn_init() */
    uint64_t live;     /* linked and not yet closing */
};

struct cg_conns {
    uv_loop_t *loop;
    const struct cg_conn_ops *ops;
    void *data;         /* the owner's */
    const char *name;   /* in the close log line: "server", "admin", ... */
    unsigned max_conns; /* 0: no limit; see cg_conns_full() */
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } listener;
    uv_idle_t reaper;
    uv_timer_t trim; /* gives freed heap pages back after a burst of closes */
    unsigned freed_since_trim;
    struct cg_conn *live, *closeq;
    uint64_t unfreed; /* initialized and not yet freed */
    struct cg_conns_stats stats;
    int handles; /* the set's own open handles */
    unsigned listening : 1, draining : 1, stopped : 1;
};

/* Initializes set on loop with ops (borrowed; on_accept and on_free required). data is the
 * owner's. Returns 0 or a libuv code; on success the set holds its handles (the reaper and a
 * heap-trim timer that does not keep the loop alive) until it stops (cg_conns_drain). */
int cg_conns_init(struct cg_conns *set, uv_loop_t *loop, const struct cg_conn_ops *ops, void *data);

/* Counts one freed object towards the heap trim that follows a burst of frees (the core counts
 * its connections itself; an owner counts what it frees apart from them, e.g. pooled legs). */
void cg_conns_count_free(struct cg_conns *set);

/* Binds a (TCP, or Unix path) and listens with backlog. Returns 0 or a libuv code. */
int cg_conns_listen(struct cg_conns *set, const struct cg_addr *a, int backlog);

/* Whether the set holds more live connections than max_conns (the owner closes the newest). */
int cg_conns_full(const struct cg_conns *set);

/* Stops accepting and asks each live connection to finish (ops->on_drain). Idempotent. The
 * set stops (on_stopped) once the last connection is freed. */
void cg_conns_drain(struct cg_conns *set);

/* Closes every live connection now with reason (e.g. "shutdown_deadline"). Drains first. */
void cg_conns_abort(struct cg_conns *set, const char *reason);

/* Links c (zeroed or not: every field is set) into set with data as the owner's pointer and
 * starts its timer handle. Cannot fail; from now on only cg_conn_close() ends c. */
void cg_conn_init(struct cg_conn *c, struct cg_conns *set, void *data);

/* Registers an initialized leg (cg_stream_init done) as legs[slot]; the core closes it. */
void cg_conn_add_leg(struct cg_conn *c, int slot, struct cg_stream *s);

/* Closes legs[slot] now (e.g. an upstream that failed to connect); c stays live. */
void cg_conn_drop_leg(struct cg_conn *c, int slot);

/* Initializes legs[0] with cb (stream owner data = c->data), accepts the pending connection
 * of listener into it and registers it. Returns 0 or a libuv code (the caller closes c). */
int cg_conn_accept(struct cg_conn *c, struct cg_stream *s, uv_stream_t *listener,
                   const struct cg_stream_callbacks *cb);

/* (Re)arms the timer: ops->on_timeout after ms. 0 stops it. No effect once closing. */
void cg_conn_timer(struct cg_conn *c, uint64_t ms);

/* Idempotent deferred close (see the rules above). err: 0 or a negative code. reason: a
 * static string. */
void cg_conn_close(struct cg_conn *c, int err, const char *reason);

/* Whether c is still live (not closing). */
static inline int cg_conn_live(const struct cg_conn *c)
{
    return c->state == CG_CONN_LIVE;
}

/* Holds c's memory past its close for one more handle the owner closes itself (a raw libuv
 * handle, a request in flight); cg_conn_release() from that handle's close callback. */
void cg_conn_hold(struct cg_conn *c);
void cg_conn_release(struct cg_conn *c);

#endif
