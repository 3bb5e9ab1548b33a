#include "ccgate/stream.h"

#include <stdlib.h>
#include <string.h>

#include "ccgate/err.h"

#define READ_BUF_SIZE (64 * 1024)
/* Bytes handed to the TLS engine at a time, either way: about one record. The engine's memory
 * BIOs keep the capacity of the largest chunk they ever held, for the life of the
 * connection, so feeding 64 KiB at once would cost every connection 64 KiB per direction. */
#define TLS_SLICE (16 * 1024 + 512)

/* The loop is single-threaded and read callbacks consume their data before returning, so
 * one buffer for ciphertext and one for plaintext serve every stream of the process. */
static uint8_t read_buf[READ_BUF_SIZE];
static uint8_t plain_buf[READ_BUF_SIZE];

/* Ciphertext taken out of the engine before it is written: a few records at a time. */
#define TLS_OUT_SIZE (4 * TLS_SLICE)
static uint8_t tls_out[TLS_OUT_SIZE];

/* What the kernel did not take, copied once; freed by its write callback. */
struct write_req {
    uv_write_t req;
    struct cg_stream *s;
    size_t len;
    uint8_t data[];
};

int cg_stream_init(struct cg_stream *s, uv_loop_t *loop, int is_unix,
                   const struct cg_stream_callbacks *cb, void *data)
{
    memset(s, 0, sizeof(*s));
    s->cb = cb;
    s->data = data;
    int rc = is_unix ? uv_pipe_init(loop, &s->h.pipe, 0) : uv_tcp_init(loop, &s->h.tcp);
    if (rc == 0) {
        s->inited = 1;
        s->max_queued = CG_STREAM_MAX_QUEUED;
        s->h.handle.data = s;
        if (!is_unix)
            (void)uv_tcp_nodelay(&s->h.tcp, 1);
    }
    return rc;
}

int cg_stream_accept(struct cg_stream *s, uv_stream_t *listener)
{
    return uv_accept(listener, &s->h.stream);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct cg_stream *s = req->data;
    if (s->closing)
        return;
    if (status == 0 && s->h.handle.type == UV_TCP)
        (void)uv_tcp_nodelay(&s->h.tcp, 1);
    s->cb->on_connect(s, status);
}

int cg_stream_connect(struct cg_stream *s, const struct cg_addr *a)
{
    s->connect_req.data = s;
    if (a->is_unix) {
        uv_pipe_connect(&s->connect_req, &s->h.pipe, a->path, on_connect);
        return 0;
    }
    return uv_tcp_connect(&s->connect_req, &s->h.tcp, (const struct sockaddr *)&a->ss, on_connect);
}

void cg_stream_set_tls(struct cg_stream *s, struct cg_tls *t)
{
    s->tls = t;
}

static void fail(struct cg_stream *s, int err)
{
    if (s->failed || s->closing)
        return;
    s->failed = 1;
    cg_stream_read_stop(s);
    s->cb->on_error(s, err);
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct cg_stream *s = w->s;
    s->queued -= w->len;
    free(w);
    if (s->closing)
        return;
    if (status < 0) {
        fail(s, status);
        return;
    }
    if ((s->above_high && s->queued < CG_STREAM_LOW_WATER) || s->queued == 0) {
        s->above_high = 0;
        if (s->cb->on_drain != NULL)
            s->cb->on_drain(s);
    }
}

/*
 * Sends bufs: first straight to the kernel (uv_try_write, when nothing is queued ahead), then
 * the rest, copied once, through uv_write. The caller's buffers are not used after the call.
 * An error of the kernel's goes the queued way, so that it reaches the owner as on_error from
 * the write callback, never from inside this call.
 */
static int send_bufs(struct cg_stream *s, const uv_buf_t *bufs, unsigned n)
{
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    size_t sent = 0;
    if (s->queued == 0) {
        int rc = uv_try_write(&s->h.stream, bufs, n);
        if (rc > 0)
            sent = (size_t)rc;
    }
    size_t rest = total - sent;
    if (rest == 0)
        return 0;
    struct write_req *w = malloc(sizeof(*w) + rest);
    if (w == NULL)
        return UV_ENOMEM;
    w->s = s;
    w->len = rest;
    size_t skip = sent, off = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t len = bufs[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(w->data + off, bufs[i].base + skip, len - skip);
        off += len - skip;
        skip = 0;
    }
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)rest);
    int rc = uv_write(&w->req, &s->h.stream, &b, 1, on_write);
    if (rc < 0) {
        free(w);
        return rc;
    }
    s->queued += rest;
    if (s->queued >= CG_STREAM_HIGH_WATER)
        s->above_high = 1;
    return 0;
}

/* Sends whatever ciphertext the engine produced. */
static int flush_tls(struct cg_stream *s)
{
    while (cg_tls_pending_out(s->tls) > 0) {
        uv_buf_t b = uv_buf_init((char *)tls_out,
                                 (unsigned)cg_tls_take_out(s->tls, tls_out, sizeof(tls_out)));
        int rc = send_bufs(s, &b, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Encrypts bufs a record-sized slice at a time, taking each slice's ciphertext out of the
 * engine at once (its memory BIO keeps the capacity of the most it ever held, for the life
 * of the connection), and sends the ciphertext a few records per write. */
static int send_tls(struct cg_stream *s, const uv_buf_t *bufs, unsigned n)
{
    size_t used = 0;
    int rc;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *p = (const uint8_t *)bufs[i].base;
        size_t len = bufs[i].len;
        while (len > 0) {
            size_t k = len < TLS_SLICE - 512 ? len : TLS_SLICE - 512;
            if (cg_tls_write(s->tls, p, k) < 0)
                return CG_ETLS;
            p += k;
            len -= k;
            size_t pending;
            while ((pending = cg_tls_pending_out(s->tls)) > 0) {
                if (used > 0 && used + pending > sizeof(tls_out)) {
                    uv_buf_t b = uv_buf_init((char *)tls_out, (unsigned)used);
                    if ((rc = send_bufs(s, &b, 1)) < 0)
                        return rc;
                    used = 0;
                }
                used += cg_tls_take_out(s->tls, tls_out + used, sizeof(tls_out) - used);
            }
        }
    }
    uv_buf_t b = uv_buf_init((char *)tls_out, (unsigned)used);
    return send_bufs(s, &b, 1);
}

int cg_stream_writev(struct cg_stream *s, const uv_buf_t *bufs, unsigned n)
{
    if (s->closing || s->failed)
        return UV_ECANCELED;
    if (s->shut)
        return UV_EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    /* The cap counts the whole write, before the kernel takes any of it: a refused write
     * leaves nothing half-sent (no record half-encrypted). */
    if (s->queued + total > s->max_queued)
        return UV_ENOBUFS;
    int rc = s->tls == NULL ? send_bufs(s, bufs, n) : send_tls(s, bufs, n);
    if (rc < 0)
        return rc;
    s->bytes_out += total;
    return 0;
}

int cg_stream_write(struct cg_stream *s, const void *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return cg_stream_writev(s, &b, 1);
}

/* Delivers decrypted application data; stops when the stream is closed from a callback. */
static void drain_plaintext(struct cg_stream *s)
{
    while (!s->closing && !s->failed && !s->eof) {
        long n = cg_tls_read(s->tls, plain_buf, sizeof(plain_buf));
        if (n > 0) {
            s->bytes_in += (uint64_t)n;
            s->cb->on_read(s, plain_buf, (size_t)n);
            continue;
        }
        if (n == CG_TLS_CLOSED) {
            s->eof = 1;
            s->cb->on_eof(s);
        } else if (n != CG_TLS_WANT) {
            fail(s, CG_ETLS);
        }
        break;
    }
    if (!s->closing && !s->failed && flush_tls(s) < 0)
        fail(s, UV_ENOMEM);
}

void cg_stream_handshake(struct cg_stream *s)
{
    if (s->closing || s->failed || s->handshaken)
        return;
    int rc = cg_tls_handshake(s->tls);
    if (flush_tls(s) < 0) {
        fail(s, UV_ENOMEM);
        return;
    }
    if (rc == CG_TLS_WANT || rc == CG_TLS_PENDING)
        return;
    if (rc < 0) {
        s->failed = 1;
        cg_stream_read_stop(s);
        s->cb->on_handshake(s, rc);
        return;
    }
    s->handshaken = 1;
    s->cb->on_handshake(s, 0);
    if (!s->closing && !s->failed)
        drain_plaintext(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init((char *)read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct cg_stream *s = h->data;
    (void)buf;
    if (s->closing || s->failed)
        return;
    if (nread == 0)
        return;
    if (nread < 0) {
        cg_stream_read_stop(s);
        if (nread != UV_EOF) {
            fail(s, (int)nread);
        } else if (s->tls != NULL && !s->eof) {
            /* TCP EOF without close_notify: the peer (or an attacker) cut the stream. */
            fail(s, CG_ETLS);
        } else if (!s->eof) {
            s->eof = 1;
            s->cb->on_eof(s);
        }
        return;
    }
    if (s->tls == NULL) {
        s->bytes_in += (uint64_t)nread;
        s->cb->on_read(s, read_buf, (size_t)nread);
        return;
    }
    for (size_t off = 0; off < (size_t)nread && !s->closing && !s->failed;) {
        size_t n = (size_t)nread - off < TLS_SLICE ? (size_t)nread - off : TLS_SLICE;
        if (cg_tls_feed(s->tls, read_buf + off, n) < 0) {
            fail(s, CG_ETLS);
            return;
        }
        off += n;
        if (!s->handshaken)
            cg_stream_handshake(s);
        else
            drain_plaintext(s);
    }
}

int cg_stream_read_start(struct cg_stream *s)
{
    if (s->reading || s->closing || s->failed || (s->eof && s->tls == NULL))
        return 0;
    int rc = uv_read_start(&s->h.stream, on_alloc, on_read);
    if (rc == 0)
        s->reading = 1;
    return rc;
}

void cg_stream_read_stop(struct cg_stream *s)
{
    if (!s->reading)
        return;
    (void)uv_read_stop(&s->h.stream);
    s->reading = 0;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct cg_stream *s = req->data;
    if (status < 0 && status != UV_ECANCELED && !s->closing)
        fail(s, status);
}

int cg_stream_shutdown(struct cg_stream *s)
{
    if (s->closing || s->failed)
        return UV_ECANCELED;
    if (s->shut)
        return 0;
    s->shut = 1;
    if (s->tls != NULL) {
        cg_tls_shutdown(s->tls);
        int rc = flush_tls(s);
        if (rc < 0)
            return rc;
    }
    s->shutdown_req.data = s;
    return uv_shutdown(&s->shutdown_req, &s->h.stream, on_shutdown);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct cg_stream *s = h->data;
    if (s->on_closed != NULL)
        s->on_closed(s, s->closed_arg);
}

void cg_stream_mute(struct cg_stream *s)
{
    if (!s->inited)
        return;
    cg_stream_read_stop(s);
    s->closing = 1;
}

void cg_stream_close(struct cg_stream *s, cg_stream_closed_cb on_closed, void *arg)
{
    if (!s->inited || s->closed)
        return;
    s->closed = 1;
    s->closing = 1;
    s->on_closed = on_closed;
    s->closed_arg = arg;
    s->reading = 0;
    if (s->tls != NULL) {
        cg_tls_free(s->tls);
        s->tls = NULL;
    }
    uv_close(&s->h.handle, on_handle_closed);
}

void cg_stream_count(struct cg_stream *s, uint64_t *in, uint64_t *out)
{
    *in += s->bytes_in - s->counted_in;
    *out += s->bytes_out - s->counted_out;
    s->counted_in = s->bytes_in;
    s->counted_out = s->bytes_out;
}
