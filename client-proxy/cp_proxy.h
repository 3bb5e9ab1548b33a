#ifndef CP_PROXY_H
#define CP_PROXY_H

#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/admin.h"
#include "ccgate/buf.h"
#include "ccgate/conn.h"
#include "ccgate/err.h"
#include "ccgate/http.h"
#include "ccgate/policy.h"
#include "ccgate/tls.h"
#include "cp_fresh.h"

struct cp_conn;
struct cp_up;

#define CP_MAX_CHECKS 32 /* distinct failed-check names counted in metrics */

struct cp_stats {
    /* app connections accepted and open: set.stats (the connection core's) */
    uint64_t requests_total;
    uint64_t responses_by_class[6]; /* index = status / 100 */
    uint64_t local_requests;
    uint64_t bytes_from_app;
    uint64_t bytes_to_app;
    uint64_t handshakes;
    uint64_t handshakes_with_nonce;
    uint64_t verify_ok;
    uint64_t verify_failed;
    uint64_t key_changes;
    uint64_t server_unreachable;
    uint64_t conns_refused;     /* over max-connections: 503 */
    uint64_t response_timeouts; /* 504 */
    uint64_t pool_reused;       /* attested connections taken from the pool */
    uint64_t pool_dropped;      /* pooled connections closed (idle, server closed, stale) */
    uint64_t retries;           /* requests sent again after their leg died unanswered */
    double handshake_seconds_sum;
    struct cg_hist response_latency;     /* request sent -> response head from the server */
    struct cg_hist verification_latency; /* connect -> handshake done, with fresh evidence */
    size_t n_checks;
    struct {
        char check[64];
        uint64_t count;
    } failed_checks[CP_MAX_CHECKS];
};

#define CP_MAX_SERVERS 32 /* servers per forward: a request's masks are 32-bit */

/* Where a server of a forward stands (see docs/guide.md, "Several servers"). */
enum cp_peer_state {
    CP_PEER_NEVER,      /* not appraised yet (or not under the current policy) */
    CP_PEER_VERIFIED,   /* its last appraisal passed: in rotation */
    CP_PEER_EJECTED,    /* failed appraisal, timed out or reset: re-appraised after a backoff */
    CP_PEER_UNREACHABLE /* refused or failed the connect: probed again after a backoff */
};

/*
 * One attested server of a forward: where it is, how its evidence is appraised, the pool of
 * idle verified connections to it, the gate (one handshake with a nonce at a time, or one
 * probe while it is unreachable, which the other connections wait for), its state in the
 * rotation with the backoff of an ejection, the background appraisal that keeps its key
 * fresh, and the last failure. Owned by its cp_server (cp_server_add_server).
 */
struct cp_peer {
    struct cp_server *srv;
    unsigned index; /* in srv->peers: its bit in a request's masks */
    struct cg_addr addr;
    struct cp_fresh fresh; /* the attested channel's TLS context and what it trusts */
    enum cp_peer_state state;
    struct cp_up *pool; /* most recently used first */
    size_t pool_len;
    unsigned pool_gen;      /* bumped on a key change, failure or policy reload: older ones go */
    unsigned gate_inflight; /* probing handshakes in flight (0 or 1) */
    struct cp_conn *gate_head, *gate_tail; /* connections waiting for the probe's verdict */
    unsigned down_ms;       /* the server refused connections: backoff before the next probe */
    int down_err;           /* the last connect error while down */
    uv_timer_t gate_timer;  /* releases waiting connections; the next probe's backoff */
    uv_timer_t probe_timer; /* the next background appraisal; the deadline of one in flight */
    struct cp_up *probe;    /* the background appraisal in flight, or NULL */
    unsigned eject_ms;      /* the ejection's current backoff; 0 while not ejected */
    unsigned outstanding;   /* requests (TCP mode: connections) on it now */
    uint64_t ejections;
    time_t last_appraisal_at;       /* the last appraisal with evidence, passed or failed */
    int failed;                     /* the last appraisal failed; cleared by the next that passes */
    struct cg_verdict last_failure; /* the last failure of any kind (appraisal, connect, reset) */
    time_t last_failure_at;
};

/*
 * One forward: an app-facing HTTP listener whose requests go, over attested TLS, to one of its
 * ccgate-servers. Each server is appraised on its own, at start and again before its
 * verified key gets older than the policy's max_age_s; a request goes to the server in
 * rotation with the fewest outstanding requests, and waits while none was appraised yet. A
 * failed appraisal ejects the server and the request goes to another (nothing was sent);
 * with none left it is answered 502 with the failed check. In TCP mode the listener pipes raw
 * bytes (one attested connection per app connection, half-close both ways) and a failed
 * appraisal closes the app connection without a byte.
 */
struct cp_server {
    uv_loop_t *loop;
    const char *name; /* the forward's name (borrowed): forward= in logs and metrics */
    struct cg_addr listen_addr;
    const struct cg_policy *policy;
    struct cp_peer **peers; /* cp_server_add_server; freed by cp_server_free */
    size_t n_peers;
    size_t rr; /* round robin among equally loaded servers */
    struct cg_http_limits limits;
    unsigned handshake_timeout_ms;
    unsigned server_wait_ms; /* how long a request waits for a server refusing connections */
    unsigned idle_timeout_ms;
    unsigned header_timeout_ms;   /* request head complete within this, else 408 */
    unsigned response_timeout_ms; /* response head within this after the request, else 504 */
    unsigned max_conns;
    int tcp_mode;           /* raw byte pipe (ALPN ccgate-tcp) instead of HTTP */
    int access_log;         /* one info line per answered request (HTTP mode) */
    unsigned pool_max;      /* idle attested connections kept per server (HTTP mode); 0 = none */
    unsigned pool_idle_ms;  /* a pooled connection unused this long is closed */
    uv_timer_t sweep_timer; /* closes pooled connections idle too long */
    struct cg_conns set;    /* the listener and the app connections */
    int stopping;
    void (*on_idle)(struct cp_server *s);
    struct cp_stats stats;
};

/* Adds the server hostport ("HOST:PORT") to s; before cp_server_start. 0, or CG_ECONFIG with
 * err naming the problem (a bad address, the same server twice, more than CP_MAX_SERVERS). */
int cp_server_add_server(struct cp_server *s, const char *hostport, char *err, size_t errlen);

/* Frees the servers added to s; after the loop has ended (no connection left). */
void cp_server_free(struct cp_server *s);

/* Idle attested connections pooled, over every server of s. */
size_t cp_server_pool_len(const struct cp_server *s);

/* Binds and listens (the caller filled the configuration, policy and servers included), sets
 * up each server's TLS context and starts appraising every server. 0, a libuv code,
 * CG_ECONFIG (no server) or CG_ETLS. */
int cp_server_start(struct cp_server *s);

/* Stops accepting; live connections finish their requests, then on_idle runs. */
void cp_server_stop(struct cp_server *s);

/* Swaps the policy (borrowed) for new handshakes; live connections keep what they verified.
 * When it differs from the current one, pooled connections and remembered keys are dropped
 * and every server is appraised again now (not ready until one passes). */
void cp_server_set_policy(struct cp_server *s, const struct cg_policy *policy);

/* Closes every live connection now. */
void cp_server_abort(struct cp_server *s);

/* Ready: at least one server in rotation whose key was verified within the policy's
 * max_age_s. When not ready and why is non-NULL, writes the reason there (a line per
 * server). */
int cp_server_ready(const struct cp_server *s, time_t now, struct cg_buf *why);

/* Adds the bytes the live app connections moved so far to the byte counters (before a
 * scrape: the counters then include connections still open). */
void cp_server_count_bytes(struct cp_server *s);

/* Writes the Prometheus text of the forwards srv[0..n) (borrowed): each ccgate_client_* and
 * ccgate_attestation_* family once with HELP and TYPE, every sample labelled
 * forward="NAME" (the per-server ones also server="HOST:PORT"). */
void cp_metrics_write(struct cg_buf *out, const struct cp_server *const *srv, size_t n, time_t now);

/* Writes the /.well-known/ccgate/verification JSON: "verified" (cp_server_ready) and
 * "servers", one entry per server with its state, last appraisal and last failure (and what
 * was verified); with one server, that server's fields also at the top level. Returns the
 * HTTP status: 200 when verified, else 503. */
int cp_server_verification_json(const struct cp_server *s, struct cg_buf *out);

#endif
