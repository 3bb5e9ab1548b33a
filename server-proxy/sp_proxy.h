#ifndef SP_PROXY_H
#define SP_PROXY_H

#include <stdint.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/admin.h"
#include "ccgate/conn.h"
#include "ccgate/tls.h"
#include "ccgate/token.h"
#include "sp_attester.h"

struct sp_conn;

struct sp_stats {
    uint64_t conns_total;
    uint64_t conns_active;
    uint64_t handshake_failures;
    uint64_t upstream_failures;
    uint64_t bytes_from_client; /* updated as bytes move */
    uint64_t bytes_to_client;
    /* HTTP mode */
    uint64_t requests[6];   /* answered, by status class: [1] 1xx ... [5] 5xx ([0] unused) */
    struct cg_hist latency; /* request head -> the upstream's response head */
    uint64_t auth_failures[CG_TOKEN_UNKNOWN + 1]; /* by enum cg_token_fail */
};

/*
 * The RA-TLS listener: every accepted connection completes an attested handshake (the
 * attester supplies the certificate), then its plaintext is relayed both ways to the
 * upstream, with half-close and backpressure. Connections live in the shared connection core
 * (ccgate/conn.h): one timer each, one deferred close.
 *
 * Graceful stop (HTTP mode): no new connection is accepted; each response that begins after
 * the stop carries "Connection: close", so that the client stops reusing the connection, and
 * the connection closes at the end of that response. A connection idle at the stop stays
 * open a short grace (a request already on its way is answered, with "Connection: close"),
 * then closes between messages. The drain deadline (sp_server_abort) ends the rest.
 *
 * Access control (HTTP mode, tokens set): each request head is held until complete; one with
 * a listed `Authorization: Bearer` token is forwarded without its Authorization header, any
 * other is answered 401 here (after the responses to earlier requests; the connection stays
 * open when the request's framing allows it) and never reaches the upstream.
 */
struct sp_server {
    uv_loop_t *loop;
    struct cg_addr listen_addr;
    struct cg_addr upstream;
    struct cg_tls_ctx *tls;
    struct sp_attester *attester;
    unsigned handshake_timeout_ms;
    unsigned upstream_connect_timeout_ms; /* then 502 (HTTP mode) */
    unsigned idle_timeout_ms;             /* no byte either way for this long: close */
    unsigned max_conns;
    int tcp_mode; /* no HTTP answer of our own on the wire (ALPN ccgate-tcp) */
    /* HTTP mode, optional: requests need a listed bearer token (owned; swapped on reload) */
    struct cg_tokens *tokens;
    int access_log; /* a log line per request */
    struct cg_conns set;
    int stopping;
    void (*on_idle)(struct sp_server *s); /* stopping and the last connection closed */
    struct sp_stats stats;
};

/* Binds and listens (the caller filled the configuration fields). 0 or a libuv code. */
int sp_server_start(struct sp_server *s);

/* Stops accepting; live connections finish (see above), then on_idle runs. */
void sp_server_stop(struct sp_server *s);

/* Closes every live connection now (drain deadline passed). */
void sp_server_abort(struct sp_server *s);

#endif
