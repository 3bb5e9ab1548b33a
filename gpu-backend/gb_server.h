#ifndef GB_SERVER_H
#define GB_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct gb_model;
struct gb_backend;
struct gb_engine_opts;

/*
 * The OpenAI-compatible HTTP API on a libuv loop: GET /v1/models, POST /v1/completions,
 * POST /v1/chat/completions (stream: Server-Sent Events), GET /health. The loop only parses,
 * tokenizes and writes; inference runs on the engine thread, whose output comes back
 * through a uv_async handle. A client that goes away cancels its sequence at once.
 */
struct gb_server_opts {
    const char *listen;   /* "127.0.0.1:PORT", "[::1]:PORT" or "unix:PATH" (loopback only) */
    const char *model_id; /* the name clients use in "model" */
    const char *cc_mode;  /* for /health: "on", "off", "unknown", "n/a" */
    size_t max_body;      /* request body limit in bytes */
    int max_conns;
    uint64_t request_timeout_ms; /* a begun request must be complete by then; 0: 30 s */
    uint64_t idle_timeout_ms;    /* a connection without a request; 0: 300 s */
    int access_log;              /* one info line per answered request */
    /* A sealed model (NULL name: a plain one): /health's "sealed", which the server sidecar
     * binds into its attestation claims. */
    const char *sealed_name;
    uint64_t sealed_version;
    const char *sealed_sha256; /* hex */
};

struct gb_server;

/*
 * Binds, starts the engine and serves on loop. Borrows m and b. *bound receives the
 * address actually bound (port 0 is chosen by the kernel). Errors: CG_ECONFIG (bad or
 * non-loopback address, reason in err), libuv codes.
 */
int gb_server_start(uv_loop_t *loop, const struct gb_model *m, struct gb_backend *b,
                    const struct gb_engine_opts *eo, const struct gb_server_opts *o,
                    struct gb_server **out, char *bound, size_t boundlen, char *err, size_t errlen);

/* Closes the listener and every connection, stops the engine; cb runs once all is closed. */
void gb_server_close(struct gb_server *s, void (*cb)(void *arg), void *arg);

/* Parses "HOST:PORT" or "[V6]:PORT" into addr, accepting loopback addresses only. */
int gb_parse_listen(const char *s, struct sockaddr_storage *addr, char *err, size_t errlen);

#endif
