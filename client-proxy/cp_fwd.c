#include "cp_fwd.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ccgate/err.h"
#include "ccgate/httpmsg.h"

#define VIA "ccgate"
#define HEAD_MAX (64 * 1024)
/* Bytes of body up to which a re-chunked piece goes out as one write (size line, data, CRLF):
 * an SSE event is then one packet, or one TLS record, instead of three. */
#define CHUNK_COALESCE (16 * 1024)

/* One process, one thread: the head is written here and copied out by f->out. */
static char head_buf[HEAD_MAX];
static uint8_t chunk_buf[32 + CHUNK_COALESCE + 2];

#define RID_NAME "x-request-id: "
#define RID_NAME_LEN (sizeof(RID_NAME) - 1)

/* Whether the head line at p (len bytes, no CRLF) is an x-request-id header. */
static int is_rid_line(const char *p, size_t len)
{
    return len >= RID_NAME_LEN - 1 && strncasecmp(p, RID_NAME, RID_NAME_LEN - 1) == 0;
}

/* Writes "x-request-id: id" and the blank line at offset at of head_buf; returns the head's
 * new length, or CG_ELIMIT when it does not fit. */
static long append_request_id(size_t at, const char *id)
{
    size_t idlen = strlen(id);
    if (at + RID_NAME_LEN + idlen + 4 > sizeof(head_buf))
        return CG_ELIMIT;
    memcpy(head_buf + at, RID_NAME, RID_NAME_LEN);
    memcpy(head_buf + at + RID_NAME_LEN, id, idlen);
    memcpy(head_buf + at + RID_NAME_LEN + idlen, "\r\n\r\n", 4);
    return (long)(at + RID_NAME_LEN + idlen + 4);
}

/* Makes the written head (n bytes in head_buf, ending with the blank line) carry exactly one
 * x-request-id, id: other lines of that name are dropped. Returns the new length, or CG_ELIMIT
 * when the line does not fit. */
static long put_request_id(long n, const char *id)
{
    size_t idlen = strlen(id), found = 0, same = 0;
    char *end = head_buf + n - 2; /* the blank line */
    char *first = (char *)memchr(head_buf, '\n', (size_t)n) + 1;
    for (char *p = first; p < end;) {
        char *eol = memchr(p, '\n', (size_t)(end + 2 - p));
        size_t len = (size_t)(eol - 1 - p);
        if (is_rid_line(p, len)) {
            found++;
            same = len == RID_NAME_LEN + idlen && memcmp(p + RID_NAME_LEN, id, idlen) == 0;
        }
        p = eol + 1;
    }
    if (found == 1 && same)
        return n;
    if (found == 0)
        return append_request_id((size_t)n - 2, id);
    char *w = first;
    for (char *p = first; p < end;) {
        char *eol = memchr(p, '\n', (size_t)(end + 2 - p));
        size_t len = (size_t)(eol + 1 - p);
        if (!is_rid_line(p, len - 2)) {
            memmove(w, p, len);
            w += len;
        }
        p = eol + 1;
    }
    return append_request_id((size_t)(w - head_buf), id);
}

/* Whether h has a header named x-request-id (cheaper than reading the written head). */
static int has_rid_header(const struct cg_http_head *h)
{
    for (size_t i = 0; i < h->n_headers; i++)
        if (h->headers[i].name_len == RID_NAME_LEN - 2 &&
            strncasecmp(h->headers[i].name, RID_NAME, RID_NAME_LEN - 2) == 0)
            return 1;
    return 0;
}

int cp_fwd_head(struct cp_fwd *f, const struct cg_http_head *h, int keep_alive)
{
    long n = cg_http_head_write(h, VIA, keep_alive, head_buf, sizeof(head_buf), &f->framing);
    if (n >= 0 && f->request_id != NULL)
        n = has_rid_header(h) ? put_request_id(n, f->request_id)
                              : append_request_id((size_t)n - 2, f->request_id);
    if (n < 0)
        return (int)n;
    f->body_bytes = 0;
    f->out(f->arg, head_buf, (size_t)n);
    return 0;
}

void cp_fwd_body(struct cp_fwd *f, const uint8_t *data, size_t len)
{
    if (len == 0)
        return;
    f->body_bytes += len;
    if (f->framing != CG_HTTP_BODY_CHUNKED) {
        f->out(f->arg, data, len);
        return;
    }
    char line[32];
    size_t n = cg_http_chunk_header(line, sizeof(line), len);
    if (len <= CHUNK_COALESCE) {
        memcpy(chunk_buf, line, n);
        memcpy(chunk_buf + n, data, len);
        memcpy(chunk_buf + n + len, "\r\n", 2);
        f->out(f->arg, chunk_buf, n + len + 2);
        return;
    }
    f->out(f->arg, line, n);
    f->out(f->arg, data, len);
    f->out(f->arg, "\r\n", 2);
}

void cp_fwd_end(struct cp_fwd *f)
{
    if (f->framing == CG_HTTP_BODY_CHUNKED)
        f->out(f->arg, "0\r\n\r\n", 5);
    f->framing = CG_HTTP_BODY_NONE;
}

int cp_fwd_request_id_take(const struct cg_http_head *h, char out[CP_REQUEST_ID_MAX + 1])
{
    const struct cg_http_header *found = NULL;
    out[0] = '\0';
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct cg_http_header *hd = &h->headers[i];
        if (hd->name_len != RID_NAME_LEN - 2 ||
            strncasecmp(hd->name, RID_NAME, RID_NAME_LEN - 2) != 0)
            continue;
        if (found != NULL)
            return 0; /* two: which one the app meant is unknown */
        found = hd;
    }
    if (found == NULL || !cg_httpmsg_request_id_valid(found->value, found->value_len))
        return 0;
    memcpy(out, found->value, found->value_len);
    out[found->value_len] = '\0';
    return 1;
}

/* splitmix64 (Steele, Lea, Flood 2014): a bijection of its state, so the counter half of an
 * id never repeats within a process, and its output looks random. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void cp_fwd_request_id_new(char out[33])
{
    static uint64_t seed[2];
    static int seeded;
    if (!seeded) {
        /* Ids need to be unique, not secret: without getrandom, time and pid still differ. */
        if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
            seed[0] = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
            seed[1] = (uint64_t)clock();
        }
        seeded = 1;
    }
    /* By hand: snprintf would cost more than the rest of the id. */
    static const char hex[] = "0123456789abcdef";
    uint64_t v[2] = {seed[0], splitmix64(&seed[1])};
    for (int i = 0; i < 32; i++)
        out[i] = hex[(v[i / 16] >> (60 - 4 * (i % 16))) & 0xf];
    out[32] = '\0';
}
