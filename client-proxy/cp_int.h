#ifndef CP_INT_H
#define CP_INT_H

/*
 * Inside the client sidecar: one app connection, its exchanges and its attested leg.
 *   cp_app.c     the app leg: request parsing, the queue of exchanges, answers made here,
 *                what the one timer measures and the close; the listener, the connection
 *                list, the timer and the deferred close are common/net's connection core
 *   cp_up.c      the attested leg: connect, handshake, the response path, retry or 502
 *   cp_peer.c    a server as the connections share it: the choice of server, the pool,
 *                the gate, ejection
 *   cp_probe.c   the background appraisal of each server (at start, before its key ages)
 *   cp_select.c  the choice among servers and the backoff, as pure functions
 *   cp_fwd.c     the forwarder (head rewrite, body framing), shared with the fuzzer
 *   cp_status.c  appraisal results: /verification, readiness, counters
 *   cp_metrics.c /metrics for every forward of the process
 */

#include "ccgate/conn.h"
#include "ccgate/stream.h"
#include "cp_errors.h"
#include "cp_fwd.h"
#include "cp_proxy.h"
#include "cp_select.h"

#define CP_LOCAL_PREFIX "/.well-known/ccgate/"
#define CP_PENDING_MAX (CG_STREAM_HIGH_WATER + 2 * 64 * 1024)
#define CP_QUEUE_CAP 1024         /* exchanges queued on one app connection */
#define CP_QUEUE_PAUSE 64         /* stop reading the app beyond this many */
#define CP_REPLAY_MAX (64 * 1024) /* requests larger than this are not retried */
#define CP_LINGER_MS 5000
/* An app connection idle this long gives its attested leg back to the pool (or closes it):
 * an idle keep-alive connection then costs its own few KiB, not a TLS connection's. */
#define CP_LEG_IDLE_MS 1000

/* What the app connection does now. */
enum cp_state {
    CP_HTTP,      /* reading requests; each becomes an exchange */
    CP_UPGRADING, /* an Upgrade request went up: app bytes wait for its answer */
    CP_PIPE,      /* bytes pass untouched both ways (TCP mode, or after a 101) */
    CP_ENDING,    /* the app asked to close: its last request is read, all answered, then FIN */
    CP_REFUSED,   /* a request was refused or the server failed: nothing more is read; the
                     queued exchanges are answered (in order), then FIN */
    CP_LINGER,    /* FIN sent: app bytes are read and dropped until it closes (no reset) */
    CP_CLOSED
};

/* Where the attested leg stands. UP_WAITING: parked until the gate's handshake has verified
 * the server (or until the next probe of a server refusing connections). */
enum cp_up_state { UP_NONE, UP_WAITING, UP_CONNECTING, UP_HANDSHAKING, UP_READY };

/* What the connection's one timer measures. */
enum cp_timer {
    T_NONE,
    T_HEADERS,
    T_LEG_IDLE, /* idle with a leg: give the leg back */
    T_IDLE,
    T_HANDSHAKE,
    T_SERVER_WAIT,
    T_RESPONSE,
    T_LINGER
};

/* One request and its answer. FORWARD goes to the server; the others are answered here when
 * they reach the front of the queue, in order. */
enum cp_xkind {
    X_FORWARD,
    X_VERIFICATION, /* GET or HEAD of the local verification path */
    X_NOT_FOUND,    /* another local path */
    X_ERROR,        /* a request we refuse (c->err_status): the last of the connection */
    X_FAILED,       /* forwarded, but the server cannot answer (c->fail): answered here */
};

struct cp_exchange {
    uint8_t kind;
    uint8_t head;       /* a HEAD request: the answer has no body */
    uint8_t complete;   /* the request was read to its end */
    uint8_t openai;     /* an OpenAI API path: errors answered here take that shape */
    uint32_t up_bytes;  /* its bytes in the replay buffer */
    uint32_t seq;       /* its number on the connection, from 1 (the access log's req) */
    uint8_t method_off; /* in meta: where the method begins */
    uint16_t path_off;  /* in meta: where the path (no query, at most CP_LOG_PATH_MAX) begins */
    uint64_t start_ns;  /* when its head was read (or it was refused) */
    uint64_t bytes_in;  /* request body bytes read */
    char *meta;         /* "request id\0method\0path\0", owned; NULL when not known */
};

#define CP_LOG_PATH_MAX 256 /* bytes of a path kept for the access log */

/* X_FAILED: why the server cannot answer; e's pointers point into this. */
struct cp_fail {
    struct cp_error e;
    struct cg_verdict v;
    char reason[64];
};

/* The attested leg towards ccgate-server; pooled between app connections. */
struct cp_up {
    struct cg_stream s;
    struct cp_conn *c; /* NULL while pooled */
    struct cp_server *srv;
    struct cp_peer *peer; /* the server it goes to */
    struct cg_http_parser *resp;
    uint64_t started_ns;
    struct cp_up *pool_prev, *pool_next;
    uint64_t pooled_at_ms; /* loop time it went idle */
    time_t verified_at;    /* when its handshake completed */
    unsigned gen;          /* peer pool_gen at the handshake */
    unsigned pooled : 1;
    unsigned gate : 1;  /* the probe: others wait for its verdict */
    unsigned last : 1;  /* the server said close: no request after the current ones */
    unsigned probe : 1; /* the background appraisal's handshake (no app connection) */
};

struct cp_conn {
    struct cg_conn conn; /* in srv->set; legs[0] = down; the attested leg is held (it pools) */
    struct cp_server *srv;
    enum cp_state state;
    enum cp_up_state up_state;
    enum cp_timer timer_kind;
    struct cg_stream down;
    struct cg_http_parser *req;
    struct cp_up *up;
    struct cp_peer *peer;    /* the server of the leg, or of the gate it waits at; else NULL */
    unsigned charged;        /* what it counts in peer->outstanding */
    uint32_t tried;          /* servers where its unanswered requests failed (by index bit) */
    uint32_t refused;        /* servers that failed appraisal for them: never sent there */
    const char *last_server; /* address of the server it went to last (in 502 bodies) */
    /* The exchanges, oldest first: a ring grown on demand up to CP_QUEUE_CAP. */
    struct cp_exchange *q;
    uint16_t q_cap, q_head, q_len;
    uint16_t q_forward; /* FORWARD exchanges in the queue */
    struct cp_fwd to_up, to_app;
    uint32_t n_requests; /* request heads read on this connection */
    int resp_status;
    uint8_t front_bytes;  /* a byte of the front exchange's answer came from the server */
    uint8_t resp_started; /* the front's final response head went to the app */
    uint8_t retried;      /* the front exchange was sent again once already */
    uint8_t nonce_retry_done;
    uint8_t replay_ok;          /* replay holds every unanswered forwarded request whole */
    uint8_t leg_tainted;        /* part of a refused request went up: the leg is never reused */
    uint8_t pool_on_close;      /* closed between messages of HTTP: the leg may go to the pool */
    uint64_t front_sent_ns;     /* when the front request went up (or became the front) */
    uint64_t resp_head_ns;      /* when the front's final response head came; 0 before */
    uint64_t wait_since_ms;     /* loop time it began waiting for a server refusing connections */
    struct cg_buf pending;      /* request bytes held until the leg is verified */
    struct cg_buf replay;       /* unanswered idempotent requests, to send again on a new leg */
    struct cg_buf held;         /* app bytes that followed an Upgrade request */
    int err_status;             /* X_ERROR: the status; err_error and err_reason say why */
    const char *err_error;
    char err_reason[96];
    struct cp_fail *fail;                  /* X_FAILED: the answer (owned) */
    struct cp_conn *gate_prev, *gate_next; /* in the peer's queue while UP_WAITING */
};

/* ---- cp_app.c: the app leg, its exchanges and the one close path ---- */

/* Closes the app connection (idempotent): c becomes CP_CLOSED now; the core logs reason once
 * with byte counts, and its leg is pooled or closed later, from the loop (on_close). Never
 * starts nor closes another connection inside the call. */
void cp__conn_close(struct cp_conn *c, const char *reason);
/* Re-arms the connection's timer for what it waits on now. */
void cp__rearm(struct cp_conn *c);
/* Writes to the app unless the connection is ending. */
void cp__write_down(struct cp_conn *c, const void *data, size_t len);
/* Answers the exchanges at the front of the queue that are answered here. */
void cp__answer_front(struct cp_conn *c);
/* The server cannot answer: every forwarded exchange is answered e (copied; JSON in the
 * shape its path asks for), in order after those before it; then the connection ends. */
void cp__fail_all(struct cp_conn *c, const struct cp_error *e);
/* fail_all with a 502 naming error, the check that failed (when v) and the server. */
void cp__fail_verdict(struct cp_conn *c, const char *error, const struct cg_verdict *v);
/* The front exchange's answer is complete. */
void cp__front_done(struct cp_conn *c);
/* Resumes reading the app if it was paused for the queue or the leg's backpressure. */
void cp__resume_down(struct cp_conn *c);
/* A pipe whose both directions ended and drained closes. */
void cp__pipe_maybe_done(struct cp_conn *c);
static inline struct cp_exchange *cp__front(struct cp_conn *c)
{
    return c->q_len > 0 ? &c->q[c->q_head] : NULL;
}
/* The exchange's request id, or NULL when not known. */
static inline const char *cp__xid(const struct cp_exchange *x)
{
    return x->meta;
}

/* ---- cp_up.c: the attested leg, the response path and the retry ---- */

/* Sends request bytes towards the server: on the leg, or pending until it is verified (a
 * pooled leg is taken, or a new one started, as needed). */
void cp__send_up(struct cp_conn *c, const void *data, size_t len);
/* Starts a new attested leg for c to p (NULL: the server cp__pick chooses), from the pool
 * when one is there, else connecting (parked behind p's gate when needed). */
void cp__up_start(struct cp_conn *c, struct cp_peer *p, int with_nonce);
/* Closes c's leg (after close_notify when clean); c->up becomes NULL. */
void cp__up_discard(struct cp_conn *c, int clean);
/* Response parser for a leg carrying c's exchanges; 0 or a libuv code. */
int cp__up_parser(struct cp_conn *c, struct cg_http_parser **out);
/* The leg is ready: pending bytes go, the app is read again. */
void cp__up_ready(struct cp_conn *c);
/* The timer for the handshake fired, or the one for a server refusing connections. */
void cp__up_timeout(struct cp_conn *c, int waited_for_server);
/* A new leg to p for c (NULL: a background appraisal) with its TLS engine (asking for fresh
 * evidence when nonce), not connected yet. 0 or a negative code (nothing allocated). */
int cp__up_open(struct cp_peer *p, struct cp_conn *c, int nonce, struct cp_up **out);
/* The verdict of a failed handshake (status): the appraisal's, or a TLS failure. */
void cp__handshake_verdict(const struct cg_tls *t, int status, struct cg_verdict *out);
/* u's handshake passed: counted, the gate opened, its server in rotation. */
void cp__handshake_passed(struct cp_up *u);
/* Connecting to p failed with status: counted, logged, p out of rotation; v says why. */
void cp__connect_failed(struct cp_peer *p, int status, struct cg_verdict *v);

/* ---- cp_peer.c: the choice of server, the pool of verified connections, the gate ---- */

/* Initializes the timers of srv and its servers. */
void cp__peers_start(struct cp_server *srv);
/* Stopping: no new background appraisal; pooled connections close. One in flight finishes,
 * so that the connections waiting for its verdict go on while they drain. */
void cp__peers_stop(struct cp_server *srv);
/* Every app connection is gone: closes the timers and an appraisal still in flight. */
void cp__peers_close(struct cp_server *srv);
/* The server for c's next leg (cp_select over the servers), or NULL when every one failed
 * appraisal for c's requests. */
struct cp_peer *cp__pick(const struct cp_conn *c);
/* Whether c's unanswered requests already failed at p. */
static inline int cp__tried(const struct cp_conn *c, const struct cp_peer *p)
{
    return (c->tried >> p->index) & 1u;
}
/* c's leg (or its wait) is now at p (NULL: none); its requests count there. */
void cp__bind(struct cp_conn *c, struct cp_peer *p);
/* Recounts c's outstanding requests at its server (after the queue changed). */
void cp__track(struct cp_conn *c);
/* Whether a new leg to p must wait for the probe in flight (or for the next probe). */
int cp__gate_must_wait(struct cp_peer *p, int nonce);
void cp__gate_park(struct cp_conn *c, struct cp_peer *p);
void cp__gate_unlink(struct cp_conn *c);
/* The probe's handshake ended: waiting connections go on (from the loop, not inside). */
void cp__gate_end(struct cp_up *u);
/* A connect failed with err and no other server is left to try: c waits at p's gate for its
 * next probe, or fails once the wait is over. Returns 1 if c waits. */
int cp__peer_unreachable(struct cp_conn *c, struct cp_peer *p, int err);
/* A handshake with p passed (nonce: with fresh evidence): in rotation, backoffs cleared,
 * connections waiting elsewhere choose again. */
void cp__peer_verified(struct cp_peer *p, int nonce);
/* p failed (state: CP_PEER_EJECTED or CP_PEER_UNREACHABLE) for why: out of rotation, its key
 * and pool dropped; appraised again after the backoff. */
void cp__peer_eject(struct cp_peer *p, enum cp_peer_state state, const struct cg_verdict *why);
/* "never", "verified", "ejected" or "unreachable". */
const char *cp__peer_state_name(enum cp_peer_state s);
/* Drops p's pooled legs and makes live ones unpoolable. */
void cp__pool_flush(struct cp_peer *p);
/* Moves c's leg into the pool when it may serve another app; returns 1 if it did. */
int cp__pool_put(struct cp_conn *c);
/* Puts a verified leg nobody uses into its server's pool; 0 when there is no room. */
int cp__pool_insert(struct cp_up *u);
/* Gives c a pooled leg to p: 1 when it got one. */
int cp__pool_attach(struct cp_conn *c, struct cp_peer *p);
/* Closes a pooled leg. */
void cp__pool_drop(struct cp_up *u, const char *why);
/* A leg's stream closed: frees it. */
void cp__up_closed(struct cg_stream *s, void *arg);

/* ---- cp_probe.c: the background appraisal of each server ---- */

/* Runs p's next background appraisal after ms (instead of the one planned), unless one is in
 * flight: its end plans the next. */
void cp__probe_schedule(struct cp_peer *p, uint64_t ms);
/* The appraisal's leg connected (status 0) or failed to. */
void cp__probe_connected(struct cp_up *u, int status);
/* Its handshake ended: 0 (verified: the leg goes to the pool) or an error. */
void cp__probe_handshake(struct cp_up *u, int status);
/* Its stream failed or ended before the handshake did. */
void cp__probe_lost(struct cp_up *u, int err);
/* Stops p's appraisal in flight (shutdown). */
void cp__probe_abort(struct cp_peer *p);

/* ---- cp_status.c: appraisal results, verification JSON, metrics helpers ---- */

/* A failed appraisal at p: counted (by check) and remembered as p's last failure. */
void cp__record_failure(struct cp_peer *p, const struct cg_verdict *v);
/* Another failure (connect, reset): remembered as p's last failure only. */
void cp__note_failure(struct cp_peer *p, const struct cg_verdict *v);
/* An appraisal with evidence passed at p. */
void cp__record_success(struct cp_peer *p);
void cp__observe(struct cg_hist *h, uint64_t since_ns);
void cp__count_status(struct cp_server *srv, int status);

#endif
