#ifndef SP_PROXY_H
#define SP_PROXY_H

#include <stdint.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/tls.h"
#include "sp_attester.h"

struct sp_conn;

struct sp_stats {
    uint64_t conns_total;
    uint64_t conns_active;
    uint64_t handshake_failures;
    uint64_t upstream_failures;
    uint64_t bytes_from_client;
    uint64_t bytes_to_client;
};

/*
 * The RA-TLS listener: every accepted connection completes an attested handshake (the
 * attester supplies the certificate), then its plaintext is relayed both ways to the
 * upstream, with half-close and backpressure.
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
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
    } listener;
    struct sp_conn *conns; /* list of live connections */
    int stopping;
    int idle_notified;
    void (*on_idle)(struct sp_server *s); /* stopping and the last connection closed */
    struct sp_stats stats;
};

/* Binds and listens (the caller filled the configuration fields). 0 or a libuv code. */
int sp_server_start(struct sp_server *s);

/* Stops accepting; live connections finish, then on_idle runs. */
void sp_server_stop(struct sp_server *s);

/* Closes every live connection now (drain deadline passed). */
void sp_server_abort(struct sp_server *s);

#endif
