/*
 * ccgate-mock-worker: a small HTTP/1.1 upstream on libuv and cg_http, standing in for the
 * inference worker in demos, integration tests and benchmarks. Keep-alive, pipelining
 * (answers leave in request order), bounded output per connection, OpenAI-shaped answers
 * and SSE streams with send timestamps, and a few routes that misbehave on purpose.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/conn.h"
#include "ccgate/err.h"
#include "ccgate/http.h"
#include "ccgate/httpmsg.h"
#include "ccgate/log.h"
#include "ccgate/signals.h"
#include "ccgate/stream.h"

#define PROG "ccgate-mock-worker"
#define GEN_PIECE (64u * 1024u)
#define HIGH_WATER (1024u * 1024u) /* stop reading / generating above this many queued bytes */
#define LOW_WATER (256u * 1024u)   /* read again below this */
#define MAX_PIPELINE 64u           /* answers pending per connection before reading stops */
#define JSON_BODY_MAX (1024u * 1024u)
#define MAX_GEN_BYTES (UINT64_C(1) << 40)
#define MAX_EVENTS 100000u
#define MAX_INTERVAL_MS 60000u
#define MAX_SLOW_MS 600000u
#define LINGER_MS 2000u
#define STOP_GRACE_MS 5000u
#define DEFAULT_EVENTS 10u
#define DEFAULT_INTERVAL_MS 5u

enum route {
    R_ROOT,
    R_HEALTH,
    R_BYTES,
    R_CHUNKED,
    R_ECHO,
    R_UPLOAD,
    R_CHAT,
    R_COMPLETIONS,
    R_MODELS,
    R_SLOW,
    R_DIE,
    R_STATS,
    R_ERROR /* answered with err_status and err_msg */
};

/* One piece of output, until it is handed to the stream (which copies what the kernel does
 * not take at once). */
struct obuf {
    struct obuf *next;
    size_t len, cap;
    char data[];
};

/* The answer to one request; answers form a FIFO per connection, oldest written first. */
struct resp {
    struct resp *next;
    struct conn *c;
    enum route route;
    int head_only;  /* HEAD: headers only */
    int chunked;    /* body in chunks; else it ends with the connection (HTTP/1.0) */
    int keep_alive; /* the connection may carry another request after this one */
    int http10;
    int request_done;             /* the whole request has been read */
    int started;                  /* at the head of the FIFO and producing */
    int produced;                 /* everything has been queued */
    int abort_after;              /* /die: close without finishing once written */
    int began;                    /* some output exists (100 Continue, echo head) */
    struct obuf *q_head, *q_tail; /* output not yet handed to libuv */
    uint64_t gen_left;            /* body bytes still to generate (bytes, chunked, die) */
    uint64_t slow_ms;
    /* Completions. */
    unsigned events, events_sent, interval_ms;
    int stream;
    char model[64];
    char *json;
    size_t json_len;
    int json_too_big;
    /* Upload. */
    EVP_MD_CTX *sha;
    uint64_t body_bytes;
    int err_status;
    char err_msg[160];
};

struct server;

struct conn {
    struct cg_conn conn; /* the connection core: list, timer, close */
    struct cg_stream s;
    struct server *srv;
    struct cg_http_parser *parser;
    struct resp *fifo_head, *fifo_tail;
    struct resp *cur;     /* the answer to the request being read */
    size_t queued;        /* bytes in answer queues, not yet handed to the stream */
    size_t n_pending;     /* answers in the FIFO */
    uint64_t interval_ms; /* the timer repeats (SSE events) */
    int read_paused;
    int input_done; /* no more requests: close, upgrade, parse error, EOF */
    int read_eof;
    int shutting;
    int lingering;
};

struct server {
    uv_loop_t *loop;
    struct cg_conns set;
    struct cg_signals sig;
    int is_unix;
    char unix_path[108];
    int stopping;
    /* /stats */
    uint64_t requests, connections, active, stats_requests, bad_requests, body_bytes;
    uint64_t stream_events;     /* SSE events generated */
    uint64_t streams_cancelled; /* SSE streams whose connection closed before the last event */
};

static void pump(struct conn *c);

static void conn_close(struct conn *c)
{
    cg_conn_close(&c->conn, 0, "closed");
}

static int gone(const struct conn *c)
{
    return !cg_conn_live(&c->conn);
}

/* Output not yet written: in the answer queues and in the stream. */
static size_t out_bytes(const struct conn *c)
{
    return c->queued + c->s.queued;
}

static uint64_t now_realtime_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * Queues a copy of data on r; the bytes leave when r is at the head of the FIFO. Small
 * pieces share a buffer so that a small answer is one write.
 */
static int resp_put(struct resp *r, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    r->began = 1;
    struct obuf *b = r->q_tail;
    if (b == NULL || b->cap - b->len < len) {
        size_t cap = len + 64 > 4096 ? len + 64 : 4096;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return UV_ENOMEM;
        b->next = NULL;
        b->len = 0;
        b->cap = cap;
        if (r->q_tail != NULL)
            r->q_tail->next = b;
        else
            r->q_head = b;
        r->q_tail = b;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    r->c->queued += len;
    return 0;
}

/* Queues body bytes with the chunk framing the answer uses. */
static int resp_body(struct resp *r, const void *data, size_t len)
{
    if (r->head_only || len == 0)
        return 0;
    if (!r->chunked)
        return resp_put(r, data, len);
    char line[24];
    size_t n = cg_http_chunk_header(line, sizeof(line), len);
    int rc = resp_put(r, line, n);
    if (rc == 0)
        rc = resp_put(r, data, len);
    if (rc == 0)
        rc = resp_put(r, "\r\n", 2);
    return rc;
}

static int resp_body_end(struct resp *r)
{
    r->produced = 1;
    if (r->head_only || !r->chunked)
        return 0;
    return resp_put(r, "0\r\n\r\n", 5);
}

/*
 * Queues the status line and headers. length < 0: the body is streamed (chunked, or to
 * the close for HTTP/1.0, which also ends keep-alive).
 */
static int resp_head(struct resp *r, int status, const char *type, int64_t length)
{
    char h[512];
    if (length >= 0)
        r->chunked = 0; /* the body goes out as it is */
    else if (!r->chunked)
        r->keep_alive = 0;
    int n = snprintf(h, sizeof(h), "HTTP/1.1 %d %s\r\nServer: " PROG "\r\nContent-Type: %s\r\n",
                     status, cg_httpmsg_reason(status), type);
    if (length >= 0)
        n += snprintf(h + n, sizeof(h) - (size_t)n, "Content-Length: %" PRId64 "\r\n", length);
    else if (r->chunked)
        n += snprintf(h + n, sizeof(h) - (size_t)n, "Transfer-Encoding: chunked\r\n");
    if (!r->keep_alive)
        n += snprintf(h + n, sizeof(h) - (size_t)n, "Connection: close\r\n");
    else if (r->http10)
        n += snprintf(h + n, sizeof(h) - (size_t)n, "Connection: keep-alive\r\n");
    n += snprintf(h + n, sizeof(h) - (size_t)n, "\r\n");
    return resp_put(r, h, (size_t)n);
}

/* A whole answer with a known body. */
static int resp_full(struct resp *r, int status, const char *type, const char *body, size_t len)
{
    int rc = resp_head(r, status, type, (int64_t)len);
    if (rc == 0 && !r->head_only)
        rc = resp_put(r, body, len);
    r->produced = 1;
    return rc;
}

static int resp_json(struct resp *r, int status, json_t *j)
{
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s == NULL)
        return UV_ENOMEM;
    size_t len = strlen(s);
    int rc = resp_head(r, status, "application/json", (int64_t)len + 1);
    if (rc == 0 && !r->head_only)
        rc = resp_put(r, s, len);
    if (rc == 0 && !r->head_only)
        rc = resp_put(r, "\n", 1);
    r->produced = 1;
    free(s);
    return rc;
}

static int resp_error(struct resp *r, int status, const char *msg)
{
    return resp_json(r, status,
                     json_pack("{s:{s:s,s:s,s:i}}", "error", "message", msg, "type",
                               status >= 500 ? "server_error" : "invalid_request_error", "code",
                               status));
}

static const char filler[] =
    "This is a canned answer from the ccgate mock worker. It stands in for a language model so "
    "that the gateway can be measured and tested without one: the text has no meaning, only a "
    "size, which is close to a kilobyte once wrapped in the usual OpenAI fields. Lorem ipsum "
    "dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris "
    "nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in "
    "voluptate velit esse cillum dolore eu fugiat nulla pariatur.";

static int completion_answer(struct resp *r)
{
    int chat = r->route == R_CHAT;
    json_t *choice =
        chat ? json_pack("{s:i,s:{s:s,s:s},s:s}", "index", 0, "message", "role", "assistant",
                         "content", filler, "finish_reason", "stop")
             : json_pack("{s:i,s:s,s:s}", "index", 0, "text", filler, "finish_reason", "stop");
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:{s:i,s:i,s:i}}", "id",
                          chat ? "chatcmpl-mock" : "cmpl-mock", "object",
                          chat ? "chat.completion" : "text_completion", "created",
                          (json_int_t)time(NULL), "model", r->model, "choices", choice, "usage",
                          "prompt_tokens", 8, "completion_tokens", 128, "total_tokens", 136);
    return resp_json(r, 200, j);
}

/* Queues SSE event number r->events_sent (the last one says finish_reason "stop"). */
static int sse_event(struct resp *r)
{
    int chat = r->route == R_CHAT;
    int last = r->events_sent + 1 == r->events;
    char piece[32];
    snprintf(piece, sizeof(piece), "tok%u ", r->events_sent);
    json_t *choice = chat ? json_pack("{s:i,s:{s:s},s:o}", "index", 0, "delta", "content", piece,
                                      "finish_reason", last ? json_string("stop") : json_null())
                          : json_pack("{s:i,s:s,s:o}", "index", 0, "text", piece, "finish_reason",
                                      last ? json_string("stop") : json_null());
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:I}", "id", chat ? "chatcmpl-mock" : "cmpl-mock",
                          "object", chat ? "chat.completion.chunk" : "text_completion", "created",
                          (json_int_t)time(NULL), "model", r->model, "choices", choice, "t_us",
                          (json_int_t)now_realtime_us());
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s == NULL)
        return UV_ENOMEM;
    char ev[2048]; /* the model name is at most 63 bytes, 6 when escaped: this always fits */
    int n = snprintf(ev, sizeof(ev), "data: %s\n\n", s);
    free(s);
    if (n < 0 || (size_t)n >= sizeof(ev))
        return UV_ENOMEM;
    r->events_sent++;
    r->c->srv->stream_events++;
    int rc = resp_body(r, ev, (size_t)n);
    if (rc == 0 && r->events_sent == r->events) {
        rc = resp_body(r, "data: [DONE]\n\n", 14);
        if (rc == 0)
            rc = resp_body_end(r);
    }
    return rc;
}

static void on_timer(struct conn *c)
{
    struct resp *r = c->fifo_head;
    if (r == NULL)
        return;
    if (r->route == R_SLOW) {
        char body[64];
        int n = snprintf(body, sizeof(body), "{\"slept_ms\":%" PRIu64 "}\n", r->slow_ms);
        if (resp_full(r, 200, "application/json", body, (size_t)n) != 0)
            conn_close(c);
    } else if (r->stream && r->events_sent < r->events) {
        /* A client that does not read gets no more events until it does. */
        if (out_bytes(c) < HIGH_WATER && sse_event(r) != 0)
            conn_close(c);
        if (!r->produced && c->interval_ms > 0)
            cg_conn_timer(&c->conn, c->interval_ms);
    }
    if (!gone(c))
        pump(c);
}

/* Starts the answer now at the head of the FIFO: what can be said before any waiting. */
static int resp_start(struct resp *r)
{
    struct conn *c = r->c;
    r->started = 1;
    switch (r->route) {
    case R_SLOW:
        c->interval_ms = 0;
        cg_conn_timer(&c->conn, r->slow_ms);
        return 0;
    case R_CHAT:
    case R_COMPLETIONS:
        if (!r->stream)
            return 0;
        {
            int rc = resp_head(r, 200, "text/event-stream", -1);
            if (rc != 0 || r->head_only) {
                r->produced = 1;
                return rc;
            }
            rc = sse_event(r);
            if (rc == 0 && !r->produced && r->interval_ms > 0) {
                c->interval_ms = r->interval_ms;
                cg_conn_timer(&c->conn, r->interval_ms);
            }
            return rc;
        }
    default:
        return 0;
    }
}

/* Generates more of a long body while the connection's queue has room. */
static int resp_generate(struct resp *r)
{
    static char pattern[GEN_PIECE];
    struct conn *c = r->c;
    int rc = 0;
    if (r->stream && r->interval_ms == 0) {
        while (rc == 0 && !r->produced && out_bytes(c) < HIGH_WATER)
            rc = sse_event(r);
        return rc;
    }
    if (r->route != R_BYTES && r->route != R_CHUNKED && r->route != R_DIE)
        return 0;
    if (r->head_only) {
        r->produced = 1;
        return 0;
    }
    while (rc == 0 && r->gen_left > 0 && out_bytes(c) < HIGH_WATER) {
        size_t n = r->gen_left < GEN_PIECE ? (size_t)r->gen_left : GEN_PIECE;
        if (pattern[0] == '\0')
            memset(pattern, 'x', sizeof(pattern));
        rc = resp_body(r, pattern, n);
        r->gen_left -= n;
    }
    if (rc == 0 && r->gen_left == 0) {
        if (r->route == R_DIE) {
            r->produced = 1;
            r->abort_after = 1;
        } else {
            rc = resp_body_end(r);
        }
    }
    return rc;
}

static void fifo_push(struct conn *c, struct resp *r)
{
    if (c->fifo_tail != NULL)
        c->fifo_tail->next = r;
    else
        c->fifo_head = r;
    c->fifo_tail = r;
    c->n_pending++;
}

static void free_resp(struct resp *r)
{
    struct obuf *b = r->q_head;
    while (b != NULL) {
        struct obuf *next = b->next;
        free(b);
        b = next;
    }
    EVP_MD_CTX_free(r->sha);
    free(r->json);
    free(r);
}

/* Keeps reading (and dropping) until the client closes, so unread bytes cause no RST; the
 * timer ends the wait. */
static void maybe_linger(struct conn *c)
{
    if (!c->shutting || c->lingering || c->s.queued > 0)
        return;
    if (c->read_eof) {
        conn_close(c);
        return;
    }
    c->lingering = 1;
    c->interval_ms = 0;
    cg_conn_timer(&c->conn, LINGER_MS);
}

/* Closes gracefully once every queued byte is written. */
static void conn_finish(struct conn *c)
{
    if (c->shutting || gone(c))
        return;
    c->shutting = 1;
    c->input_done = 1;
    if (cg_stream_shutdown(&c->s) < 0) {
        conn_close(c);
        return;
    }
    maybe_linger(c);
}

static void maybe_resume_reading(struct conn *c);

/* Writes what can be written, in request order, and moves on to the next answer. */
static void pump(struct conn *c)
{
    while (!gone(c) && c->fifo_head != NULL) {
        struct resp *r = c->fifo_head;
        if (!r->started && (r->request_done || r->route == R_ECHO)) {
            if (resp_start(r) != 0) {
                conn_close(c);
                return;
            }
        }
        size_t before = c->queued;
        if (r->started && !r->produced && resp_generate(r) != 0) {
            conn_close(c);
            return;
        }
        int generated = c->queued > before;
        while (r->q_head != NULL) {
            struct obuf *b = r->q_head;
            r->q_head = b->next;
            if (r->q_head == NULL)
                r->q_tail = NULL;
            int rc = cg_stream_write(&c->s, b->data, b->len);
            c->queued -= b->len;
            free(b);
            if (rc < 0) {
                conn_close(c);
                return;
            }
        }
        if (!r->produced) {
            /* The kernel took everything: no on_drain will come, so generate more now. */
            if (generated && c->s.queued == 0)
                continue;
            break;
        }
        if (r->abort_after) {
            /* /die: the promised length never comes; close as soon as the bytes are out. */
            c->input_done = 1;
            if (out_bytes(c) == 0)
                conn_close(c);
            return;
        }
        if (!r->request_done)
            break; /* an early answer: the request body is still coming */
        int keep = r->keep_alive && !c->srv->stopping;
        c->fifo_head = r->next;
        if (c->fifo_head == NULL)
            c->fifo_tail = NULL;
        c->n_pending--;
        if (c->cur == r)
            c->cur = NULL;
        free_resp(r);
        if (!keep) {
            conn_finish(c);
            return;
        }
    }
    if (gone(c))
        return;
    if (c->fifo_head == NULL && c->input_done && !c->shutting)
        conn_finish(c);
    else
        maybe_resume_reading(c);
}

static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* Finds name=value in a query string; returns 1 with the value's span, 0 when absent. */
static int query_get(const char *query, const char *name, const char **val, size_t *len)
{
    size_t nlen = strlen(name);
    const char *p = query;
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        size_t plen = end != NULL ? (size_t)(end - p) : strlen(p);
        if (plen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            *val = p + nlen + 1;
            *len = plen - nlen - 1;
            return 1;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

/* A numeric query parameter: def when absent, -1 when malformed or above max. */
static int query_u64(const char *query, const char *name, uint64_t def, uint64_t max, uint64_t *out)
{
    const char *v;
    size_t len;
    if (query == NULL || !query_get(query, name, &v, &len)) {
        *out = def;
        return 0;
    }
    return parse_u64(v, len, max, out);
}

static void set_error(struct resp *r, int status, const char *msg)
{
    r->route = R_ERROR;
    r->err_status = status;
    snprintf(r->err_msg, sizeof(r->err_msg), "%s", msg);
}

static const struct {
    const char *path; /* a trailing '/' takes a number after it */
    enum route route;
    int post; /* else GET (or HEAD) */
} routes[] = {
    {"/", R_ROOT, 0},
    {"/health", R_HEALTH, 0},
    {"/v1/models", R_MODELS, 0},
    {"/stats", R_STATS, 0},
    {"/bytes/", R_BYTES, 0},
    {"/chunked/", R_CHUNKED, 0},
    {"/slow", R_SLOW, 0},
    {"/die", R_DIE, 0},
    {"/echo", R_ECHO, 1},
    {"/upload", R_UPLOAD, 1},
    {"/v1/chat/completions", R_CHAT, 1},
    {"/v1/completions", R_COMPLETIONS, 1},
};

/* Chooses the route from the method and target; bad parameters become R_ERROR. */
static void route_request(struct resp *r, const struct cg_http_head *h)
{
    const char *target = h->target;
    const char *q = strchr(target, '?');
    size_t plen = q != NULL ? (size_t)(q - target) : strlen(target);
    const char *query = q != NULL ? q + 1 : NULL;
    size_t i, n = 0;

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        n = strlen(routes[i].path);
        int prefix = n > 1 && routes[i].path[n - 1] == '/';
        if (strncmp(target, routes[i].path, n) == 0 && (prefix ? plen > n : plen == n))
            break;
    }
    if (i == sizeof(routes) / sizeof(routes[0])) {
        set_error(r, 404, "no such route");
        return;
    }
    int post = strcmp(h->method, "POST") == 0;
    int get = strcmp(h->method, "GET") == 0 || strcmp(h->method, "HEAD") == 0;
    if (routes[i].post ? !post : !get) {
        set_error(r, 405, routes[i].post ? "use POST" : "use GET");
        return;
    }
    r->route = routes[i].route;

    uint64_t ev = 0, iv = 0;
    switch (r->route) {
    case R_BYTES:
    case R_CHUNKED:
        if (parse_u64(target + n, plen - n, MAX_GEN_BYTES, &r->gen_left) != 0)
            set_error(r, 400, "N must be a number of bytes up to 2^40");
        break;
    case R_SLOW:
        if (query_u64(query, "ms", 100, MAX_SLOW_MS, &r->slow_ms) != 0)
            set_error(r, 400, "ms must be a number of milliseconds up to 600000");
        break;
    case R_DIE:
        if (query_u64(query, "after", 0, MAX_GEN_BYTES, &r->gen_left) != 0)
            set_error(r, 400, "after must be a number of bytes up to 2^40");
        break;
    case R_CHAT:
    case R_COMPLETIONS:
        if (query_u64(query, "events", DEFAULT_EVENTS, MAX_EVENTS, &ev) != 0 || ev == 0 ||
            query_u64(query, "interval_ms", DEFAULT_INTERVAL_MS, MAX_INTERVAL_MS, &iv) != 0) {
            set_error(r, 400, "events must be 1..100000 and interval_ms 0..60000");
            break;
        }
        r->events = (unsigned)ev;
        r->interval_ms = (unsigned)iv;
        break;
    default:
        break;
    }
}

static int on_head(void *arg, const struct cg_http_head *h)
{
    struct conn *c = arg;
    struct server *s = c->srv;
    if (gone(c) || c->input_done)
        return UV_ECANCELED; /* a request after the last one we answer: not an error */
    struct resp *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return UV_ENOMEM;
    r->c = c;
    r->http10 = h->version_minor == 0;
    r->chunked = !r->http10;
    r->keep_alive = h->keep_alive && !h->upgrade && !s->stopping;
    r->head_only = strcmp(h->method, "HEAD") == 0;
    snprintf(r->model, sizeof(r->model), "mock");
    route_request(r, h);
    if (r->route == R_STATS)
        s->stats_requests++;
    else
        s->requests++;
    if (r->route == R_UPLOAD) {
        r->sha = EVP_MD_CTX_new();
        if (r->sha == NULL || EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL) != 1) {
            free_resp(r);
            return UV_ENOMEM;
        }
    }
    fifo_push(c, r);
    c->cur = r;
    int rc = 0;
    if (h->expect_continue && !r->http10) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        rc = resp_put(r, cont, sizeof(cont) - 1);
    }
    if (rc == 0 && r->route == R_ECHO)
        rc = resp_head(r, 200, "application/octet-stream", -1);
    if (!r->keep_alive)
        c->input_done = 1; /* llhttp ignores anything after this request anyway */
    return rc;
}

static int on_body(void *arg, const uint8_t *data, size_t len)
{
    struct conn *c = arg;
    struct resp *r = c->cur;
    c->srv->body_bytes += len;
    if (r == NULL)
        return 0;
    r->body_bytes += len;
    switch (r->route) {
    case R_ECHO: {
        int rc = resp_body(r, data, len);
        if (rc == 0 && c->fifo_head == r)
            pump(c);
        return rc;
    }
    case R_UPLOAD:
        return EVP_DigestUpdate(r->sha, data, len) == 1 ? 0 : CG_ECRYPTO;
    case R_CHAT:
    case R_COMPLETIONS:
        if (r->json_too_big || len > JSON_BODY_MAX - r->json_len) {
            r->json_too_big = 1;
            return 0;
        }
        {
            char *nj = realloc(r->json, r->json_len + len);
            if (nj == NULL)
                return UV_ENOMEM;
            r->json = nj;
            memcpy(r->json + r->json_len, data, len);
            r->json_len += len;
        }
        return 0;
    default:
        return 0; /* read and dropped */
    }
}

/* Reads the completion request's options; a bad body becomes an error answer. */
static void completion_options(struct resp *r)
{
    if (r->json_too_big) {
        set_error(r, 413, "request body over 1 MiB");
        return;
    }
    if (r->json_len == 0)
        return;
    json_error_t jerr;
    json_t *j = json_loadb(r->json, r->json_len, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        set_error(r, 400, "body is not a JSON object");
        return;
    }
    json_t *v = json_object_get(j, "stream");
    r->stream = json_is_true(v);
    v = json_object_get(j, "model");
    if (json_is_string(v)) {
        /* Echoed back, cut to fit, and never in the middle of a UTF-8 sequence. */
        size_t n = json_string_length(v);
        if (n >= sizeof(r->model)) {
            n = sizeof(r->model) - 1;
            while (n > 0 && ((unsigned char)json_string_value(v)[n] & 0xC0) == 0x80)
                n--;
        }
        memcpy(r->model, json_string_value(v), n);
        r->model[n] = '\0';
    }
    v = json_object_get(j, "events");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_EVENTS)
            set_error(r, 400, "events must be an integer 1..100000");
        else
            r->events = (unsigned)json_integer_value(v);
    }
    v = json_object_get(j, "interval_ms");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > MAX_INTERVAL_MS)
            set_error(r, 400, "interval_ms must be an integer 0..60000");
        else
            r->interval_ms = (unsigned)json_integer_value(v);
    }
    json_decref(j);
}

static int stats_answer(struct resp *r)
{
    struct server *s = r->c->srv;
    return resp_json(r, 200,
                     json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "requests",
                               (json_int_t)s->requests, "connections", (json_int_t)s->connections,
                               "active_connections", (json_int_t)s->active, "stats_requests",
                               (json_int_t)s->stats_requests, "bad_requests",
                               (json_int_t)s->bad_requests, "body_bytes", (json_int_t)s->body_bytes,
                               "stream_events", (json_int_t)s->stream_events, "streams_cancelled",
                               (json_int_t)s->streams_cancelled));
}

static int on_complete(void *arg)
{
    struct conn *c = arg;
    struct resp *r = c->cur;
    int rc = 0;
    if (r == NULL)
        return 0;
    r->request_done = 1;
    c->cur = NULL;
    if (r->route == R_CHAT || r->route == R_COMPLETIONS)
        completion_options(r);
    switch (r->route) {
    case R_ROOT: {
        static const char body[] = "ccgate mock worker\n";
        rc = resp_full(r, 200, "text/plain", body, sizeof(body) - 1);
        break;
    }
    case R_HEALTH:
        rc = resp_json(r, 200, json_pack("{s:s}", "status", "ok"));
        break;
    case R_MODELS:
        rc = resp_json(r, 200,
                       json_pack("{s:s,s:[{s:s,s:s,s:i,s:s}]}", "object", "list", "data", "id",
                                 "mock", "object", "model", "created", 0, "owned_by", "ccgate"));
        break;
    case R_STATS:
        rc = stats_answer(r);
        break;
    case R_BYTES:
    case R_DIE:
        rc = resp_head(r, 200, "application/octet-stream",
                       (int64_t)(r->route == R_DIE ? r->gen_left + 1024 : r->gen_left));
        break;
    case R_CHUNKED:
        rc = resp_head(r, 200, "application/octet-stream", -1);
        break;
    case R_ECHO:
        rc = resp_body_end(r);
        break;
    case R_UPLOAD: {
        uint8_t md[32];
        unsigned mdlen = 0;
        char hex[65];
        if (EVP_DigestFinal_ex(r->sha, md, &mdlen) != 1)
            return CG_ECRYPTO;
        cg_hex(hex, sizeof(hex), md, mdlen);
        rc = resp_json(r, 200,
                       json_pack("{s:I,s:s}", "bytes", (json_int_t)r->body_bytes, "sha256", hex));
        break;
    }
    case R_CHAT:
    case R_COMPLETIONS:
        if (!r->stream)
            rc = completion_answer(r);
        break;
    case R_SLOW:
        break;
    case R_ERROR:
        rc = resp_error(r, r->err_status, r->err_msg);
        break;
    }
    return rc;
}

static const struct cg_http_callbacks http_cb = {on_head, on_body, on_complete};

static void maybe_resume_reading(struct conn *c)
{
    if (c->read_paused && !c->input_done && out_bytes(c) < LOW_WATER &&
        c->n_pending < MAX_PIPELINE / 2) {
        c->read_paused = 0;
        if (cg_stream_read_start(&c->s) != 0)
            conn_close(c);
    }
}

/* Answers a request we could not parse, after whatever is already queued, then closes. */
static void answer_bad_request(struct conn *c, int status, const char *reason)
{
    struct resp *r = c->cur;
    c->srv->bad_requests++;
    c->cur = NULL;
    if (r != NULL && r->began) {
        /* Its answer is under way (echo): cut it short; the client sees a truncated body. */
        r->started = r->produced = r->request_done = 1;
        r->keep_alive = 0;
        return;
    }
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
            conn_close(c);
            return;
        }
        r->c = c;
        r->chunked = 1;
        fifo_push(c, r);
    }
    set_error(r, status, reason);
    r->head_only = 0;
    r->keep_alive = 0;
    r->request_done = 1;
    if (resp_error(r, status, reason) != 0)
        conn_close(c);
}

/* After input: stop reading while much is queued, and write what can be written. */
static void after_input(struct conn *c)
{
    if (gone(c))
        return;
    if ((out_bytes(c) >= HIGH_WATER || c->n_pending >= MAX_PIPELINE) && !c->read_paused) {
        c->read_paused = 1;
        cg_stream_read_stop(&c->s);
    }
    pump(c);
}

static void s_on_read(struct cg_stream *st, const uint8_t *data, size_t len)
{
    struct conn *c = st->data;
    if (!c->input_done) {
        long n = cg_http_parser_feed(c->parser, data, len);
        if (n < 0) {
            c->input_done = 1;
            if (!gone(c) && n != UV_ECANCELED) {
                int status = cg_http_parser_status(c->parser);
                answer_bad_request(c, status != 0 ? status : 400, cg_http_parser_reason(c->parser));
            }
        } else if ((size_t)n < len) {
            c->input_done = 1; /* upgraded: we speak no other protocol */
        }
    }
    after_input(c);
}

static void s_on_eof(struct cg_stream *st)
{
    struct conn *c = st->data;
    c->read_eof = 1;
    if (c->shutting) {
        conn_close(c);
        return;
    }
    if (cg_http_parser_finish(c->parser) != 0)
        c->srv->bad_requests++;
    c->input_done = 1;
    if (c->cur != NULL) {
        /* Half a request and then EOF: nothing more to answer it with. */
        struct resp *r = c->cur;
        r->started = r->produced = r->request_done = 1;
        r->keep_alive = 0;
        c->cur = NULL;
    }
    after_input(c);
}

static void s_on_error(struct cg_stream *st, int err)
{
    struct conn *c = st->data;
    cg_conn_close(&c->conn, err, "error");
}

static void s_on_drain(struct cg_stream *st)
{
    struct conn *c = st->data;
    pump(c);
    if (!gone(c))
        maybe_linger(c);
}

static const struct cg_stream_callbacks stream_cb = {
    .on_read = s_on_read, .on_eof = s_on_eof, .on_error = s_on_error, .on_drain = s_on_drain};

/* ---- the connection core's callbacks ---- */

static void on_accept(struct cg_conns *set, uv_stream_t *listener)
{
    struct server *s = set->data;
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        cg_log_error("accept", "err=\"out of memory\"");
        return;
    }
    cg_conn_init(&c->conn, set, c);
    c->srv = s;
    s->connections++;
    s->active++;
    if (cg_conn_accept(&c->conn, &c->s, listener, &stream_cb) != 0 ||
        cg_http_parser_new(CG_HTTP_REQUEST, NULL, &http_cb, c, &c->parser) != 0 ||
        cg_stream_read_start(&c->s) != 0)
        conn_close(c);
}

static void on_timeout(struct cg_conn *conn)
{
    struct conn *c = conn->data;
    if (c->lingering)
        conn_close(c);
    else
        on_timer(c);
}

/* Stopping: idle connections go now; busy ones after their answers (see keep in pump). */
static void on_stop(struct cg_conn *conn)
{
    struct conn *c = conn->data;
    if (c->fifo_head == NULL && !cg_http_parser_in_message(c->parser))
        cg_conn_close(conn, 0, "shutdown");
    else
        c->input_done = 1;
}

static void on_close(struct cg_conn *conn)
{
    struct conn *c = conn->data;
    c->srv->active--;
    for (struct resp *r = c->fifo_head; r != NULL; r = r->next)
        if (r->stream && r->events_sent < r->events)
            c->srv->streams_cancelled++; /* its timer stops with the connection: no more events */
}

static void on_free(struct cg_conn *conn)
{
    struct conn *c = conn->data;
    while (c->fifo_head != NULL) {
        struct resp *r = c->fifo_head;
        c->fifo_head = r->next;
        free_resp(r);
    }
    cg_http_parser_free(c->parser);
    free(c);
}

static void on_stopped(struct cg_conns *set)
{
    struct server *s = set->data;
    if (s->is_unix)
        (void)unlink(s->unix_path);
    cg_signals_close(&s->sig);
}

static const struct cg_conn_ops conn_ops = {
    .on_accept = on_accept,
    .on_timeout = on_timeout,
    .on_drain = on_stop,
    .on_close = on_close,
    .on_free = on_free,
    .on_stopped = on_stopped,
};

static void on_signal_drain(struct cg_signals *sg, int signum)
{
    struct server *s = sg->data;
    (void)signum;
    s->stopping = 1;
    cg_conns_drain(&s->set);
}

static void on_signal_deadline(struct cg_signals *sg)
{
    struct server *s = sg->data;
    cg_conns_abort(&s->set, "stop_grace");
}

/* Listens on a (common's address parser: HOST:PORT, [V6]:PORT or unix:PATH) and prints
 * the address bound, which tells a caller that asked for port 0 which one it got. */
static int listen_on(struct server *s, const struct cg_addr *a)
{
    char shown[160];
    if (a->is_unix) {
        snprintf(s->unix_path, sizeof(s->unix_path), "%s", a->path);
        struct stat st;
        /* A socket left behind by an earlier run; anything else is not ours to delete. */
        if (lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode))
            (void)unlink(a->path);
        snprintf(shown, sizeof(shown), "unix:%s", a->path);
    }
    int rc = cg_conns_listen(&s->set, a, 511);
    if (rc == 0 && !a->is_unix) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        rc = uv_tcp_getsockname(&s->set.listener.tcp, (struct sockaddr *)&ss, &len);
        if (rc == 0)
            rc = cg_addr_format((struct sockaddr *)&ss, shown, sizeof(shown));
    }
    if (rc != 0) {
        fprintf(stderr, PROG ": cannot listen on %s: %s\n", a->text, uv_strerror(rc));
        return rc;
    }
    s->is_unix = a->is_unix; /* ours to remove at the end */
    fprintf(stderr, "listening on %s\n", shown);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: " PROG " [--listen ADDR]\n"
           "  --listen ADDR  127.0.0.1:PORT, [::1]:PORT or unix:PATH (default 127.0.0.1:8000;\n"
           "                 port 0 picks a free port; the address is printed on stderr as\n"
           "                 \"listening on ADDR\" once ready)\n"
           "  --help, --version\n"
           "routes:\n"
           "  GET  /, /health, /v1/models        small answers\n"
           "  GET  /bytes/N, /chunked/N          N bytes, with Content-Length or chunked\n"
           "  POST /echo                         the body back, streamed, chunked\n"
           "  POST /upload                       {\"bytes\": n, \"sha256\": hex} of the body\n"
           "  POST /v1/chat/completions, /v1/completions\n"
           "                                     OpenAI-shaped answer; \"stream\": true gives SSE\n"
           "                                     events (?events=N&interval_ms=M or JSON fields\n"
           "                                     \"events\", \"interval_ms\"), each with \"t_us\"\n"
           "  GET  /slow?ms=N                    answers after N ms\n"
           "  GET  /die?after=N                  promises more than N bytes, sends N, closes\n"
           "  GET  /stats                        requests and connections seen (JSON)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *addr = "127.0.0.1:8000";
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'l':
            addr = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf(PROG " %s\n", CCGATE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    cg_log_init(PROG, CG_LOG_TEXT, CG_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);

    static struct server srv;
    srv.loop = uv_default_loop();
    struct cg_addr a;
    char err[256];
    if (cg_addr_parse(addr, CG_ADDR_UNIX | CG_ADDR_PORT0, &a, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": bad --listen '%s': %s\n", addr, err);
        return 2;
    }
    if (cg_conns_init(&srv.set, srv.loop, &conn_ops, &srv) != 0)
        return 1;
    srv.set.name = "mock";
    /* Signals first: whoever reads "listening on" may stop us right away. */
    srv.sig.data = &srv;
    srv.sig.on_drain = on_signal_drain;
    srv.sig.on_deadline = on_signal_deadline;
    srv.sig.drain_ms = STOP_GRACE_MS;
    if (cg_signals_start(&srv.sig, srv.loop) != 0 || listen_on(&srv, &a) != 0) {
        cg_signals_close(&srv.sig);
        cg_conns_drain(&srv.set);
        (void)uv_run(srv.loop, UV_RUN_DEFAULT);
        return 1;
    }

    uv_run(srv.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(srv.loop);
    if (rc != 0)
        cg_log_warn("loop_close", "err=%s", uv_strerror(rc));
    return 0;
}
