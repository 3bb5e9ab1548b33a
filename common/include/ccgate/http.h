#ifndef CCGATE_HTTP_H
#define CCGATE_HTTP_H

#include <stddef.h>
#include <stdint.h>

/*
 * HTTP/1.1 message parsing (llhttp) and re-serialization for a forwarding proxy. Bodies are
 * never buffered: they are handed out piece by piece as they arrive.
 */

#define CG_HTTP_MAX_HEADERS_CAP 256

enum cg_http_type { CG_HTTP_REQUEST, CG_HTTP_RESPONSE };

/* How a message body is delimited, on the wire we read or the wire we write. */
enum cg_http_framing {
    CG_HTTP_BODY_NONE,    /* no body (GET without length, 1xx/204/304, response to HEAD) */
    CG_HTTP_BODY_LENGTH,  /* Content-Length */
    CG_HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
    CG_HTTP_BODY_EOF      /* response delimited by connection close */
};

/* A zero field means its default; max_headers is capped at CG_HTTP_MAX_HEADERS_CAP. */
struct cg_http_limits {
    size_t max_header_bytes; /* start line + headers (and trailers); default 32 KiB -> 431 */
    size_t max_headers;      /* default 100 -> 431 (trailers counted apart, same limit) */
    uint64_t max_body_bytes; /* 0 = unlimited; else -> 413 */
};

struct cg_http_header {
    const char *name;
    size_t name_len;
    const char *value; /* trimmed of surrounding whitespace */
    size_t value_len;
};

/* A parsed start line and header block. Pointers are valid only during on_head. */
struct cg_http_head {
    enum cg_http_type type;
    const char *method; /* request: NUL-terminated, e.g. "GET" */
    const char *target; /* request: NUL-terminated request-target */
    int status;         /* response */
    const char *reason; /* response: NUL-terminated reason phrase (may be "") */
    int version_major, version_minor;
    size_t n_headers;
    struct cg_http_header headers[CG_HTTP_MAX_HEADERS_CAP];
    enum cg_http_framing framing;
    uint64_t content_length; /* when framing == CG_HTTP_BODY_LENGTH */
    int keep_alive;          /* per version and Connection */
    int upgrade;             /* Upgrade accepted by llhttp (request with Upgrade, or 101) */
    int expect_continue;     /* HTTP/1.1 request with Expect: 100-continue (1.0: dropped) */
    int head_response;       /* response to a HEAD request (see expect_head_response) */
};

/*
 * Callbacks return 0 to go on or a negative code to stop parsing with that error. on_body
 * receives decoded body bytes (chunk framing removed), never 0 of them, and only for a
 * message whose framing is not CG_HTTP_BODY_NONE; chunk extensions and trailers are
 * validated and dropped. A callback must not free the parser.
 */
struct cg_http_callbacks {
    int (*on_head)(void *arg, const struct cg_http_head *h);
    int (*on_body)(void *arg, const uint8_t *data, size_t len);
    int (*on_complete)(void *arg);
};

struct cg_http_parser;

/* Creates a parser; lim NULL means the defaults. Caller frees with cg_http_parser_free(). */
int cg_http_parser_new(enum cg_http_type type, const struct cg_http_limits *lim,
                       const struct cg_http_callbacks *cb, void *arg,
                       struct cg_http_parser **out);
void cg_http_parser_free(struct cg_http_parser *p);

/*
 * Parses len bytes. Returns the number consumed (less than len after an upgrade: the rest
 * is tunnel data, and so is everything that follows; and after cg_http_parser_pause()), or
 * CG_EHTTP / CG_ELIMIT / a callback's error. After an error the parser is dead;
 * cg_http_parser_status() gives the
 * status to answer (400, 413, 431, or 502 for a bad response) and cg_http_parser_reason()
 * a short text. Smuggling defences: Content-Length with Transfer-Encoding, several
 * Content-Length headers (even equal), Transfer-Encoding other than a lone "chunked" or in
 * HTTP/1.0, obs-fold, whitespace or other non-token bytes in a header name, NUL/CR/LF in a
 * value, bad chunk sizes, several Host headers, versions other than 1.0/1.1, methods of
 * other protocols (RTSP, ICE, the HTTP/2 preface) are all errors; 1xx, 204, 304 and HEAD
 * responses have no body whatever they say. Bytes after a message that ends the connection
 * (Connection: close, or HTTP/1.0 without keep-alive) are consumed and ignored.
 */
long cg_http_parser_feed(struct cg_http_parser *p, const uint8_t *data, size_t len);

/*
 * Called from on_head or on_complete: the cg_http_parser_feed() running now returns right
 * after that callback, with the bytes consumed up to the end of the head or of the message,
 * so that the caller can act at that boundary (hold a head, count a message's bytes). The
 * caller then feeds the rest; after a pause it feeds again even when nothing is left (len 0),
 * which completes a message that ends with its head (a request without body).
 */
void cg_http_parser_pause(struct cg_http_parser *p);

/* The peer closed: completes an EOF-delimited body, else CG_EHTTP when mid-message. */
int cg_http_parser_finish(struct cg_http_parser *p);

/* Response parsers: the next response answers a HEAD request (no body whatever it says). */
void cg_http_parser_expect_head_response(struct cg_http_parser *p);

/* Whether a message has begun but not completed. */
int cg_http_parser_in_message(const struct cg_http_parser *p);

/* Request parsers: the target of the message being read once its start line named it (also
 * after an error in its headers or body), else NULL. Valid until the next feed. */
const char *cg_http_parser_target(const struct cg_http_parser *p);

int cg_http_parser_status(const struct cg_http_parser *p);
const char *cg_http_parser_reason(const struct cg_http_parser *p);

/* First header named name (case-insensitive), or NULL. */
const struct cg_http_header *cg_http_head_get(const struct cg_http_head *h, const char *name);

/*
 * Writes h for the next hop into out: the start line (always HTTP/1.1), end-to-end headers
 * (hop-by-hop ones removed per RFC 9110 7.6.1, those named in Connection too, and
 * Content-Length / Transfer-Encoding re-derived), "Via: 1.1 <via>" appended, then framing
 * headers: Content-Length for LENGTH, "Transfer-Encoding: chunked" for CHUNKED and for an
 * EOF-delimited response (re-chunked so the connection can be kept), "Connection: close"
 * when !keep_alive, and Connection/Upgrade kept for an upgrade. *out_framing says how the
 * body must be written: for CHUNKED each on_body piece as cg_http_chunk_header(), the bytes
 * and "\r\n", then "0\r\n\r\n" at on_complete; for LENGTH and EOF the bytes as they are.
 * Host is kept even when Connection names it. A response to HEAD and a 304 keep their
 * Content-Length as received (it describes another representation). The head ends with
 * the blank line: a caller adding headers writes them over the last two bytes. Returns the
 * length written or CG_ELIMIT when cap is too small.
 */
long cg_http_head_write(const struct cg_http_head *h, const char *via, int keep_alive,
                        char *out, size_t cap, enum cg_http_framing *out_framing);

/* Flags for cg_http_head_write_ex(). */
#define CG_HTTP_WRITE_HTTP10_PEER 0x1u /* the next hop speaks HTTP/1.0 (no chunked responses) */

/*
 * cg_http_head_write() with flags. With CG_HTTP_WRITE_HTTP10_PEER a chunked or EOF-delimited
 * response is written EOF-delimited with "Connection: close" (an HTTP/1.0 client knows no
 * chunks) and a kept-alive connection says "Connection: keep-alive". Header names or values
 * holding CR, LF or NUL (a hand-built head) give CG_EHTTP.
 */
long cg_http_head_write_ex(const struct cg_http_head *h, const char *via, int keep_alive,
                           unsigned flags, char *out, size_t cap,
                           enum cg_http_framing *out_framing);

/*
 * Writes the chunk-size line for a chunk of n bytes ("%zx\r\n"); returns its length, or 0
 * when cap is too small (19 bytes always suffice).
 */
size_t cg_http_chunk_header(char *out, size_t cap, size_t n);

#endif
