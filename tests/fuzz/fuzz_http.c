/*
 * libFuzzer target for the HTTP parser and head writer. The first input byte picks the
 * parser type and options, the second seeds the feed split points; the rest is the stream.
 * Every parsed head is rewritten with cg_http_head_write, and the rewritten head must parse
 * again with the framing announced: what we send on must never be ambiguous.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/err.h"
#include "ccgate/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct expect {
    enum cg_http_type type;
    enum cg_http_framing framing;
    int heads;
    int head_response;
};

static int reparse_head(void *arg, const struct cg_http_head *h)
{
    struct expect *e = arg;
    e->heads++;
    if (h->framing != e->framing && !(h->upgrade && h->framing == CG_HTTP_BODY_NONE))
        abort();
    return 0;
}

/* Parses a head we wrote; it must parse whole, once, with the framing we announced. */
static void check_written(const struct cg_http_head *h, const char *out, long len,
                          enum cg_http_framing framing)
{
    struct cg_http_limits lim = {.max_header_bytes = 1u << 20,
                                 .max_headers = CG_HTTP_MAX_HEADERS_CAP};
    struct expect e = {h->type, framing, 0, h->head_response};
    struct cg_http_callbacks cb = {reparse_head, NULL, NULL};
    struct cg_http_parser *p = NULL;
    /* The writer adds up to three headers; a head at the cap cannot be re-read whole. */
    if (h->n_headers + 3 > CG_HTTP_MAX_HEADERS_CAP)
        return;
    if (cg_http_parser_new(h->type, &lim, &cb, &e, &p) != 0)
        abort();
    if (h->head_response)
        cg_http_parser_expect_head_response(p);
    long n = cg_http_parser_feed(p, (const uint8_t *)out, (size_t)len);
    if (n < 0 || e.heads != 1)
        abort();
    cg_http_parser_free(p);
}

/* What the stream's callbacks saw: bodies must match the framing their head announced. */
struct state {
    int in_message;
    enum cg_http_framing framing;
    uint64_t content_length, body;
};

static int on_head(void *arg, const struct cg_http_head *h)
{
    struct state *st = arg;
    static char out[1u << 17];
    if (st->in_message)
        abort();
    st->in_message = 1;
    st->framing = h->framing;
    st->content_length = h->content_length;
    st->body = 0;
    for (unsigned v = 0; v < 4; v++) {
        enum cg_http_framing f;
        long n =
            cg_http_head_write_ex(h, (v & 1) ? "fuzz" : NULL, (int)(v >> 1),
                                  (v & 2) ? CG_HTTP_WRITE_HTTP10_PEER : 0, out, sizeof(out), &f);
        if (n == CG_ELIMIT || n == CG_EHTTP)
            continue;
        if (n <= 0 || (size_t)n > sizeof(out))
            abort();
        check_written(h, out, n, f);
    }
    /* A too small buffer is an error, never an overflow. */
    char small[16];
    long n = cg_http_head_write(h, "x", 1, small, sizeof(small), NULL);
    if (n > (long)sizeof(small))
        abort();
    return 0;
}

static int on_body(void *arg, const uint8_t *data, size_t len)
{
    struct state *st = arg;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < len; i++)
        sink ^= data[i]; /* touches every byte so ASan sees a bad pointer */
    (void)sink;
    if (!st->in_message || len == 0 || st->framing == CG_HTTP_BODY_NONE)
        abort();
    st->body += len;
    if (st->framing == CG_HTTP_BODY_LENGTH && st->body > st->content_length)
        abort();
    return 0;
}

static int on_complete(void *arg)
{
    struct state *st = arg;
    if (!st->in_message)
        abort();
    if (st->framing == CG_HTTP_BODY_LENGTH && st->body != st->content_length)
        abort();
    st->in_message = 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t opt = data[0];
    uint32_t seed = data[1] * 2654435761u + 1;
    data += 2;
    size -= 2;

    struct cg_http_limits small = {.max_header_bytes = 256, .max_headers = 8, .max_body_bytes = 64};
    struct cg_http_callbacks cb = {on_head, on_body, on_complete};
    struct state st = {0};
    struct cg_http_parser *p = NULL;
    enum cg_http_type type = (opt & 1) ? CG_HTTP_RESPONSE : CG_HTTP_REQUEST;
    if (cg_http_parser_new(type, (opt & 2) ? &small : NULL, &cb, &st, &p) != 0)
        abort();
    if (opt & 4)
        cg_http_parser_expect_head_response(p);

    size_t off = 0;
    long rc = 0;
    while (off < size) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (opt & 8) ? size - off : 1 + (seed >> 16) % 64;
        if (n > size - off)
            n = size - off;
        rc = cg_http_parser_feed(p, data + off, n);
        if (rc < 0)
            break;
        if ((size_t)rc > n)
            abort();
        if ((size_t)rc < n) /* upgraded: the rest is not HTTP */
            break;
        off += n;
    }
    if (rc < 0) {
        int status = cg_http_parser_status(p);
        if (status != 400 && status != 413 && status != 431 && status != 502)
            abort();
        if (type == CG_HTTP_RESPONSE && status != 502)
            abort();
    } else {
        (void)cg_http_parser_finish(p);
    }
    cg_http_parser_free(p);
    return 0;
}
