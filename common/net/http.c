#include "ccgate/http.h"

#include "ccgate/err.h"

#include <inttypes.h>
#include <llhttp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

/*
 * Loose llhttp 8.1 takes a bare CR for a line end and whitespace before a header's colon;
 * the checks below count on the strict build to refuse those.
 */
#if !LLHTTP_STRICT_MODE
#error "llhttp must be built with LLHTTP_STRICT_MODE=1"
#endif

#define DEFAULT_MAX_HEADER_BYTES (32u * 1024u)
#define DEFAULT_MAX_HEADERS 100u
#define BUF_INITIAL 1024u
#define REFS_INITIAL 16u /* header slots kept between messages (a parser lives as long as its
                            connection: an idle one holds little) */

/* Where the parser stands inside the current message. */
enum phase { PHASE_IDLE, PHASE_HEAD, PHASE_BODY, PHASE_TRAILER };

/* A header stored as offsets: the buffer may move while the head grows. */
struct hdr_ref {
    size_t name_off, name_len;
    size_t value_off, value_len;
};

struct cg_http_parser {
    llhttp_t ll;
    enum cg_http_type type;
    struct cg_http_limits lim;
    struct cg_http_callbacks cb;
    void *arg;

    enum phase phase;
    /* The head being accumulated: target or reason, then NUL-terminated names and values. */
    char *buf;
    size_t buf_len, buf_cap, buf_max;
    size_t start_off, start_len; /* request-target or reason phrase */
    struct hdr_ref *refs;        /* refs_cap of them, grown up to lim.max_headers */
    size_t n_refs, refs_cap;
    size_t n_trailers;
    int in_field;          /* a header name is being received */
    int in_value;          /* a header value has begun and is not complete */
    int value_split;       /* the last feed ended inside a header value */
    int after_name;        /* a header name is complete and its value has not begun */
    int gap_lf;            /* between a header name and its value: 1 a line break ended the last
                              feed, 2 a line break was followed by more (a fold) */
    const char *gap_from;  /* where the bytes after the last header name begin */
    const char *feed_data; /* start of the buffer being parsed */
    const char *feed_end;
    const char *last_value_end; /* end of the last header value span */
    /* Bare LF: the bytes between two spans of a head (line ends, the blank line) are checked
     * from lf_from; across feeds lf_open carries the gap, lf_prev its last byte and lf_seen
     * the LFs in it. lf_need: the LFs that end the head after the last span (1 when that was
     * an empty value reported at the start of the blank line). */
    const char *lf_from;
    int lf_open;
    char lf_prev;
    int lf_seen, lf_need;
    /* Raw bytes of the head (or trailers), counted from span positions and feed ends. */
    const char *mark;
    size_t head_bytes;
    size_t ext_bytes;
    uint64_t body_bytes;

    int expect_head;   /* the next final response answers a HEAD request */
    int head_response; /* the current response answers a HEAD request */
    int upgraded;
    int closed; /* a message ended the connection: later bytes are ignored */
    int finished;
    int err; /* 0 while alive; the error every later call returns */
    int pause_req; /* cg_http_parser_pause() from a callback: stop after it */
    int resumable; /* the last feed stopped after a callback: the next one goes on */
    int status;
    char reason[96];
};

static int fail(struct cg_http_parser *p, int err, int status, const char *reason)
{
    if (p->err != 0)
        return p->err;
    p->err = err;
    /* A bad response is the upstream's fault: whatever went wrong, the client gets 502. */
    p->status = p->type == CG_HTTP_RESPONSE ? 502 : status;
    snprintf(p->reason, sizeof(p->reason), "%s", reason);
    return err;
}

static int fail_limit_headers(struct cg_http_parser *p, const char *reason)
{
    return fail(p, CG_ELIMIT, 431, reason);
}

static int buf_append(struct cg_http_parser *p, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    if (len > p->buf_max - p->buf_len)
        return fail_limit_headers(p, "header block too large");
    if (p->buf_len + len > p->buf_cap) {
        size_t cap = p->buf_cap != 0 ? p->buf_cap : BUF_INITIAL;
        while (cap < p->buf_len + len)
            cap *= 2;
        if (cap > p->buf_max)
            cap = p->buf_max;
        char *nb = realloc(p->buf, cap);
        if (nb == NULL)
            return fail(p, UV_ENOMEM, 500, "out of memory");
        p->buf = nb;
        p->buf_cap = cap;
    }
    memcpy(p->buf + p->buf_len, data, len);
    p->buf_len += len;
    return 0;
}

/* Counts the raw head bytes up to end, so whitespace and folding count like anything else. */
static int account(struct cg_http_parser *p, const char *end)
{
    if (p->mark != NULL && end > p->mark)
        p->head_bytes += (size_t)(end - p->mark);
    p->mark = end;
    if (p->head_bytes > p->lim.max_header_bytes)
        return fail_limit_headers(p, p->phase == PHASE_TRAILER ? "trailers too large"
                                                               : "header block too large");
    return 0;
}

static int account_span(struct cg_http_parser *p, const char *at, size_t len)
{
    if (p->mark == NULL)
        p->mark = at;
    return account(p, at + len);
}

/*
 * Strict llhttp 8 still takes a bare LF for the end of the start line and of the head
 * ("\r\n\n"); RFC 9112 2.2 lets a recipient do so, but two hops that disagree read different
 * messages. Checks the gap bytes [from, to): every LF must follow a CR. With stop_after > 0,
 * stops after that many LFs and sets *end there. Returns 0 or the parser error.
 */
static int lf_check(struct cg_http_parser *p, const char *from, const char *to, int stop_after)
{
    for (const char *q = from; q < to; q++) {
        if (*q == '\n') {
            if (p->lf_prev != '\r')
                return fail(p, CG_EHTTP, 400, "bare LF (lines end with CRLF)");
            if (stop_after > 0 && ++p->lf_seen >= stop_after)
                return 0;
        }
        p->lf_prev = *q;
    }
    return 0;
}

/* A head span begins at at: checks the gap before it, then starts one after it. */
static int lf_span(struct cg_http_parser *p, const char *at, size_t len, int empty_value)
{
    int rc = 0;
    if (p->lf_from != NULL && at >= p->lf_from)
        rc = lf_check(p, p->lf_from, at, 0);
    if (len > 0 || empty_value) {
        p->lf_from = at + len;
        p->lf_prev = len > 0 ? at[len - 1] : '\n';
        p->lf_seen = 0;
        p->lf_need = empty_value ? 1 : 2;
    }
    return rc;
}

static struct cg_http_parser *parser_of(llhttp_t *ll)
{
    return ll->data;
}

/* llhttp wants HPE_USER from span callbacks and -1 from the others to stop. */
static int span_result(int rc)
{
    return rc == 0 ? 0 : HPE_USER;
}

static int cb_result(int rc)
{
    return rc == 0 ? 0 : -1;
}

static int on_message_begin(llhttp_t *ll)
{
    struct cg_http_parser *p = parser_of(ll);
    p->phase = PHASE_HEAD;
    p->buf_len = 0;
    p->start_off = p->start_len = 0;
    p->n_refs = 0;
    p->n_trailers = 0;
    p->in_field = p->in_value = p->value_split = p->after_name = p->gap_lf = 0;
    p->last_value_end = NULL;
    p->lf_from = NULL;
    p->lf_open = 0;
    p->mark = NULL;
    p->head_bytes = 0;
    p->ext_bytes = 0;
    p->body_bytes = 0;
    p->head_response = 0;
    return 0;
}

static int on_start_piece(llhttp_t *ll, const char *at, size_t len)
{
    struct cg_http_parser *p = parser_of(ll);
    int rc = lf_span(p, at, len, 0);
    if (rc == 0)
        rc = account_span(p, at, len);
    if (rc == 0)
        rc = buf_append(p, at, len);
    if (rc == 0)
        p->start_len += len;
    return span_result(rc);
}

static int on_start_complete(llhttp_t *ll)
{
    struct cg_http_parser *p = parser_of(ll);
    return cb_result(buf_append(p, "", 1));
}

static int on_count_only(llhttp_t *ll, const char *at, size_t len)
{
    struct cg_http_parser *p = parser_of(ll);
    int rc = lf_span(p, at, len, 0);
    return span_result(rc != 0 ? rc : account_span(p, at, len));
}

static int on_header_field(llhttp_t *ll, const char *at, size_t len)
{
    struct cg_http_parser *p = parser_of(ll);
    if (p->phase == PHASE_BODY) {
        /* Trailers: validated by llhttp and counted, never stored nor forwarded. */
        p->phase = PHASE_TRAILER;
        p->head_bytes = 0;
        p->mark = NULL;
    }
    int rc = p->phase == PHASE_HEAD ? lf_span(p, at, len, 0) : 0;
    if (rc == 0)
        rc = account_span(p, at, len);
    if (rc != 0)
        return span_result(rc);
    p->gap_from = at + len;
    if (!p->in_field) {
        p->in_field = 1;
        size_t n = p->phase == PHASE_TRAILER ? ++p->n_trailers : p->n_refs + 1;
        if (n > p->lim.max_headers)
            return span_result(fail_limit_headers(
                p, p->phase == PHASE_TRAILER ? "too many trailers" : "too many headers"));
        if (p->phase == PHASE_HEAD) {
            if (p->n_refs == p->refs_cap) {
                size_t cap = p->refs_cap != 0 ? 2 * p->refs_cap : REFS_INITIAL;
                if (cap > p->lim.max_headers)
                    cap = p->lim.max_headers;
                struct hdr_ref *nr = realloc(p->refs, cap * sizeof(*nr));
                if (nr == NULL)
                    return span_result(fail(p, UV_ENOMEM, 500, "out of memory"));
                p->refs = nr;
                p->refs_cap = cap;
            }
            p->refs[p->n_refs].name_off = p->buf_len;
            p->n_refs++;
        }
    }
    if (p->phase == PHASE_TRAILER)
        return 0;
    return span_result(buf_append(p, at, len));
}

static int on_header_field_complete(llhttp_t *ll)
{
    struct cg_http_parser *p = parser_of(ll);
    p->in_field = 0;
    p->after_name = 1;
    if (p->phase == PHASE_TRAILER)
        return 0;
    struct hdr_ref *r = &p->refs[p->n_refs - 1];
    r->name_len = p->buf_len - r->name_off;
    /* Even strict llhttp takes ": value" (RFC 9110 5.1: a field name is a token, 1*tchar). */
    if (r->name_len == 0)
        return cb_result(fail(p, CG_EHTTP, 400, "empty header name"));
    int rc = buf_append(p, "", 1);
    r->value_off = p->buf_len;
    r->value_len = 0;
    return cb_result(rc);
}

static int on_header_value(llhttp_t *ll, const char *at, size_t len)
{
    struct cg_http_parser *p = parser_of(ll);
    int rc = 0;
    if (p->phase == PHASE_HEAD) {
        /* An empty value is reported at the start of the next line (see below). */
        int empty_at_line_start = len == 0 && at > p->feed_data && at[-1] == '\n';
        if (len == 0 && at == p->feed_data && p->lf_open && p->lf_prev == '\n')
            empty_at_line_start = 1;
        rc = lf_span(p, at, len, empty_at_line_start);
    }
    if (rc == 0)
        rc = account_span(p, at, len);
    if (rc != 0)
        return span_result(rc);
    /*
     * llhttp 8 accepts obs-fold and hands the continuation line out as a second span of
     * the same value. A value is legitimately cut in two spans only where a feed ended.
     */
    if (p->in_value && !(p->value_split && at == p->feed_data))
        return span_result(fail(p, CG_EHTTP, 400, "obs-fold in header"));
    /*
     * Between a name and its value llhttp skips whitespace and, when the value is folded,
     * the line break too. An empty value is reported as an empty span at the start of the
     * next line: that is the one line break allowed here.
     */
    if (p->after_name) {
        const char *lf = memchr(p->gap_from, '\n', (size_t)(at - p->gap_from));
        int empty_line = len == 0 && (lf != NULL ? p->gap_lf == 0 && lf == at - 1
                                                 : p->gap_lf == 1 && at == p->feed_data);
        if ((p->gap_lf || lf != NULL) && !empty_line)
            return span_result(fail(p, CG_EHTTP, 400, "obs-fold in header"));
    }
    p->after_name = 0;
    p->in_value = 1;
    p->value_split = 0;
    p->last_value_end = at + len;
    for (size_t i = 0; i < len; i++)
        if (at[i] == '\0' || at[i] == '\r' || at[i] == '\n')
            return span_result(fail(p, CG_EHTTP, 400, "invalid character in header value"));
    if (p->phase == PHASE_TRAILER)
        return 0;
    return span_result(buf_append(p, at, len));
}

static int on_header_value_complete(llhttp_t *ll)
{
    struct cg_http_parser *p = parser_of(ll);
    p->in_value = 0;
    p->gap_lf = 0;
    if (p->phase == PHASE_TRAILER)
        return 0;
    struct hdr_ref *r = &p->refs[p->n_refs - 1];
    r->value_len = p->buf_len - r->value_off;
    return cb_result(buf_append(p, "", 1));
}

static int on_chunk_extension(llhttp_t *ll, const char *at, size_t len)
{
    struct cg_http_parser *p = parser_of(ll);
    (void)at;
    p->ext_bytes += len;
    /* Extensions are dropped (we re-chunk), but an endless one must not go unnoticed. */
    if (p->ext_bytes > p->lim.max_header_bytes)
        return span_result(fail(p, CG_ELIMIT, 400, "chunk extensions too long"));
    return 0;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int eq_nocase(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    return alen == blen && strncasecmp(a, b, blen) == 0;
}

/* Fills h from the accumulated buffer; its pointers stay valid until the next message. */
static void build_head(struct cg_http_parser *p, struct cg_http_head *h)
{
    llhttp_t *ll = &p->ll;
    /* The scalar fields only: entries past n_headers are never read, and clearing the whole
     * 8 KiB header array for every message was a quarter of ccgate-client's instructions. */
    memset(h, 0, offsetof(struct cg_http_head, headers));
    memset(&h->framing, 0, sizeof(*h) - offsetof(struct cg_http_head, framing));
    h->type = p->type;
    h->version_major = ll->http_major;
    h->version_minor = ll->http_minor;
    if (p->type == CG_HTTP_REQUEST) {
        h->method = llhttp_method_name((llhttp_method_t)ll->method);
        h->target = p->start_len != 0 ? p->buf + p->start_off : "";
        h->reason = "";
    } else {
        h->status = ll->status_code;
        h->method = "";
        h->target = "";
        h->reason = p->start_len != 0 ? p->buf + p->start_off : "";
    }
    h->n_headers = p->n_refs;
    for (size_t i = 0; i < p->n_refs; i++) {
        const struct hdr_ref *r = &p->refs[i];
        const char *v = p->buf + r->value_off;
        size_t vlen = r->value_len;
        while (vlen > 0 && is_ows(v[0])) {
            v++;
            vlen--;
        }
        while (vlen > 0 && is_ows(v[vlen - 1]))
            vlen--;
        h->headers[i].name = p->buf + r->name_off;
        h->headers[i].name_len = r->name_len;
        h->headers[i].value = v;
        h->headers[i].value_len = vlen;
    }
}

static size_t count_headers(const struct cg_http_head *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_headers; i++)
        if (eq_nocase(h->headers[i].name, h->headers[i].name_len, name))
            n++;
    return n;
}

/* Checks that llhttp leaves to us; returns 0 or the parser error. */
static int validate_head(struct cg_http_parser *p, const struct cg_http_head *h)
{
    uint16_t flags = p->ll.flags;
    if (h->version_major != 1 || h->version_minor > 1)
        return fail(p, CG_EHTTP, 400, "unsupported HTTP version");
    if (p->type == CG_HTTP_REQUEST) {
        /* RTSP, ICE (SOURCE) and the HTTP/2 preface are other protocols sharing the syntax. */
        if (p->ll.method >= HTTP_SOURCE)
            return fail(p, CG_EHTTP, 400, "unsupported method");
        if (count_headers(h, "host") > 1)
            return fail(p, CG_EHTTP, 400, "several Host headers");
    } else {
        if (h->status < 100)
            return fail(p, CG_EHTTP, 502, "invalid status code");
        if (h->status == 101 && !p->ll.upgrade)
            return fail(p, CG_EHTTP, 502, "101 without Upgrade");
    }
    if (flags & F_TRANSFER_ENCODING) {
        if (flags & F_CONTENT_LENGTH)
            return fail(p, CG_EHTTP, 400, "Content-Length with Transfer-Encoding");
        if (h->version_minor == 0)
            return fail(p, CG_EHTTP, 400, "Transfer-Encoding in HTTP/1.0");
        /*
         * Only a lone "chunked" is understood: another coding would survive our de-chunking
         * and reach the next hop mislabelled.
         */
        const struct cg_http_header *te = cg_http_head_get(h, "transfer-encoding");
        if (count_headers(h, "transfer-encoding") != 1 || te == NULL ||
            !eq_nocase(te->value, te->value_len, "chunked") || !(flags & F_CHUNKED))
            return fail(p, CG_EHTTP, 400, "Transfer-Encoding other than chunked");
    }
    return 0;
}

/* Whether a response carries no body whatever its headers say (RFC 9112 6.3). */
static int response_has_no_body(const struct cg_http_parser *p)
{
    int s = p->ll.status_code;
    return s / 100 == 1 || s == 204 || s == 304 || p->head_response;
}

/*
 * The head lives only as long as on_head: at over 8 KiB it would otherwise sit in every
 * idle parser.
 */
static int on_headers_complete(llhttp_t *ll)
{
    struct cg_http_parser *p = parser_of(ll);
    int rc, skip = 0;

    /* The blank line ending the head was consumed: it lies in this feed after the last span
     * (or after the start of this feed, when the gap began in an earlier one). */
    if (p->lf_from != NULL || p->lf_open) {
        const char *from = p->lf_from != NULL ? p->lf_from : p->feed_data;
        p->lf_open = 0;
        p->lf_from = NULL;
        if (p->lf_seen < p->lf_need) {
            rc = lf_check(p, from, p->feed_end, p->lf_need);
            if (rc != 0)
                return cb_result(rc);
        }
    }
    p->phase = PHASE_BODY;
    if (p->type == CG_HTTP_RESPONSE && ll->status_code >= 200 && p->expect_head) {
        p->expect_head = 0;
        p->head_response = 1;
    }
    struct cg_http_head *h = malloc(sizeof(*h));
    if (h == NULL) {
        rc = fail(p, UV_ENOMEM, 500, "out of memory");
        goto out;
    }
    build_head(p, h);
    rc = validate_head(p, h);
    if (rc != 0)
        goto out;

    uint16_t flags = ll->flags;
    if (p->type == CG_HTTP_RESPONSE && response_has_no_body(p)) {
        h->framing = CG_HTTP_BODY_NONE;
        skip = 1;
    } else if (flags & F_CHUNKED) {
        h->framing = CG_HTTP_BODY_CHUNKED;
    } else if (flags & F_CONTENT_LENGTH) {
        h->framing = CG_HTTP_BODY_LENGTH;
        h->content_length = ll->content_length;
    } else {
        h->framing = p->type == CG_HTTP_RESPONSE ? CG_HTTP_BODY_EOF : CG_HTTP_BODY_NONE;
    }
    h->head_response = p->head_response;
    if (h->framing == CG_HTTP_BODY_LENGTH && p->lim.max_body_bytes != 0 &&
        h->content_length > p->lim.max_body_bytes) {
        rc = fail(p, CG_ELIMIT, 413, "body too large");
        goto out;
    }

    if (h->version_minor >= 1)
        h->keep_alive = !(flags & F_CONNECTION_CLOSE);
    else
        h->keep_alive = (flags & F_CONNECTION_KEEP_ALIVE) && !(flags & F_CONNECTION_CLOSE);
    if (h->framing == CG_HTTP_BODY_EOF)
        h->keep_alive = 0;
    h->upgrade = ll->upgrade;
    /* RFC 9110 10.1.1: an HTTP/1.0 client cannot know 100 Continue; ignore its expectation. */
    if (p->type == CG_HTTP_REQUEST && h->version_minor >= 1) {
        const struct cg_http_header *e = cg_http_head_get(h, "expect");
        h->expect_continue = e != NULL && eq_nocase(e->value, e->value_len, "100-continue");
    }

    if (p->cb.on_head != NULL) {
        rc = p->cb.on_head(p->arg, h);
        if (rc != 0)
            rc = fail(p, rc, 400, "aborted by on_head");
    }
out:
    free(h);
    if (rc != 0)
        return cb_result(rc);
    if (p->pause_req) {
        /* The pause skips llhttp's handling of our return value: say "no body" by its flag. */
        if (skip)
            ll->flags |= F_SKIPBODY;
        return HPE_PAUSED;
    }
    return skip;
}

static int on_body(llhttp_t *ll, const char *at, size_t len)
{
    struct cg_http_parser *p = parser_of(ll);
    if (len == 0)
        return 0; /* an empty piece would read as the last chunk to a re-chunking caller */
    p->body_bytes += len;
    if (p->lim.max_body_bytes != 0 && p->body_bytes > p->lim.max_body_bytes)
        return span_result(fail(p, CG_ELIMIT, 413, "body too large"));
    if (p->cb.on_body != NULL) {
        int rc = p->cb.on_body(p->arg, (const uint8_t *)at, len);
        if (rc != 0)
            return span_result(fail(p, rc, 400, "aborted by on_body"));
    }
    return 0;
}

static int on_message_complete(llhttp_t *ll)
{
    struct cg_http_parser *p = parser_of(ll);
    p->phase = PHASE_IDLE;
    p->mark = NULL;
    /* One big head must not make a long-lived keep-alive parser big for good. */
    if (p->buf_cap > 4 * BUF_INITIAL) {
        free(p->buf);
        p->buf = NULL;
        p->buf_cap = 0;
    }
    if (p->refs_cap > REFS_INITIAL) {
        free(p->refs);
        p->refs = NULL;
        p->refs_cap = 0;
    }
    if (p->cb.on_complete != NULL) {
        int rc = p->cb.on_complete(p->arg);
        if (rc != 0)
            return cb_result(fail(p, rc, 400, "aborted by on_complete"));
    }
    return p->pause_req ? HPE_PAUSED : 0;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_start_piece,
    .on_status = on_start_piece,
    .on_method = on_count_only,
    .on_version = on_count_only,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_chunk_extension_name = on_chunk_extension,
    .on_chunk_extension_value = on_chunk_extension,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_url_complete = on_start_complete,
    .on_status_complete = on_start_complete,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
};

int cg_http_parser_new(enum cg_http_type type, const struct cg_http_limits *lim,
                       const struct cg_http_callbacks *cb, void *arg, struct cg_http_parser **out)
{
    *out = NULL;
    struct cg_http_parser *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return UV_ENOMEM;
    p->type = type;
    if (lim != NULL)
        p->lim = *lim;
    if (p->lim.max_header_bytes == 0)
        p->lim.max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    if (p->lim.max_headers == 0)
        p->lim.max_headers = DEFAULT_MAX_HEADERS;
    if (p->lim.max_headers > CG_HTTP_MAX_HEADERS_CAP)
        p->lim.max_headers = CG_HTTP_MAX_HEADERS_CAP;
    /* Stored bytes never exceed raw bytes, plus the NULs we add (two per header, one more). */
    p->buf_max = p->lim.max_header_bytes + 2 * p->lim.max_headers + 2;
    if (cb != NULL)
        p->cb = *cb;
    p->arg = arg;
    llhttp_init(&p->ll, type == CG_HTTP_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE, &settings);
    p->ll.data = p;
    *out = p;
    return 0;
}

void cg_http_parser_free(struct cg_http_parser *p)
{
    if (p == NULL)
        return;
    free(p->buf);
    free(p->refs);
    free(p);
}

long cg_http_parser_feed(struct cg_http_parser *p, const uint8_t *data, size_t len)
{
    if (p->err != 0)
        return p->err;
    if (p->upgraded)
        return 0;
    if (p->closed)
        return (long)len;
    if (p->finished)
        return fail(p, CG_EHTTP, 400, "data after end of stream");
    if (len == 0 && !p->resumable)
        return 0;

    static const char none[1];
    const char *d = len > 0 ? (const char *)data : none;
    p->resumable = 0;
    p->feed_data = d;
    p->feed_end = d + len;
    p->gap_from = d;
    if (p->lf_open)
        p->lf_from = d; /* the gap goes on in this feed */
    if (p->phase == PHASE_HEAD || p->phase == PHASE_TRAILER)
        p->mark = d;
    llhttp_errno_t e = llhttp_execute(&p->ll, d, len);
    if (p->err != 0)
        return p->err;
    switch (e) {
    case HPE_OK:
        break;
    case HPE_PAUSED:
        /* Stopped after on_head (the head's blank line consumed) or on_complete. */
        p->pause_req = 0;
        p->resumable = 1;
        llhttp_resume(&p->ll);
        return (long)(llhttp_get_error_pos(&p->ll) - d);
    case HPE_PAUSED_UPGRADE:
        p->upgraded = 1;
        return (long)(llhttp_get_error_pos(&p->ll) - d);
    case HPE_PAUSED_H2_UPGRADE:
        return fail(p, CG_EHTTP, 400, "HTTP/2 preface");
    case HPE_CLOSED_CONNECTION:
        /* Strict llhttp refuses bytes after "Connection: close"; they are simply unread. */
        p->closed = 1;
        return (long)len;
    default: {
        const char *r = llhttp_get_error_reason(&p->ll);
        return fail(p, CG_EHTTP, 400, r != NULL ? r : llhttp_errno_name(e));
    }
    }
    if (p->phase == PHASE_HEAD || p->phase == PHASE_TRAILER) {
        int rc = account(p, d + len);
        if (rc != 0)
            return rc;
    }
    if (p->lf_from != NULL) {
        /* A gap still open at the end of the feed: checked so far, continued next time. */
        int rc = lf_check(p, p->lf_from, d + len, 0);
        if (rc != 0)
            return rc;
        p->lf_seen = 0;
        for (const char *q = p->lf_from; q < d + len; q++)
            p->lf_seen += *q == '\n';
        p->lf_open = 1;
        p->lf_from = NULL;
    }
    p->value_split = p->in_value && p->last_value_end == d + len;
    if (p->after_name) {
        const char *end = d + len;
        const char *lf = memchr(p->gap_from, '\n', (size_t)(end - p->gap_from));
        if (lf != NULL)
            p->gap_lf = p->gap_lf == 0 && lf == end - 1 ? 1 : 2;
        else if (p->gap_lf != 0 && end > p->gap_from)
            p->gap_lf = 2;
    }
    return (long)len;
}

int cg_http_parser_finish(struct cg_http_parser *p)
{
    if (p->err != 0)
        return p->err;
    if (p->upgraded || p->finished)
        return 0;
    p->finished = 1;
    llhttp_errno_t e = llhttp_finish(&p->ll);
    if (p->err != 0)
        return p->err;
    if (e != HPE_OK)
        return fail(p, CG_EHTTP, 400, "truncated message");
    return 0;
}

void cg_http_parser_pause(struct cg_http_parser *p)
{
    p->pause_req = 1;
}

void cg_http_parser_expect_head_response(struct cg_http_parser *p)
{
    p->expect_head = 1;
}

int cg_http_parser_in_message(const struct cg_http_parser *p)
{
    return p->phase != PHASE_IDLE && !p->upgraded;
}

const char *cg_http_parser_target(const struct cg_http_parser *p)
{
    /* The target is complete once the NUL after it was stored. */
    if (p->type != CG_HTTP_REQUEST || p->phase == PHASE_IDLE || p->buf == NULL ||
        p->start_len == 0 || p->buf_len <= p->start_off + p->start_len)
        return NULL;
    return p->buf + p->start_off;
}

int cg_http_parser_status(const struct cg_http_parser *p)
{
    return p->err != 0 ? p->status : 0;
}

const char *cg_http_parser_reason(const struct cg_http_parser *p)
{
    return p->err != 0 ? p->reason : "";
}

const struct cg_http_header *cg_http_head_get(const struct cg_http_head *h, const char *name)
{
    for (size_t i = 0; i < h->n_headers; i++)
        if (eq_nocase(h->headers[i].name, h->headers[i].name_len, name))
            return &h->headers[i];
    return NULL;
}

/* Output cursor of cg_http_head_write: stops counting on overflow. */
struct out {
    char *p;
    size_t cap, len;
    int overflow;
};

static void out_put(struct out *o, const char *s, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void out_str(struct out *o, const char *s)
{
    out_put(o, s, strlen(s));
}

static void out_header(struct out *o, const struct cg_http_header *hd)
{
    out_put(o, hd->name, hd->name_len);
    out_put(o, ": ", 2);
    out_put(o, hd->value, hd->value_len);
    out_put(o, "\r\n", 2);
}

/* Whether name is one of the tokens of h's Connection headers. */
static int named_in_connection(const struct cg_http_head *h, const char *name, size_t len)
{
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct cg_http_header *c = &h->headers[i];
        if (!eq_nocase(c->name, c->name_len, "connection"))
            continue;
        size_t pos = 0;
        while (pos < c->value_len) {
            size_t end = pos;
            while (end < c->value_len && c->value[end] != ',')
                end++;
            size_t a = pos, b = end;
            while (a < b && is_ows(c->value[a]))
                a++;
            while (b > a && is_ows(c->value[b - 1]))
                b--;
            if (b - a == len && strncasecmp(c->value + a, name, len) == 0)
                return 1;
            pos = end + 1;
        }
    }
    return 0;
}

static int is_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {
        "connection", "keep-alive",         "proxy-connection",    "te",      "transfer-encoding",
        "upgrade",    "proxy-authenticate", "proxy-authorization", "trailer", "content-length",
    };
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (eq_nocase(name, len, hop[i]))
            return 1;
    return 0;
}

static int has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
            return 1;
    return 0;
}

long cg_http_head_write_ex(const struct cg_http_head *h, const char *via, int keep_alive,
                           unsigned flags, char *out, size_t cap, enum cg_http_framing *out_framing)
{
    struct out o = {out, cap, 0, 0};
    char line[64];
    int http10_peer = (flags & CG_HTTP_WRITE_HTTP10_PEER) != 0;
    int is_req = h->type == CG_HTTP_REQUEST;
    /* A 101 or an upgrade request keeps Upgrade; CONNECT has no such header to keep. */
    int upgrading =
        h->upgrade && cg_http_head_get(h, "upgrade") != NULL && (is_req || h->status == 101);
    /* For these the Content-Length describes another message, so it is passed on as is. */
    int keep_cl =
        !is_req && h->framing == CG_HTTP_BODY_NONE && (h->head_response || h->status == 304);
    enum cg_http_framing framing = h->framing;

    if (h->n_headers > CG_HTTP_MAX_HEADERS_CAP)
        return CG_EHTTP;
    if (is_req) {
        if (h->method == NULL || h->target == NULL || has_ctl(h->target, strlen(h->target)) ||
            strchr(h->target, ' ') != NULL || strchr(h->method, ' ') != NULL)
            return CG_EHTTP;
        out_str(&o, h->method);
        out_put(&o, " ", 1);
        out_str(&o, h->target);
        out_str(&o, " HTTP/1.1\r\n");
    } else {
        const char *reason = h->reason != NULL ? h->reason : "";
        if (h->status < 100 || h->status > 999 || has_ctl(reason, strlen(reason)))
            return CG_EHTTP;
        snprintf(line, sizeof(line), "HTTP/1.1 %d ", h->status);
        out_str(&o, line);
        out_str(&o, reason);
        out_put(&o, "\r\n", 2);
    }

    for (size_t i = 0; i < h->n_headers; i++) {
        const struct cg_http_header *hd = &h->headers[i];
        if (hd->name_len == 0 || has_ctl(hd->name, hd->name_len) ||
            has_ctl(hd->value, hd->value_len) || memchr(hd->name, ':', hd->name_len) != NULL)
            return CG_EHTTP;
        if (upgrading && eq_nocase(hd->name, hd->name_len, "upgrade")) {
            out_header(&o, hd);
            continue;
        }
        if (keep_cl && eq_nocase(hd->name, hd->name_len, "content-length")) {
            out_header(&o, hd);
            continue;
        }
        if (is_hop_by_hop(hd->name, hd->name_len))
            continue;
        if (is_req && h->version_minor == 0 && eq_nocase(hd->name, hd->name_len, "expect"))
            continue; /* the expectation of an HTTP/1.0 client is ignored, not passed on */
        /* Host is never dropped: "Connection: host" would otherwise unroute the request. */
        if (!eq_nocase(hd->name, hd->name_len, "host") &&
            named_in_connection(h, hd->name, hd->name_len))
            continue;
        out_header(&o, hd);
    }
    if (via != NULL && via[0] != '\0') {
        if (has_ctl(via, strlen(via)))
            return CG_EHTTP;
        out_str(&o, "Via: 1.1 ");
        out_str(&o, via);
        out_put(&o, "\r\n", 2);
    }

    switch (framing) {
    case CG_HTTP_BODY_NONE:
        break;
    case CG_HTTP_BODY_LENGTH:
        snprintf(line, sizeof(line), "Content-Length: %" PRIu64 "\r\n", h->content_length);
        out_str(&o, line);
        break;
    case CG_HTTP_BODY_CHUNKED:
    case CG_HTTP_BODY_EOF:
        if (http10_peer && !is_req) {
            /* An HTTP/1.0 client knows no chunks: the end of the body is the close. */
            framing = CG_HTTP_BODY_EOF;
            keep_alive = 0;
        } else {
            framing = CG_HTTP_BODY_CHUNKED;
            out_str(&o, "Transfer-Encoding: chunked\r\n");
        }
        break;
    }
    /* An interim response says nothing about the connection. */
    int interim = !is_req && h->status / 100 == 1;
    if (upgrading)
        out_str(&o, "Connection: upgrade\r\n");
    else if (!interim && !keep_alive)
        out_str(&o, "Connection: close\r\n");
    else if (!interim && http10_peer)
        out_str(&o, "Connection: keep-alive\r\n");
    out_put(&o, "\r\n", 2);
    if (o.overflow)
        return CG_ELIMIT;
    if (out_framing != NULL)
        *out_framing = framing;
    return (long)o.len;
}

long cg_http_head_write(const struct cg_http_head *h, const char *via, int keep_alive, char *out,
                        size_t cap, enum cg_http_framing *out_framing)
{
    return cg_http_head_write_ex(h, via, keep_alive, 0, out, cap, out_framing);
}

size_t cg_http_chunk_header(char *out, size_t cap, size_t n)
{
    int len = snprintf(out, cap, "%zx\r\n", n);
    if (len < 0 || (size_t)len >= cap)
        return 0;
    return (size_t)len;
}
