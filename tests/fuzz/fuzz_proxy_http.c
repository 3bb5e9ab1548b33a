/*
 * libFuzzer target for the HTTP proxy path: a stream is parsed the way the client sidecar
 * reads the app (requests) or the server (responses), and re-emitted by the client's own
 * forwarder (client-proxy/cp_fwd.c: the head rewritten, bodies passed through or
 * re-chunked).
 * The next hop's parser must then see exactly the same messages: same count, same start
 * lines, same bodies. A difference is a desync between hops, i.e. request smuggling. Each head
 * goes on with a request id (the message's own x-request-id when the forwarder takes it, else
 * one made here) and the next hop must see exactly one x-request-id, that one.
 * First input byte: bit 0 response stream, bit 1 feed in small pieces, bit 2 the first
 * response answers HEAD, bit 3 tight limits. The rest is the stream.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ccgate/err.h"
#include "ccgate/http.h"
#include "cp_fwd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 64
#define OUT_CAP (1u << 20)

struct msg {
    int status;
    uint64_t line_hash; /* method and target, or status */
    uint64_t body_hash;
    uint64_t body_len;
    uint64_t rid_hash; /* the x-request-id forwarded, or seen by the next hop */
    int rid_count;     /* x-request-id headers the next hop saw */
    int complete;
};

struct side {
    struct msg msgs[MAX_MSGS];
    size_t n;
    int stopped; /* a head we would not forward, or too many messages */
    /* Only the first side forwards. */
    int forwards;
    char *out;
    size_t out_len;
    struct cp_fwd fwd;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211u;
    return h;
}

static void emit(void *arg, const void *p, size_t n)
{
    struct side *s = arg;
    if (n > OUT_CAP - s->out_len)
        abort(); /* the bound below keeps the output far smaller */
    memcpy(s->out + s->out_len, p, n);
    s->out_len += n;
}

static int on_head(void *arg, const struct cg_http_head *h)
{
    struct side *s = arg;
    if (s->stopped || s->n == MAX_MSGS) {
        s->stopped = 1;
        return CG_ELIMIT;
    }
    struct msg *m = &s->msgs[s->n];
    memset(m, 0, sizeof(*m));
    m->status = h->type == CG_HTTP_RESPONSE ? h->status : 0;
    m->line_hash = 14695981039346656037u;
    if (h->type == CG_HTTP_REQUEST) {
        m->line_hash = fnv(m->line_hash, h->method, strlen(h->method) + 1);
        m->line_hash = fnv(m->line_hash, h->target, strlen(h->target));
    }
    m->body_hash = 14695981039346656037u;
    s->n++;
    if (!s->forwards) {
        for (size_t i = 0; i < h->n_headers; i++)
            if (h->headers[i].name_len == 12 &&
                strncasecmp(h->headers[i].name, "x-request-id", 12) == 0) {
                m->rid_count++;
                m->rid_hash =
                    fnv(14695981039346656037u, h->headers[i].value, h->headers[i].value_len);
            }
        return 0;
    }
    char rid[CP_REQUEST_ID_MAX + 1];
    if (!cp_fwd_request_id_take(h, rid))
        cp_fwd_request_id_new(rid);
    m->rid_hash = fnv(14695981039346656037u, rid, strlen(rid));
    s->fwd.request_id = rid;
    int rc = cp_fwd_head(&s->fwd, h, 1);
    s->fwd.request_id = NULL;
    if (rc < 0) {
        s->n--; /* the proxy answers this one itself: nothing goes on */
        s->stopped = 1;
        return rc;
    }
    return 0;
}

static int on_body(void *arg, const uint8_t *data, size_t len)
{
    struct side *s = arg;
    struct msg *m = &s->msgs[s->n - 1];
    m->body_hash = fnv(m->body_hash, data, len);
    m->body_len += len;
    if (s->forwards)
        cp_fwd_body(&s->fwd, data, len);
    return 0;
}

static int on_complete(void *arg)
{
    struct side *s = arg;
    s->msgs[s->n - 1].complete = 1;
    if (s->forwards)
        cp_fwd_end(&s->fwd);
    return 0;
}

static const struct cg_http_callbacks cb = {on_head, on_body, on_complete};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[OUT_CAP];
    static struct side a, b;
    if (size < 1 || size > 64 * 1024)
        return 0;
    uint8_t opt = data[0];
    data++;
    size--;
    enum cg_http_type type = (opt & 1) ? CG_HTTP_RESPONSE : CG_HTTP_REQUEST;
    struct cg_http_limits tight = {
        .max_header_bytes = 512, .max_headers = 8, .max_body_bytes = 256};
    struct cg_http_limits wide = {.max_header_bytes = 1u << 20,
                                  .max_headers = CG_HTTP_MAX_HEADERS_CAP};
    struct cg_http_parser *pa = NULL, *pb = NULL;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.forwards = 1;
    a.out = out;
    a.fwd = (struct cp_fwd){.out = emit, .arg = &a};
    if (cg_http_parser_new(type, (opt & 8) ? &tight : NULL, &cb, &a, &pa) != 0 ||
        cg_http_parser_new(type, &wide, &cb, &b, &pb) != 0)
        abort();
    if (opt & 4) {
        cg_http_parser_expect_head_response(pa);
        cg_http_parser_expect_head_response(pb);
    }

    /* The first hop, fed as the network would. */
    size_t off = 0;
    while (off < size && !a.stopped) {
        size_t n = (opt & 2) ? 1 + (size_t)(data[off] % 7) : size - off;
        if (n > size - off)
            n = size - off;
        long rc = cg_http_parser_feed(pa, data + off, n);
        if (rc < 0 || (size_t)rc < n)
            break; /* an error answered locally, or an upgrade: no more HTTP */
        off += n;
    }
    /* A's messages that completed; one that did not may be cut anywhere. */
    size_t done = 0;
    while (done < a.n && a.msgs[done].complete)
        done++;

    /* The next hop reads what was forwarded, in one piece. */
    long rc = cg_http_parser_feed(pb, (const uint8_t *)a.out, a.out_len);
    if (rc < 0)
        abort(); /* we forwarded something the next hop calls malformed */
    if (b.n < done)
        abort(); /* a message vanished */
    for (size_t i = 0; i < done; i++) {
        const struct msg *x = &a.msgs[i], *y = &b.msgs[i];
        if (!y->complete || x->status != y->status || x->line_hash != y->line_hash ||
            x->body_len != y->body_len || x->body_hash != y->body_hash)
            abort(); /* the next hop sees another message than we parsed */
        if (y->rid_count != 1 || y->rid_hash != x->rid_hash)
            abort(); /* the request id did not go on alone and unchanged */
    }
    if (b.n > a.n)
        abort(); /* the next hop sees a message we never parsed: smuggled */
    cg_http_parser_free(pa);
    cg_http_parser_free(pb);
    return 0;
}
