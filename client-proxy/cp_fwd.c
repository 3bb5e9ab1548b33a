#include "cp_fwd.h"

#include <string.h>

#include "ccgate/err.h"

#define VIA "ccgate"
#define HEAD_MAX (64 * 1024)
/* Bytes of body up to which a re-chunked piece goes out as one write (size line, data, CRLF):
 * an SSE event is then one packet, or one TLS record, instead of three. */
#define CHUNK_COALESCE (16 * 1024)

/* One process, one thread: the head is written here and copied out by f->out. */
static char head_buf[HEAD_MAX];
static uint8_t chunk_buf[32 + CHUNK_COALESCE + 2];

int cp_fwd_head(struct cp_fwd *f, const struct cg_http_head *h, int keep_alive)
{
    long n = cg_http_head_write(h, VIA, keep_alive, head_buf, sizeof(head_buf), &f->framing);
    if (n < 0)
        return (int)n;
    f->out(f->arg, head_buf, (size_t)n);
    return 0;
}

void cp_fwd_body(struct cp_fwd *f, const uint8_t *data, size_t len)
{
    if (len == 0)
        return;
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
