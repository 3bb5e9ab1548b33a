#ifndef CCGATE_STREAM_H
#define CCGATE_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/tls.h"

/*
 * One leg of a proxied connection: a libuv TCP or Unix stream, optionally carrying TLS
 * (a cg_tls engine). Plaintext in and out; the stream moves the ciphertext. The owner embeds
 * the struct, sets data (its own pointer), and frees its memory only from the close callback.
 * The libuv handle's data is the stream's: owners never set it.
 */

#define CG_STREAM_HIGH_WATER (256 * 1024)      /* owner stops reading the peer above this */
#define CG_STREAM_LOW_WATER (64 * 1024)        /* on_drain fires when output falls below this */
#define CG_STREAM_MAX_QUEUED (2 * 1024 * 1024) /* default cap on bytes queued per leg */

struct cg_stream;

/* cg_stream_close() finished: s may be freed. arg is what was passed to cg_stream_close(). */
typedef void (*cg_stream_closed_cb)(struct cg_stream *s, void *arg);

struct cg_stream_callbacks {
    /* Plaintext arrived. The stream may be closed from inside. */
    void (*on_read)(struct cg_stream *s, const uint8_t *data, size_t len);
    /* The peer finished sending: TCP FIN (plain) or close_notify (TLS). */
    void (*on_eof)(struct cg_stream *s);
    /* Fatal: read error, an error of a queued write or of the shutdown, TLS failure, or TLS
     * truncation (FIN without close_notify). Never called from inside a cg_stream_* call of
     * the owner's; reading stops. */
    void (*on_error)(struct cg_stream *s, int err);
    /* TLS: the handshake completed (0) or failed (CG_ETLS, CG_EEVIDENCE, CG_EPOLICY). */
    void (*on_handshake)(struct cg_stream *s, int status);
    /* Queued output fell below CG_STREAM_LOW_WATER after passing CG_STREAM_HIGH_WATER, or
     * all queued output was written. */
    void (*on_drain)(struct cg_stream *s);
    /* cg_stream_connect() finished: 0 or a libuv error. */
    void (*on_connect)(struct cg_stream *s, int status);
};

struct cg_stream {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    struct cg_tls *tls; /* owned: freed on close */
    const struct cg_stream_callbacks *cb;
    void *data; /* the owner's */
    cg_stream_closed_cb on_closed;
    void *closed_arg;
    size_t queued;                /* bytes the kernel did not take yet (ciphertext under TLS) */
    size_t max_queued;            /* cap on queued (CG_STREAM_MAX_QUEUED; the owner may lower it) */
    uint64_t bytes_in, bytes_out;     /* plaintext */
    uint64_t counted_in, counted_out; /* the part of them cg_stream_count() handed out */
    unsigned inited : 1, reading : 1, handshaken : 1, eof : 1, shut : 1, closing : 1,
        above_high : 1, failed : 1, closed : 1;
};

/* Adds the plaintext bytes s moved since the last call to *in and *out (an owner's byte
 * counters, kept current while the stream is open and never counting a byte twice). */
void cg_stream_count(struct cg_stream *s, uint64_t *in, uint64_t *out);

/* Initializes s as a TCP (is_unix 0) or Unix stream handle on loop. Returns 0 or libuv's code. */
int cg_stream_init(struct cg_stream *s, uv_loop_t *loop, int is_unix,
                   const struct cg_stream_callbacks *cb, void *data);

/* Accepts a pending connection of listener into s (initialized with the listener's kind). */
int cg_stream_accept(struct cg_stream *s, uv_stream_t *listener);

/* Connects s to a; on_connect reports the result. */
int cg_stream_connect(struct cg_stream *s, const struct cg_addr *a);

/* Attaches a TLS engine (ownership passes to s) before the first byte moves. */
void cg_stream_set_tls(struct cg_stream *s, struct cg_tls *t);

/* Advances the TLS handshake: starts it (client) or resumes it after CG_TLS_PENDING. */
void cg_stream_handshake(struct cg_stream *s);

int cg_stream_read_start(struct cg_stream *s);
void cg_stream_read_stop(struct cg_stream *s);

/*
 * Sends the plaintext of bufs, in order. Ownership: the buffers are borrowed for the call
 * only. The bytes go to the kernel at once when nothing is queued ahead (uv_try_write; under
 * TLS a few records per write); only what the kernel did not take is copied, once, and
 * queued. Returns 0; UV_ENOBUFS when queued plus this write would pass max_queued (nothing
 * was sent: stop reading the source, or close); UV_ECANCELED / UV_EPIPE after a failure,
 * close or shutdown; CG_ETLS or a libuv code. An error of the kernel's on a queued write
 * reaches the owner later through on_error.
 */
int cg_stream_writev(struct cg_stream *s, const uv_buf_t *bufs, unsigned n);

/* cg_stream_writev() of one buffer. */
int cg_stream_write(struct cg_stream *s, const void *data, size_t len);

/* Half-closes the sending side after queued output (close_notify first under TLS).
 * Idempotent. Returns 0, UV_ECANCELED after a failure or close, or a libuv code; an error
 * of the shutdown itself reaches the owner later through on_error. */
int cg_stream_shutdown(struct cg_stream *s);

/* Stops reading; from now on no callback of s reaches the owner and writes are refused
 * (UV_ECANCELED). The handle stays open (and the TLS engine alive) until cg_stream_close(). */
void cg_stream_mute(struct cg_stream *s);

/* Closes the handle (idempotent; a stream never initialized is left alone and no callback
 * runs). Afterwards no callback of s reaches the owner; on_closed(s, arg) runs once, from the
 * loop, after which s may be freed. */
void cg_stream_close(struct cg_stream *s, cg_stream_closed_cb on_closed, void *arg);

#endif
