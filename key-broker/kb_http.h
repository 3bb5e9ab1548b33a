#ifndef KB_HTTP_H
#define KB_HTTP_H

#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/tls.h"
#include "kb_rcar.h"

/*
 * The broker's HTTP/1.1 listener: one request per connection (answered with Connection:
 * close), bodies up to KB_MAX_BODY, 10 s to send a request, at most KB_HTTP_MAX_CONNS at
 * once. With tls (not NULL) every connection is HTTPS first.
 */
#define KB_HTTP_MAX_CONNS 256
#define KB_HTTP_TIMEOUT_MS 10000

struct kb_http;

/* Listens on a; broker and tls are borrowed. Returns 0 or a libuv code. */
int kb_http_start(uv_loop_t *loop, const struct cg_addr *a, struct kb_broker *broker,
                  struct cg_tls_ctx *tls, struct kb_http **out);

/* Closes the listener and its connections; frees itself once the handles are closed. */
void kb_http_close(struct kb_http *h);

#endif
