#ifndef CCGATE_HTTPC_H
#define CCGATE_HTTPC_H

#include <stddef.h>

#include "ccgate/addr.h"
#include "ccgate/buf.h"

/*
 * A blocking HTTP/1.1 client: one request per connection (Connection: close), over TCP, a
 * unix socket or TLS (verified against ca_file or the system's roots). For start-up paths and
 * pool threads only, never the event loop: the key broker client and the server sidecar's
 * model query. The Host header is the address as given (addr->text), "localhost" for a unix
 * socket.
 */
struct cg_httpc_req {
    const struct cg_addr *addr;
    int tls;              /* 1: HTTPS */
    const char *tls_name; /* TLS: the name (or IP) the certificate must hold */
    const char *ca_file;  /* TLS: CA certificates to trust; NULL: the system's */
    const char *method;
    const char *path;
    const char *cookie;      /* a Cookie header value, or NULL */
    const char *body;        /* a JSON body (Content-Type: application/json), or NULL */
    const char *cookie_name; /* keep "NAME=VALUE" of the answer's Set-Cookie NAME, or NULL */
    unsigned timeout_ms;     /* the whole exchange */
    size_t max_body;         /* a longer answer body is an error (CG_ELIMIT) */
};

struct cg_httpc_resp {
    int status;
    char cookie[160];   /* the cookie_name's "NAME=VALUE" when set and short enough, else "" */
    struct cg_buf body; /* NUL-terminated after a successful call; free with cg_buf_free */
};

/* One exchange: fills r (status and body) and returns 0 whatever the status, or a negative
 * code with err saying which step failed ("connect 127.0.0.1:9: connection refused"). */
int cg_httpc_do(const struct cg_httpc_req *q, struct cg_httpc_resp *r, char *err, size_t errlen);

#endif
