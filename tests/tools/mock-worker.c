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

#include "ccgate/err.h"
#include "ccgate/http.h"
#include "ccgate/log.h"

#define PROG "ccgate-mock-worker"
#define READ_SIZE (64u * 1024u)
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

/* One piece of output; the write request lives inside it until the write callback. */
struct obuf {
    uv_write_t req;
    struct obuf *next;
    struct conn *c;
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
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_timer_t timer; /* the head answer's delay or interval, or the linger before close */
    struct server *srv;
    struct conn *prev, *next;
    struct cg_http_parser *parser;
    struct resp *fifo_head, *fifo_tail;
    struct resp *cur; /* the answer to the request being read */
    size_t queued;    /* bytes in answer queues and in flight */
    size_t n_pending; /* answers in the FIFO */
    int read_paused;
    int input_done; /* no more requests: close, upgrade, parse error, EOF */
    int read_eof;
    int closing;
    int shutting;
    int closed_handles;
};

struct server {
    uv_loop_t *loop;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } listener;
    int is_unix;
    char unix_path[108];
    uv_signal_t sigterm, sigint;
    uv_timer_t grace;
    int stopping;
    struct conn *conns;
    /* /stats */
    uint64_t requests, connections, active, stats_requests, bad_requests, body_bytes;
    uint64_t stream_events;     /* SSE events generated */
    uint64_t streams_cancelled; /* SSE streams whose connection closed before the last event */
};

static void conn_close(struct conn *c);
static void pump(struct conn *c);

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
        b->c = r->c;
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

static const char *reason_of(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
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
                     status, reason_of(status), type);
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

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    struct resp *r = c->fifo_head;
    if (r == NULL || c->closing)
        return;
    if (r->route == R_SLOW) {
        char body[64];
        int n = snprintf(body, sizeof(body), "{\"slept_ms\":%" PRIu64 "}\n", r->slow_ms);
        if (resp_full(r, 200, "application/json", body, (size_t)n) != 0)
            conn_close(c);
    } else if (r->stream && r->events_sent < r->events) {
        /* A client that does not read gets no more events until it does. */
        if (c->queued < HIGH_WATER && sse_event(r) != 0)
            conn_close(c);
        if (r->produced)
            uv_timer_stop(&c->timer);
    }
    if (!c->closing)
        pump(c);
}

/* Starts the answer now at the head of the FIFO: what can be said before any waiting. */
static int resp_start(struct resp *r)
{
    struct conn *c = r->c;
    r->started = 1;
    switch (r->route) {
    case R_SLOW:
        return uv_timer_start(&c->timer, on_timer, r->slow_ms, 0);
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
            if (rc == 0 && !r->produced && r->interval_ms > 0)
                rc = uv_timer_start(&c->timer, on_timer, r->interval_ms, r->interval_ms);
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
        while (rc == 0 && !r->produced && c->queued < HIGH_WATER)
            rc = sse_event(r);
        return rc;
    }
    if (r->route != R_BYTES && r->route != R_CHUNKED && r->route != R_DIE)
        return 0;
    if (r->head_only) {
        r->produced = 1;
        return 0;
    }
    while (rc == 0 && r->gen_left > 0 && c->queued < HIGH_WATER) {
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

static void on_write(uv_write_t *req, int status)
{
    struct obuf *b = (struct obuf *)req;
    struct conn *c = b->c;
    c->queued -= b->len;
    free(b);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    pump(c);
}

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (++c->closed_handles < 2)
        return;
    while (c->fifo_head != NULL) {
        struct resp *r = c->fifo_head;
        c->fifo_head = r->next;
        free_resp(r);
    }
    cg_http_parser_free(c->parser);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    struct server *s = c->srv;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->active--;
    for (struct resp *r = c->fifo_head; r != NULL; r = r->next)
        if (r->stream && r->events_sent < r->events)
            s->streams_cancelled++; /* and its timer stops here: no more events */
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
    uv_close(&c->h.handle, on_closed);
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* Keep reading (and dropping) until the client closes, so unread bytes cause no RST. */
    if (c->read_eof || uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0) != 0)
        conn_close(c);
}

/* Closes gracefully once every queued byte is written. */
static void conn_finish(struct conn *c)
{
    if (c->shutting || c->closing)
        return;
    c->shutting = 1;
    c->input_done = 1;
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req == NULL) {
        conn_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, &c->h.stream, on_shutdown) != 0) {
        free(req);
        conn_close(c);
    }
}

static void maybe_resume_reading(struct conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* Writes what can be written, in request order, and moves on to the next answer. */
static void pump(struct conn *c)
{
    while (!c->closing && c->fifo_head != NULL) {
        struct resp *r = c->fifo_head;
        if (!r->started && (r->request_done || r->route == R_ECHO)) {
            if (resp_start(r) != 0) {
                conn_close(c);
                return;
            }
        }
        if (r->started && !r->produced && resp_generate(r) != 0) {
            conn_close(c);
            return;
        }
        while (r->q_head != NULL) {
            struct obuf *b = r->q_head;
            r->q_head = b->next;
            if (r->q_head == NULL)
                r->q_tail = NULL;
            b->next = NULL;
            uv_buf_t buf = uv_buf_init(b->data, (unsigned)b->len);
            if (uv_write(&b->req, &c->h.stream, &buf, 1, on_write) != 0) {
                c->queued -= b->len;
                free(b);
                conn_close(c);
                return;
            }
        }
        if (!r->produced)
            break;
        if (r->abort_after) {
            /* /die: the promised length never comes; close as soon as the bytes are out. */
            c->input_done = 1;
            if (c->queued == 0)
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
    if (c->closing)
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
    if (c->closing || c->input_done)
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
    if (c->read_paused && !c->input_done && c->queued < LOW_WATER &&
        c->n_pending < MAX_PIPELINE / 2) {
        c->read_paused = 0;
        if (uv_read_start(&c->h.stream, on_alloc, on_read) != 0)
            conn_close(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(READ_SIZE);
    buf->len = buf->base != NULL ? READ_SIZE : 0;
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

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    if (nread > 0 && !c->closing && !c->input_done) {
        long n = cg_http_parser_feed(c->parser, (const uint8_t *)buf->base, (size_t)nread);
        if (n < 0) {
            c->input_done = 1;
            if (!c->closing && n != UV_ECANCELED) {
                int st = cg_http_parser_status(c->parser);
                answer_bad_request(c, st != 0 ? st : 400, cg_http_parser_reason(c->parser));
            }
        } else if (n < nread) {
            c->input_done = 1; /* upgraded: we speak no other protocol */
        }
    } else if (nread < 0 && !c->closing) {
        c->read_eof = 1;
        if (nread != UV_EOF || c->shutting) {
            conn_close(c);
        } else {
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
        }
    }
    free(buf->base);
    if (c->closing)
        return;
    if ((c->queued >= HIGH_WATER || c->n_pending >= MAX_PIPELINE) && !c->read_paused) {
        c->read_paused = 1;
        uv_read_stop(&c->h.stream);
    }
    pump(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *s = listener->data;
    if (status < 0 || s->stopping)
        return;
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->srv = s;
    int rc = s->is_unix ? uv_pipe_init(s->loop, &c->h.pipe, 0) : uv_tcp_init(s->loop, &c->h.tcp);
    if (rc != 0) {
        free(c);
        return;
    }
    c->h.handle.data = c;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    s->connections++;
    s->active++;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(listener, &c->h.stream) != 0 ||
        cg_http_parser_new(CG_HTTP_REQUEST, NULL, &http_cb, c, &c->parser) != 0 ||
        uv_read_start(&c->h.stream, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    if (!s->is_unix)
        (void)uv_tcp_nodelay(&c->h.tcp, 1);
}

static void on_grace_timeout(uv_timer_t *t)
{
    struct server *s = t->data;
    while (s->conns != NULL)
        conn_close(s->conns);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct server *s = h->data;
    if (s->is_unix)
        (void)unlink(s->unix_path);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct server *s = sig->data;
    (void)signum;
    if (s->stopping)
        return;
    s->stopping = 1;
    uv_close(&s->listener.handle, on_listener_closed);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    /* Idle connections go now; busy ones after their answers (see keep in pump). */
    struct conn *c = s->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        if (c->fifo_head == NULL && !cg_http_parser_in_message(c->parser))
            conn_close(c);
        else
            c->input_done = 1;
        c = next;
    }
    uv_timer_start(&s->grace, on_grace_timeout, STOP_GRACE_MS, 0);
    uv_unref((uv_handle_t *)&s->grace);
}

/* "HOST:PORT", "[V6]:PORT" or "unix:PATH" → a bound, listening handle; prints its address. */
static int listen_on(struct server *s, const char *addr)
{
    char shown[160];
    int rc;
    if (strncmp(addr, "unix:", 5) == 0) {
        const char *path = addr + 5;
        if (path[0] == '\0' || strlen(path) >= sizeof(s->unix_path))
            return CG_ECONFIG;
        snprintf(s->unix_path, sizeof(s->unix_path), "%s", path);
        s->is_unix = 1;
        struct stat st;
        /* A socket left behind by an earlier run; anything else is not ours to delete. */
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            (void)unlink(path);
        rc = uv_pipe_init(s->loop, &s->listener.pipe, 0);
        if (rc == 0)
            rc = uv_pipe_bind(&s->listener.pipe, path);
        snprintf(shown, sizeof(shown), "unix:%s", path);
    } else {
        char host[64];
        const char *colon = strrchr(addr, ':');
        uint64_t port;
        if (colon == NULL || parse_u64(colon + 1, strlen(colon + 1), 65535, &port) != 0)
            return CG_ECONFIG;
        size_t hlen = (size_t)(colon - addr);
        const char *h = addr;
        if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
            h++;
            hlen -= 2;
        }
        if (hlen == 0 || hlen >= sizeof(host))
            return CG_ECONFIG;
        memcpy(host, h, hlen);
        host[hlen] = '\0';
        struct sockaddr_storage ss;
        if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) != 0 &&
            uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) != 0)
            return CG_ECONFIG;
        rc = uv_tcp_init(s->loop, &s->listener.tcp);
        if (rc == 0)
            rc = uv_tcp_bind(&s->listener.tcp, (struct sockaddr *)&ss, 0);
        int len = sizeof(ss);
        if (rc == 0)
            rc = uv_tcp_getsockname(&s->listener.tcp, (struct sockaddr *)&ss, &len);
        char ip[64] = "";
        if (rc == 0 && ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            snprintf(shown, sizeof(shown), "[%s]:%d", ip,
                     ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
        } else if (rc == 0) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            snprintf(shown, sizeof(shown), "%s:%d", ip,
                     ntohs(((struct sockaddr_in *)&ss)->sin_port));
        }
    }
    s->listener.handle.data = s;
    if (rc == 0)
        rc = uv_listen(&s->listener.stream, 511, on_connection);
    if (rc != 0) {
        fprintf(stderr, PROG ": cannot listen on %s: %s\n", addr, uv_strerror(rc));
        return rc;
    }
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
    /* Signals first: whoever reads "listening on" may stop us right away. */
    uv_signal_init(srv.loop, &srv.sigterm);
    uv_signal_init(srv.loop, &srv.sigint);
    srv.sigterm.data = srv.sigint.data = &srv;
    uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv.sigint, on_signal, SIGINT);
    uv_timer_init(srv.loop, &srv.grace);
    srv.grace.data = &srv;
    uv_unref((uv_handle_t *)&srv.grace);
    int rc = listen_on(&srv, addr);
    if (rc == CG_ECONFIG) {
        fprintf(stderr, PROG ": bad --listen '%s': want HOST:PORT, [V6]:PORT or unix:PATH\n", addr);
        return 2;
    }
    if (rc != 0)
        return 1;

    uv_run(srv.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&srv.grace, NULL);
    uv_run(srv.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(srv.loop);
    if (rc != 0)
        cg_log_warn("loop_close", "err=%s", uv_strerror(rc));
    return 0;
}
