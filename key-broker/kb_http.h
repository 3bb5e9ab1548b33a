#ifndef KB_HTTP_H
#define KB_HTTP_H

#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/tls.h"
#include "kb_rcar.h"

/*
 * The broker's HTTP/1.1 listener, on the connection core (ccgate/conn.h): one request per
 * connection (answered with Connection: close), bodies up to KB_MAX_BODY, 10 s for the whole
 * exchange, at most KB_HTTP_MAX_CONNS at once. With tls (not NULL) every connection is HTTPS
 * first. The evidence of /kbs/v0/attest is verified on libuv's thread pool, never on the loop.
 */
#define KB_HTTP_MAX_CONNS 256
#define KB_HTTP_TIMEOUT_MS 10000

struct kb_http;

/* Listens on a; broker and tls are borrowed. Once drained and every connection is gone,
 * on_stopped(arg) runs (may be NULL) and the listener frees itself. Returns 0 or a libuv code
 * (nothing to stop then; the loop runs the closes). */
int kb_http_start(uv_loop_t *loop, const struct cg_addr *a, struct kb_broker *broker,
                  struct cg_tls_ctx *tls, void (*on_stopped)(void *arg), void *arg,
                  struct kb_http **out);

/* Stops accepting; a connection idle so far closes now, one mid-request gets its answer
 * first. Idempotent. */
void kb_http_drain(struct kb_http *h);

/* Drains and closes every connection left now (the drain deadline passed). */
void kb_http_abort(struct kb_http *h);

#endif
