#include "sp_proxy.h"

#include <stdlib.h>
#include <string.h>

#include "ccgate/buf.h"
#include "ccgate/http.h"
#include "ccgate/httpmsg.h"
#include "ccgate/log.h"
#include "ccgate/stream.h"
#include "ccgate/token.h"

#define TRACK_MAX 64         /* pipelined requests followed; more turns tracking off */
#define LINGER_MS 5000       /* after a 502 or a graceful end: wait this long for the client */
#define STOP_GRACE_MS 1000   /* stopping: how long an idle connection still takes a request */
#define HELD_MAX (64 * 1024) /* stopping: most bytes of a response head held to annotate */
#define EARLY_MAX (CG_STREAM_HIGH_WATER + 64 * 1024)
#define HEAD_MAX (1024 * 1024) /* request and response heads followed (and held) up to this */
#define PENDING_MAX (CG_STREAM_HIGH_WATER + 64 * 1024) /* client bytes read while blocked */
#define LOG_PATH_MAX 1024                              /* access log: longest path logged */
#define LOG_ID_MAX 128                                 /* access log: longest x-request-id logged */
#define FWD_IOVS 8

/* What the connection's one timer means now. */
enum sp_phase {
    PH_HANDSHAKE,  /* the client's TLS handshake */
    PH_CONNECTING, /* connecting to the upstream */
    PH_RELAY,      /* relaying; the timer is the idle timeout */
    PH_GRACE,      /* stopping, idle: a request may still arrive */
    PH_LINGER,     /* a 502 sent or close_notify sent: waiting for the client to close */
};

/* Where the request side stands (fed message by message: access control or access log). */
enum sp_rq {
    RQ_IDLE,   /* between requests */
    RQ_HEAD,   /* a head began; access control holds its bytes */
    RQ_PASS,   /* the head was forwarded: the rest of the message follows it */
    RQ_DROP,   /* refused (401): the rest of the message is read and dropped */
    RQ_CLOSED, /* refused without a way to go on: input ignored until the connection ends */
};

/* Access log: what a request's line needs until its response completes. */
struct sp_reqlog {
    uint64_t seq;
    uint64_t t0, t_head; /* uv_hrtime() at its head and at the response head (0: none) */
    uint64_t bytes_in;
    const char *method, *path, *request_id, *token; /* in text; request_id, token may be NULL */
    char text[];
};

struct sp_conn {
    struct cg_conn conn;
    struct sp_server *srv;
    struct cg_stream down; /* RA-TLS towards the client sidecar: legs[0] */
    struct cg_stream up;   /* plain towards the upstream: legs[1] once initialized */
    struct sp_waiter waiter;
    struct cg_buf early; /* client bytes that arrived before the upstream connected */
    /* HTTP mode: the bytes pass untouched, but parsers follow the message boundaries so that
     * a stop can end a connection between messages (the client pools them). */
    struct cg_http_parser *reqp, *respp;
    uint8_t is_head[TRACK_MAX]; /* per request awaiting its response: was it HEAD */
    uint32_t t0_us[TRACK_MAX];  /* ... and when its head arrived (low 32 bits of µs) */
    struct sp_reqlog **logs;    /* access log: TRACK_MAX slots, one per request awaiting */
    struct sp_reqlog *cur;      /* access log: the request being received */
    struct sp_reqlog *done;     /* access log: the request whose response just completed */
    struct sp_reqlog *rej_log;  /* access log: the refused request (its 401 not sent yet) */
    size_t track_head, track_len;
    uint64_t req_seq;
    uint64_t req_bytes, resp_bytes; /* bytes of the message being received, each way */
    uint64_t acct_in, acct_out;     /* the client leg's bytes already in the server's counters */
    enum sp_rq rq;
    struct cg_buf hold;                /* access control: a request head held until complete */
    struct cg_buf pending;             /* client bytes read while the request side is blocked */
    enum cg_token_fail refused;        /* why the request in RQ_DROP (or its waiting 401) was */
    const struct cg_http_header *auth; /* during on_head: the Authorization header */
    int tracking; /* boundaries known; 0 after an upgrade, a parse error or an overflow */
    int resp_status;
    struct cg_buf held; /* stopping: a response head held until complete (Connection: close) */
    size_t held_scan;   /* where the search for the head's end resumes */
    enum sp_phase phase;
    unsigned up_inited : 1, up_connected : 1, up_dead : 1, announced : 1, answered_since_stop : 1,
        grace_over : 1;
    unsigned gated : 1,      /* access control on */
        by_message : 1,      /* the request side is fed message by message */
        req_paused : 1,      /* the request parser stopped at a boundary */
        resp_paused : 1,     /* the response parser stopped at a message's end */
        refused_v1 : 1,      /* the refused request's path is an OpenAI one (/v1/...) */
        refused_close : 1,   /* ... and the connection cannot go on after its 401 */
        refused_head : 1,    /* ... and it was a HEAD request (its 401 has no body) */
        reject_waiting : 1,  /* a 401 waits for the responses to earlier requests */
        upgrade_waiting : 1, /* access control: an Upgrade request forwarded, no 101 yet */
        upgrade_refused : 1, /* ... and its answer was not 101 */
        tunnel : 1,          /* the upstream switched protocols: bytes pass as they are */
        req_ended : 1;       /* the request parser completed a message in this feed */
};

static void conn_close(struct sp_conn *c, int err, const char *reason)
{
    cg_conn_close(&c->conn, err, reason);
}

static void arm(struct sp_conn *c, enum sp_phase phase, uint64_t ms)
{
    c->phase = phase;
    cg_conn_timer(&c->conn, ms);
}

static struct cg_stream *peer_of(struct sp_conn *c, struct cg_stream *s)
{
    return s == &c->down ? &c->up : &c->down;
}

static void maybe_done(struct sp_conn *c)
{
    if (c->down.eof && c->up.eof && c->down.queued == 0 && c->up.queued == 0)
        conn_close(c, 0, "done");
}

/* ---- message boundaries (HTTP mode) ---- */

static uint32_t now_us(void)
{
    return (uint32_t)(uv_hrtime() / 1000);
}

static void track_arm_head(struct sp_conn *c)
{
    if (c->track_len > 0 && c->is_head[c->track_head])
        cg_http_parser_expect_head_response(c->respp);
}

static void reqlog_free(struct sp_reqlog **lg)
{
    free(*lg);
    *lg = NULL;
}

/* Access log: the record of the request whose head is h (NULL when out of memory). */
static struct sp_reqlog *reqlog_new(struct sp_conn *c, const struct cg_http_head *h,
                                    const char *token)
{
    size_t mlen = strlen(h->method), plen = strcspn(h->target, "?");
    const struct cg_http_header *id = cg_http_head_get(h, "x-request-id");
    size_t ilen = id != NULL ? id->value_len : 0, tlen = token != NULL ? strlen(token) : 0;
    plen = plen < LOG_PATH_MAX ? plen : LOG_PATH_MAX;
    ilen = ilen < LOG_ID_MAX ? ilen : LOG_ID_MAX;
    struct sp_reqlog *lg = malloc(sizeof(*lg) + mlen + plen + ilen + tlen + 4);
    if (lg == NULL)
        return NULL;
    lg->seq = c->req_seq;
    lg->t0 = uv_hrtime();
    lg->t_head = 0;
    lg->bytes_in = 0;
    char *p = lg->text;
    const char *parts[4] = {h->method, h->target, id != NULL ? id->value : NULL, token};
    size_t lens[4] = {mlen, plen, ilen, tlen};
    const char **dst[4] = {&lg->method, &lg->path, &lg->request_id, &lg->token};
    for (int i = 0; i < 4; i++) {
        *dst[i] = NULL;
        if (parts[i] == NULL)
            continue;
        memcpy(p, parts[i], lens[i]);
        p[lens[i]] = '\0';
        *dst[i] = p;
        p += lens[i] + 1;
    }
    return lg;
}

/* Access log: the line of a request answered with status (auth: why it was refused, or NULL). */
static void reqlog_emit(struct sp_conn *c, const struct sp_reqlog *lg, int status,
                        uint64_t bytes_out, const char *auth)
{
    struct cg_log_field f[12];
    size_t n = 0;
    f[n++] = CG_LF_UINT("conn", c->conn.id);
    f[n++] = CG_LF_UINT("req", lg->seq);
    f[n++] = CG_LF_STR("method", lg->method);
    f[n++] = CG_LF_STR("path", lg->path);
    f[n++] = CG_LF_INT("status", status);
    f[n++] = CG_LF_UINT("bytes_in", lg->bytes_in);
    f[n++] = CG_LF_UINT("bytes_out", bytes_out);
    f[n++] = CG_LF_DBL("duration_ms", (double)(uv_hrtime() - lg->t0) / 1e6);
    if (lg->t_head != 0)
        f[n++] = CG_LF_DBL("upstream_ms", (double)(lg->t_head - lg->t0) / 1e6);
    f[n++] = CG_LF_STR("request_id", lg->request_id != NULL ? lg->request_id : "-");
    if (lg->token != NULL)
        f[n++] = CG_LF_STR("token", lg->token);
    if (auth != NULL)
        f[n++] = CG_LF_STR("auth", auth);
    cg_log_fields(CG_LOG_INFO, "request", f, n);
}

static void count_status(struct sp_server *srv, int status)
{
    if (status >= 100 && status < 600)
        srv->stats.requests[status / 100]++;
}

/* Checks the request's credentials: CG_TOKEN_OK, or why not (c->auth is the header). */
static enum cg_token_fail gate_check(struct sp_conn *c, const struct cg_http_head *h,
                                     const char **name)
{
    *name = NULL;
    c->auth = NULL;
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct cg_http_header *x = &h->headers[i];
        if (x->name_len == 13 && strncasecmp(x->name, "authorization", 13) == 0) {
            if (c->auth != NULL)
                return CG_TOKEN_MALFORMED; /* which one would count? */
            c->auth = x;
        }
    }
    return cg_tokens_check(c->srv->tokens, c->auth != NULL ? c->auth->value : NULL,
                           c->auth != NULL ? c->auth->value_len : 0, name);
}

static int track_req_head(void *arg, const struct cg_http_head *h)
{
    struct sp_conn *c = arg;
    const char *token = NULL;
    c->req_seq++;
    if (c->by_message) {
        if (c->gated) {
            cg_http_parser_pause(c->reqp); /* the caller forwards the head or answers 401 */
            c->req_paused = 1;
            enum cg_token_fail f = gate_check(c, h, &token);
            if (f != CG_TOKEN_OK) {
                c->srv->stats.auth_failures[f]++;
                c->rq = RQ_DROP;
                c->refused = f;
                c->refused_v1 = strncmp(h->target, "/v1/", 4) == 0;
                c->refused_head = strcmp(h->method, "HEAD") == 0;
                c->refused_close = !h->keep_alive || h->expect_continue || h->upgrade;
                cg_logf(CG_LOG_DEBUG, "auth.refused", CG_LF_UINT("conn", c->conn.id),
                        CG_LF_STR("reason", cg_token_fail_name(f)));
                if (c->srv->access_log)
                    c->cur = c->rej_log = reqlog_new(c, h, NULL);
                return 0;
            }
        }
        c->rq = RQ_PASS;
        if (c->srv->access_log && c->logs == NULL)
            c->logs =
                calloc(TRACK_MAX, sizeof(c->logs[0])); /* first request: idle ones need none */
        if (c->logs != NULL)
            c->cur = reqlog_new(c, h, token);
    }
    if (h->upgrade && c->gated) {
        c->upgrade_waiting = 1; /* nothing more passes until the upstream says 101 */
    } else if (c->track_len == TRACK_MAX || h->upgrade) {
        c->tracking = 0;
        reqlog_free(&c->cur); /* lines only while messages are followed */
        return 0;
    }
    size_t slot = (c->track_head + c->track_len) % TRACK_MAX;
    c->is_head[slot] = strcmp(h->method, "HEAD") == 0;
    c->t0_us[slot] = now_us();
    if (c->logs != NULL)
        c->logs[slot] = c->cur; /* the ring owns it; cur counts its bytes as they arrive */
    if (++c->track_len == 1 && !cg_http_parser_in_message(c->respp))
        track_arm_head(c);
    return 0;
}

static int track_req_complete(void *arg)
{
    struct sp_conn *c = arg;
    if (c->by_message) {
        cg_http_parser_pause(c->reqp);
        c->req_paused = 1;
        c->req_ended = 1;
    }
    return 0;
}

static int track_resp_complete(void *arg)
{
    struct sp_conn *c = arg;
    if (c->resp_status < 200)
        return 0; /* the final answer follows */
    if (c->track_len == 0) {
        c->tracking = 0; /* an answer nobody asked for */
        return 0;
    }
    if (c->upgrade_waiting && !c->tunnel)
        c->upgrade_refused = 1;
    if (c->logs != NULL) {
        reqlog_free(&c->done);
        c->done = c->logs[c->track_head];
        c->logs[c->track_head] = NULL;
        if (c->cur == c->done)
            c->cur = NULL;              /* answered before its body ended */
        cg_http_parser_pause(c->respp); /* the caller logs it with its exact byte count */
        c->resp_paused = 1;
    }
    c->track_head = (c->track_head + 1) % TRACK_MAX;
    c->track_len--;
    track_arm_head(c);
    if (c->srv->stopping)
        c->answered_since_stop = 1;
    return 0;
}

static int track_resp_head(void *arg, const struct cg_http_head *h)
{
    struct sp_conn *c = arg;
    c->resp_status = h->status;
    if ((h->status >= 200 || h->status == 101) && c->track_len > 0) {
        struct sp_stats *st = &c->srv->stats;
        static const double bounds[SP_LATENCY_BUCKETS] = {SP_LATENCY_BOUNDS};
        double secs = (double)(uint32_t)(now_us() - c->t0_us[c->track_head]) / 1e6;
        count_status(c->srv, h->status);
        st->latency_count++;
        st->latency_sum += secs;
        for (int i = 0; i < SP_LATENCY_BUCKETS; i++) {
            if (secs <= bounds[i]) {
                st->latency[i]++;
                break;
            }
        }
        if (c->logs != NULL && c->logs[c->track_head] != NULL)
            c->logs[c->track_head]->t_head = uv_hrtime();
    }
    if (h->status == 101) {
        c->tracking = 0;
        c->tunnel = c->upgrade_waiting;
    }
    return 0;
}

static int track_body(void *arg, const uint8_t *data, size_t len)
{
    (void)arg;
    (void)data;
    (void)len;
    return 0;
}

static const struct cg_http_callbacks track_req_cb = {track_req_head, track_body,
                                                      track_req_complete};
static const struct cg_http_callbacks track_resp_cb = {track_resp_head, track_body,
                                                       track_resp_complete};

static void track(struct sp_conn *c, struct cg_stream *from, const uint8_t *data, size_t len)
{
    if (!c->tracking)
        return;
    struct cg_http_parser *p = from == &c->down ? c->reqp : c->respp;
    long n = cg_http_parser_feed(p, data, len);
    if (n < 0 || (size_t)n < len)
        c->tracking = 0;
}

/* The upstream's bytes: followed like track(); with the access log on, message by message, so
 * that each response's line has its exact byte count. */
static void track_response(struct sp_conn *c, const uint8_t *data, size_t len)
{
    if (c->logs == NULL) {
        track(c, &c->up, data, len);
        return;
    }
    size_t off = 0;
    while (c->tracking) {
        c->resp_paused = 0;
        long n = cg_http_parser_feed(c->respp, data + off, len - off);
        if (n < 0) {
            c->tracking = 0;
            break;
        }
        off += (size_t)n;
        c->resp_bytes += (uint64_t)n;
        if (c->resp_paused) {
            if (c->done != NULL) {
                reqlog_emit(c, c->done, c->resp_status, c->resp_bytes, NULL);
                reqlog_free(&c->done);
            }
            c->resp_bytes = 0;
            continue;
        }
        if (off < len)
            c->tracking = 0; /* switched protocols */
        break;
    }
}

/* Whether the request side waits before the next request: for earlier responses (a 401 to
 * send after them, or TRACK_MAX of them), or for the answer to an Upgrade. */
static int req_blocked(const struct sp_conn *c)
{
    return c->rq == RQ_CLOSED ||
           (c->rq == RQ_IDLE && (c->reject_waiting || (c->gated && c->track_len == TRACK_MAX) ||
                                 (c->upgrade_waiting && !c->tunnel)));
}

/* Between messages: every request answered, nothing half-parsed, nothing queued or held. */
static int between_messages(const struct sp_conn *c)
{
    return c->tracking && c->track_len == 0 && !cg_http_parser_in_message(c->reqp) &&
           !cg_http_parser_in_message(c->respp) && c->down.queued == 0 && c->held.len == 0 &&
           (!c->up_inited || c->up.queued == 0) && c->rq == RQ_IDLE && !c->reject_waiting &&
           c->pending.len == 0;
}

/* ---- graceful stop ---- */

/* Ends the connection cleanly: close_notify and FIN to the client (which then closes), FIN to
 * the upstream; the client's close (or the linger timer) closes. */
static void end_gracefully(struct sp_conn *c)
{
    if (c->phase == PH_LINGER)
        return;
    (void)cg_stream_shutdown(&c->down);
    if (c->up_connected)
        (void)cg_stream_shutdown(&c->up);
    arm(c, PH_LINGER, LINGER_MS);
}

/* Stopping: a connection ends at a message boundary once it answered since the stop, or
 * once its idle grace ran out. */
static void maybe_stop(struct sp_conn *c)
{
    if (c->srv->stopping && c->up_connected && (c->answered_since_stop || c->grace_over) &&
        between_messages(c))
        end_gracefully(c);
}

/* Where the response head in held ends (after its blank line), or 0 while incomplete. */
static size_t held_head_end(struct sp_conn *c)
{
    const uint8_t *d = (const uint8_t *)c->held.data;
    for (size_t i = c->held_scan; i + 4 <= c->held.len; i++)
        if (d[i] == '\r' && d[i + 1] == '\n' && d[i + 2] == '\r' && d[i + 3] == '\n')
            return i + 4;
    c->held_scan = c->held.len > 3 ? c->held.len - 3 : 0;
    return 0;
}

/* The status of the response head at d (HTTP/1.x NNN ...), or 0 when it does not look so. */
static int head_status(const uint8_t *d, size_t len)
{
    if (len < 12 || memcmp(d, "HTTP/1.", 7) != 0 || d[8] != ' ')
        return 0;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (d[i] < '0' || d[i] > '9')
            return 0;
        st = st * 10 + (d[i] - '0');
    }
    return st;
}

static void held_reset(struct sp_conn *c)
{
    c->held.len = 0;
    c->held_scan = 0;
}

/*
 * Stopping: upstream bytes that start at a response boundary are held until the response
 * head is complete, then sent with "Connection: close" added before its blank line (a 1xx
 * head is sent as is and the search goes on). The parser has seen the bytes already; this
 * only changes what the client reads. Returns 0 or a negative code (write failed).
 */
static int relay_announcing(struct sp_conn *c, const uint8_t *data, size_t len)
{
    static const char close_hdr[] = "Connection: close\r\n\r\n";
    if (c->held.len + len > HELD_MAX || cg_buf_append(&c->held, data, len) < 0) {
        /* A head this large is not annotated: send it as it came. */
        int rc = cg_stream_write(&c->down, c->held.data, c->held.len);
        if (rc == 0)
            rc = cg_stream_write(&c->down, data, len);
        held_reset(c);
        c->announced = 1;
        return rc;
    }
    for (;;) {
        size_t end = held_head_end(c);
        if (end == 0)
            return 0; /* hold until the head is complete */
        int status = head_status((const uint8_t *)c->held.data, end);
        if (status >= 100 && status < 200) {
            int rc = cg_stream_write(&c->down, c->held.data, end);
            if (rc < 0)
                return rc;
            memmove(c->held.data, c->held.data + end, c->held.len - end);
            c->held.len -= end;
            c->held_scan = 0;
            if (c->held.len == 0)
                return 0;
            continue;
        }
        uv_buf_t bufs[3] = {uv_buf_init((char *)c->held.data, (unsigned)end),
                            uv_buf_init((char *)c->held.data + end, (unsigned)(c->held.len - end))};
        unsigned n = 2;
        if (status != 0) {
            bufs[0].len = end - 2; /* before the blank line */
            bufs[2] = bufs[1];
            bufs[1] = uv_buf_init((char *)close_hdr, sizeof(close_hdr) - 1);
            n = 3;
        }
        int rc = cg_stream_writev(&c->down, bufs, n);
        cg_buf_free(&c->held);
        c->held_scan = 0;
        c->announced = 1;
        return rc;
    }
}

/* ---- the request side, message by message (access control, access log) ---- */

/* Client bytes for the upstream, gathered for one write (before it connected: into early). */
struct fwd {
    uv_buf_t b[FWD_IOVS];
    unsigned n;
};

static int fwd_flush(struct sp_conn *c, struct fwd *f)
{
    int rc = 0;
    if (c->up_connected)
        rc = f->n > 0 ? cg_stream_writev(&c->up, f->b, f->n) : 0;
    else
        for (unsigned i = 0; i < f->n && rc == 0; i++)
            rc = cg_buf_append(&c->early, f->b[i].base, f->b[i].len);
    f->n = 0;
    return rc;
}

static int fwd_add(struct sp_conn *c, struct fwd *f, const void *p, size_t len)
{
    if (len == 0)
        return 0;
    if (f->n > 0 && f->b[f->n - 1].base + f->b[f->n - 1].len == (const char *)p) {
        f->b[f->n - 1].len += len;
        return 0;
    }
    if (f->n == FWD_IOVS) {
        int rc = fwd_flush(c, f);
        if (rc < 0)
            return rc;
    }
    f->b[f->n++] = uv_buf_init((char *)p, (unsigned)len);
    return 0;
}

/* Forwards the complete head d[0..len) without its Authorization line: the upstream needs no
 * credential of ours. The parser accepted the head, so its lines end with CRLF and each name
 * stands right before its colon. */
static int fwd_head(struct sp_conn *c, struct fwd *f, const char *d, size_t len)
{
    const char *end = d + len;
    const char *nl = memchr(d, '\n', len); /* the start line ends */
    while (nl != NULL && nl + 1 < end) {
        const char *ls = nl + 1;
        nl = memchr(ls, '\n', (size_t)(end - ls));
        if (nl != NULL && (size_t)(nl - ls) >= 14 && strncasecmp(ls, "authorization:", 14) == 0) {
            int rc = fwd_add(c, f, d, (size_t)(ls - d));
            return rc < 0 ? rc : fwd_add(c, f, nl + 1, (size_t)(end - nl - 1));
        }
    }
    return CG_EHTTP; /* the parser saw one: cannot happen */
}

/* The head completed with seg[0..n): forwards it, held bytes first. */
static int fwd_held_head(struct sp_conn *c, struct fwd *f, const uint8_t *seg, size_t n)
{
    if (c->hold.len == 0)
        return fwd_head(c, f, (const char *)seg, n);
    int rc = cg_buf_append(&c->hold, seg, n);
    if (rc == 0)
        rc = fwd_head(c, f, c->hold.data, c->hold.len);
    if (rc == 0)
        rc = fwd_flush(c, f); /* before the held bytes go */
    c->hold.len = 0;
    return rc;
}

/* Writes ccgate's own answer to the client: an OpenAI-shaped error on the OpenAI paths
 * (/v1/...), plain JSON elsewhere; to a HEAD request only the head. Returns the bytes written
 * (0 when the write failed). */
static size_t answer_local(struct sp_conn *c, int status, const char *code, const char *message,
                           int v1, int head, int close, const char *www_authenticate)
{
    char body[512];
    if (v1)
        snprintf(
            body, sizeof(body),
            "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"code\":\"%s\",\"param\":null}}\n",
            message, status == 401 ? "ccgate_auth_error" : "ccgate_request_error", code);
    else
        snprintf(body, sizeof(body), "{\"error\":\"%s\",\"message\":\"%s\"}\n", code, message);
    struct cg_buf out;
    cg_buf_init(&out, 2048);
    int rc = cg_buf_printf(&out,
                           "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                           "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                           "x-should-retry: false\r\n%s%s%s%s\r\n%s",
                           status, cg_httpmsg_reason(status), strlen(body),
                           www_authenticate != NULL ? "WWW-Authenticate: " : "",
                           www_authenticate != NULL ? www_authenticate : "",
                           www_authenticate != NULL ? "\r\n" : "",
                           close ? "Connection: close\r\n" : "", head ? "" : body);
    size_t n = rc == 0 && cg_stream_write(&c->down, out.data, out.len) == 0 ? out.len : 0;
    cg_buf_free(&out);
    count_status(c->srv, status);
    return n;
}

static const char *refusal_message(enum cg_token_fail f)
{
    switch (f) {
    case CG_TOKEN_MISSING:
        return "this server needs an Authorization: Bearer token";
    case CG_TOKEN_SCHEME:
        return "Authorization: expected the Bearer scheme";
    case CG_TOKEN_MALFORMED:
        return "Authorization: expected one header with one bearer token (letters, digits, "
               "-._~+/ then = padding)";
    default:
        return "the bearer token is not accepted (unknown or revoked)";
    }
}

/* The refused request's 401, now that every earlier request is answered. */
static void reject_now(struct sp_conn *c)
{
    enum cg_token_fail f = c->refused;
    int close = c->refused_close || c->srv->stopping;
    const char *www = f == CG_TOKEN_MISSING || f == CG_TOKEN_SCHEME
                          ? "Bearer realm=\"ccgate\""
                          : "Bearer realm=\"ccgate\", error=\"invalid_token\"";
    c->reject_waiting = 0;
    size_t n = answer_local(c, 401, "auth.token", refusal_message(f), c->refused_v1,
                            c->refused_head, close, www);
    if (c->rej_log != NULL) {
        if (c->cur == c->rej_log)
            c->cur = NULL;
        reqlog_emit(c, c->rej_log, 401, n, cg_token_fail_name(f));
        reqlog_free(&c->rej_log);
    }
    if (close) {
        c->rq = RQ_CLOSED;
        cg_stream_read_stop(&c->down);
        end_gracefully(c);
    }
}

/* A request that does not parse. Access control: answered here (the connection ends), since
 * no later boundary can be trusted; otherwise its bytes pass as they are, unfollowed. */
static int req_bad(struct sp_conn *c, struct fwd *f, const uint8_t *rest, size_t len)
{
    if (!c->gated) {
        c->tracking = 0;
        return fwd_add(c, f, rest, len);
    }
    c->rq = RQ_CLOSED;
    cg_stream_read_stop(&c->down);
    if (c->track_len > 0 || c->reject_waiting) {
        conn_close(c, CG_EHTTP, "client_http_error");
        return 0;
    }
    (void)answer_local(c, cg_http_parser_status(c->reqp), "http.request",
                       "the request is not valid HTTP/1.1", 0, 0, 1, NULL);
    end_gracefully(c);
    return 0;
}

/* A request ended (every byte read): its 401 when it was refused. */
static void req_ended(struct sp_conn *c)
{
    if (c->cur != NULL)
        c->cur->bytes_in = c->req_bytes;
    c->cur = NULL;
    c->req_bytes = 0;
    if (c->rq == RQ_DROP) {
        c->rq = RQ_IDLE;
        if (c->track_len == 0)
            reject_now(c);
        else
            c->reject_waiting = 1;
    } else if (c->rq != RQ_CLOSED) {
        c->rq = RQ_IDLE;
    }
}

/*
 * Client bytes in HTTP mode with access control or the access log: fed to the request parser
 * up to each boundary. A head is held until complete, then forwarded (without Authorization)
 * or refused; the rest of a message follows its head or is dropped. Bytes that arrive while
 * the request side waits (req_blocked) are kept in pending and reading stops.
 */
static void req_run(struct sp_conn *c, const uint8_t *data, size_t len)
{
    struct fwd f = {.n = 0};
    size_t off = 0;
    int rc = 0, again = len > 0;
    while (again && rc == 0 && cg_conn_live(&c->conn)) {
        if (req_blocked(c)) {
            if (c->rq != RQ_CLOSED)
                rc = cg_buf_append(&c->pending, data + off, len - off);
            cg_stream_read_stop(&c->down);
            break;
        }
        if (c->tunnel || !c->tracking) {
            /* switched protocols after a forwarded Upgrade, or (no access control) no longer
             * followed */
            rc = fwd_add(c, &f, data + off, len - off);
            break;
        }
        enum sp_rq before = c->rq;
        c->req_paused = 0;
        long n = cg_http_parser_feed(c->reqp, data + off, len - off);
        if (n < 0) {
            rc = req_bad(c, &f, data + off, len - off);
            break;
        }
        const uint8_t *seg = data + off;
        off += (size_t)n;
        c->req_bytes += (uint64_t)n;
        again = off < len || c->req_paused;
        if (before == RQ_PASS) {
            rc = fwd_add(c, &f, seg, (size_t)n);
        } else if (before == RQ_IDLE || before == RQ_HEAD) {
            if (c->rq == RQ_IDLE || c->rq == RQ_HEAD) { /* no complete head yet */
                if (n > 0 && c->rq == RQ_IDLE)
                    c->rq = RQ_HEAD;
                rc = c->gated ? cg_buf_append(&c->hold, seg, (size_t)n)
                              : fwd_add(c, &f, seg, (size_t)n);
            } else if (c->rq == RQ_PASS) {
                rc = c->gated ? fwd_held_head(c, &f, seg, (size_t)n)
                              : fwd_add(c, &f, seg, (size_t)n);
            } else { /* refused: its bytes go nowhere */
                c->hold.len = 0;
                if (c->refused_close) {
                    c->rq = RQ_CLOSED; /* ends once the 401 is out */
                    if (c->track_len == 0)
                        reject_now(c);
                    else
                        c->reject_waiting = 1;
                }
            }
        }
        if (c->req_ended) {
            c->req_ended = 0;
            req_ended(c);
        }
    }
    if (rc == 0)
        rc = fwd_flush(c, &f);
    if (rc < 0)
        conn_close(c, rc, rc == CG_ELIMIT ? "request_buffer_overflow" : "write_failed");
}

/* After the upstream's bytes: a waiting 401 goes out once every earlier request is answered,
 * then the bytes kept meanwhile are run and reading resumes. */
static void req_unblock(struct sp_conn *c)
{
    if (c->reject_waiting && c->track_len == 0)
        reject_now(c);
    if (req_blocked(c) || !cg_conn_live(&c->conn))
        return;
    if (c->pending.len > 0) {
        struct cg_buf p = c->pending;
        cg_buf_init(&c->pending, PENDING_MAX);
        req_run(c, (const uint8_t *)p.data, p.len);
        cg_buf_free(&p);
        if (req_blocked(c) || !cg_conn_live(&c->conn))
            return;
    }
    if (c->down.eof)
        (void)cg_stream_shutdown(&c->up); /* the client's FIN, held back until now */
    else if (c->up_connected && c->up.queued < CG_STREAM_HIGH_WATER)
        (void)cg_stream_read_start(&c->down);
}

/* ---- relaying ---- */

/* Adds what the client leg moved since the last call to the server's byte counters. */
static void count_bytes(struct sp_conn *c)
{
    c->srv->stats.bytes_from_client += c->down.bytes_in - c->acct_in;
    c->srv->stats.bytes_to_client += c->down.bytes_out - c->acct_out;
    c->acct_in = c->down.bytes_in;
    c->acct_out = c->down.bytes_out;
}

static void from_client(struct sp_conn *c, const uint8_t *data, size_t len)
{
    if (c->by_message && (c->tracking || c->gated)) {
        req_run(c, data, len);
    } else {
        track(c, &c->down, data, len);
        if (!c->up_connected) {
            if (cg_buf_append(&c->early, data, len) < 0) {
                conn_close(c, UV_ENOBUFS, "early_data_overflow");
                return;
            }
        } else {
            int rc = cg_stream_write(&c->up, data, len);
            if (rc < 0) {
                conn_close(c, rc, "write_failed");
                return;
            }
        }
    }
    if (!cg_conn_live(&c->conn))
        return;
    if (!c->up_connected) {
        if (c->early.len >= CG_STREAM_HIGH_WATER)
            cg_stream_read_stop(&c->down);
        return;
    }
    if (c->up.queued >= CG_STREAM_HIGH_WATER)
        cg_stream_read_stop(&c->down);
    maybe_stop(c);
}

static void from_upstream(struct sp_conn *c, const uint8_t *data, size_t len)
{
    int announce = c->srv->stopping && !c->announced && c->tracking &&
                   (c->held.len > 0 || !cg_http_parser_in_message(c->respp));
    track_response(c, data, len);
    int rc = announce ? relay_announcing(c, data, len) : cg_stream_write(&c->down, data, len);
    if (rc < 0) {
        conn_close(c, rc, "write_failed");
        return;
    }
    if (c->down.queued >= CG_STREAM_HIGH_WATER)
        cg_stream_read_stop(&c->up);
    if (c->gated) {
        if (!c->tracking && !c->tunnel) {
            /* Access control needs the boundaries: an upstream answering out of turn or in
             * broken HTTP ends the connection. */
            conn_close(c, CG_EHTTP, "upstream_http_error");
            return;
        }
        if (c->upgrade_refused && c->track_len == 0) {
            end_gracefully(c); /* an Upgrade answered without 101: no request may follow */
            return;
        }
        req_unblock(c);
    }
    maybe_stop(c);
}

static void on_read(struct cg_stream *s, const uint8_t *data, size_t len)
{
    struct sp_conn *c = s->data;
    if (c->up_connected && c->phase == PH_RELAY)
        arm(c, PH_RELAY, c->srv->idle_timeout_ms);
    if (s == &c->down)
        from_client(c, data, len);
    else
        from_upstream(c, data, len);
    count_bytes(c);
}

static void on_drain(struct cg_stream *s)
{
    struct sp_conn *c = s->data;
    struct cg_stream *peer = peer_of(c, s);
    if (!peer->eof && (peer != &c->up || c->up_connected) &&
        (peer != &c->down || (!req_blocked(c) && c->pending.len == 0)))
        (void)cg_stream_read_start(peer);
    maybe_stop(c);
    maybe_done(c);
}

static void on_eof(struct cg_stream *s)
{
    struct sp_conn *c = s->data;
    struct cg_stream *peer = peer_of(c, s);
    if (s == &c->down && c->phase == PH_LINGER) {
        conn_close(c, 0, c->up_dead ? "upstream_unreachable" : "shutdown");
        return;
    }
    if (peer == &c->up && (!c->up_connected || req_blocked(c) || c->pending.len > 0))
        return; /* shut down once connected (on_up_connect) or unblocked (req_unblock) */
    (void)cg_stream_shutdown(peer);
    maybe_done(c);
}

static void on_error(struct cg_stream *s, int err)
{
    struct sp_conn *c = s->data;
    if (c->phase == PH_LINGER) {
        /* Ended on our side already: how the client or the upstream goes does not matter
         * (many clients close without close_notify once they saw ours). */
        conn_close(c, err, c->up_dead ? "upstream_unreachable" : "shutdown");
        return;
    }
    if (s == &c->up)
        conn_close(c, err, "upstream_error");
    else
        conn_close(c, err, err == CG_ETLS ? "client_tls_error_or_truncation" : "client_error");
}

/* The upstream cannot be reached (error or connect timeout): HTTP mode answers 502 JSON, TCP
 * mode closes; the connection lingers until the client closes. */
static void upstream_failed(struct sp_conn *c, int status)
{
    if (c->up_inited) {
        cg_conn_drop_leg(&c->conn, 1);
        c->up_inited = 0;
    }
    c->srv->stats.upstream_failures++;
    if (!c->srv->tcp_mode)
        count_status(c->srv, 502);
    cg_logf(CG_LOG_WARN, "upstream.connect", CG_LF_UINT("id", c->conn.id),
            CG_LF_STR("upstream", c->srv->upstream.text), CG_LF_STR("err", cg_strerror(status)));
    if (!c->srv->tcp_mode) {
        static const char body[] = "{\"error\": \"upstream_unreachable\"}\n";
        struct cg_buf out;
        cg_buf_init(&out, 1024);
        if (cg_httpmsg_response(&out, 502, "application/json", body, sizeof(body) - 1, 1) == 0)
            (void)cg_stream_write(&c->down, out.data, out.len);
        cg_buf_free(&out);
    }
    /* TCP mode has no way to say why: close_notify alone. */
    (void)cg_stream_shutdown(&c->down);
    c->up_dead = 1;
    count_bytes(c);
    arm(c, PH_LINGER, LINGER_MS);
}

static void on_up_connect(struct cg_stream *s, int status)
{
    struct sp_conn *c = s->data;
    if (status < 0) {
        upstream_failed(c, status);
        return;
    }
    c->up_connected = 1;
    arm(c, PH_RELAY, c->srv->idle_timeout_ms);
    if (c->early.len > 0 && cg_stream_write(&c->up, c->early.data, c->early.len) < 0) {
        conn_close(c, UV_EPIPE, "write_failed");
        return;
    }
    cg_buf_free(&c->early);
    if (req_blocked(c) || c->pending.len > 0)
        ; /* reading resumes in req_unblock */
    else if (c->down.eof)
        (void)cg_stream_shutdown(&c->up);
    else
        (void)cg_stream_read_start(&c->down);
    (void)cg_stream_read_start(&c->up);
    if (c->srv->stopping)
        arm(c, PH_GRACE, STOP_GRACE_MS); /* its first request is answered, then it ends */
}

static void on_handshake(struct cg_stream *s, int status);

static const struct cg_stream_callbacks down_cb = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_handshake = on_handshake,
    .on_drain = on_drain,
};

static const struct cg_stream_callbacks up_cb = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_drain = on_drain,
    .on_connect = on_up_connect,
};

static void on_handshake(struct cg_stream *s, int status)
{
    struct sp_conn *c = s->data;
    if (status < 0) {
        const struct cg_verdict *v = s->tls != NULL ? cg_tls_verdict(s->tls) : NULL;
        c->srv->stats.handshake_failures++;
        /* Said once per failed handshake, in words: the usual cause is a misconfigured peer. */
        if (v != NULL && v->check[0] != '\0')
            cg_logf(CG_LOG_INFO, "handshake.failed", CG_LF_UINT("id", c->conn.id),
                    CG_LF_STR("check", v->check), CG_LF_STR("actual", v->actual));
        conn_close(c, status, "handshake_failed");
        return;
    }
    int rc = cg_stream_init(&c->up, c->srv->loop, c->srv->upstream.is_unix, &up_cb, c);
    if (rc == 0) {
        c->up_inited = 1;
        cg_conn_add_leg(&c->conn, 1, &c->up);
        rc = cg_stream_connect(&c->up, &c->srv->upstream);
    }
    if (rc < 0) {
        upstream_failed(c, rc);
        return;
    }
    arm(c, PH_CONNECTING, c->srv->upstream_connect_timeout_ms);
}

static void on_cert_ready(struct sp_waiter *w, int status)
{
    struct sp_conn *c = (struct sp_conn *)((char *)w - offsetof(struct sp_conn, waiter));
    if (!cg_conn_live(&c->conn))
        return;
    if (status < 0) {
        c->srv->stats.handshake_failures++;
        conn_close(c, status, "evidence_failed");
        return;
    }
    cg_stream_handshake(&c->down);
}

/* ---- the connection core's callbacks ---- */

static void on_timeout(struct cg_conn *conn)
{
    struct sp_conn *c = conn->data;
    switch (c->phase) {
    case PH_HANDSHAKE:
        c->srv->stats.handshake_failures++;
        conn_close(c, UV_ETIMEDOUT, "handshake_timeout");
        break;
    case PH_CONNECTING:
        upstream_failed(c, UV_ETIMEDOUT);
        break;
    case PH_RELAY:
        conn_close(c, UV_ETIMEDOUT, "idle_timeout");
        break;
    case PH_GRACE:
        c->grace_over = 1;
        arm(c, PH_RELAY, c->srv->idle_timeout_ms);
        maybe_stop(c);
        break;
    case PH_LINGER:
        conn_close(c, 0, c->up_dead ? "upstream_unreachable" : "shutdown");
        break;
    }
}

static void on_stop(struct cg_conn *conn)
{
    struct sp_conn *c = conn->data;
    /* Handshaking or connecting: the grace starts once connected (on_up_connect). */
    if (c->phase == PH_RELAY && between_messages(c))
        arm(c, PH_GRACE, STOP_GRACE_MS);
}

static void on_close(struct cg_conn *conn)
{
    struct sp_conn *c = conn->data;
    struct sp_server *srv = c->srv;
    count_bytes(c);
    srv->stats.conns_active--;
    sp_attester_cancel(&c->waiter);
}

static void on_free(struct cg_conn *conn)
{
    struct sp_conn *c = conn->data;
    cg_http_parser_free(c->reqp);
    cg_http_parser_free(c->respp);
    cg_buf_free(&c->early);
    cg_buf_free(&c->held);
    cg_buf_free(&c->hold);
    cg_buf_free(&c->pending);
    if (c->logs != NULL)
        for (size_t i = 0; i < TRACK_MAX; i++)
            reqlog_free(&c->logs[i]);
    free(c->logs);
    reqlog_free(&c->done);
    reqlog_free(&c->rej_log);
    free(c);
}

static void on_stopped(struct cg_conns *set)
{
    struct sp_server *srv = set->data;
    if (srv->on_idle != NULL)
        srv->on_idle(srv);
}

static void on_accept(struct cg_conns *set, uv_stream_t *listener)
{
    struct sp_server *srv = set->data;
    struct sp_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        cg_log_error("accept", "err=\"out of memory\"");
        return;
    }
    cg_conn_init(&c->conn, set, c);
    c->srv = srv;
    srv->stats.conns_total++;
    srv->stats.conns_active++;
    cg_buf_init(&c->early, EARLY_MAX);
    cg_buf_init(&c->held, HELD_MAX);
    cg_buf_init(&c->hold, HEAD_MAX + 4096);
    cg_buf_init(&c->pending, PENDING_MAX);
    c->waiter.ready = on_cert_ready;
    int rc = cg_conn_accept(&c->conn, &c->down, listener, &down_cb);
    if (rc < 0) {
        conn_close(c, rc, "accept_failed");
        return;
    }
    if (cg_conns_full(set)) {
        conn_close(c, UV_EBUSY, "too_many_connections");
        return;
    }
    if (!srv->tcp_mode) {
        /* Generous limits: the client sidecar enforces the real ones; these only follow (a
         * message past them turns tracking off, it is not refused). */
        struct cg_http_limits lim = {.max_header_bytes = HEAD_MAX,
                                     .max_headers = CG_HTTP_MAX_HEADERS_CAP};
        c->tracking = cg_http_parser_new(CG_HTTP_REQUEST, &lim, &track_req_cb, c, &c->reqp) == 0 &&
                      cg_http_parser_new(CG_HTTP_RESPONSE, &lim, &track_resp_cb, c, &c->respp) == 0;
        c->gated = srv->tokens != NULL;
        c->by_message = c->gated || srv->access_log;
        if (!c->tracking) {
            conn_close(c, UV_ENOMEM, "out_of_memory"); /* access control cannot do without */
            return;
        }
    }
    struct cg_tls *t = NULL;
    rc = cg_tls_new(srv->tls, 0, &t);
    if (rc < 0) {
        conn_close(c, rc, "tls_init_failed");
        return;
    }
    cg_tls_set_data(t, &c->waiter);
    c->waiter.tls = t;
    cg_stream_set_tls(&c->down, t);
    arm(c, PH_HANDSHAKE, srv->handshake_timeout_ms);
    rc = cg_stream_read_start(&c->down);
    if (rc < 0)
        conn_close(c, rc, "read_failed");
}

static const struct cg_conn_ops conn_ops = {
    .on_accept = on_accept,
    .on_timeout = on_timeout,
    .on_drain = on_stop,
    .on_close = on_close,
    .on_free = on_free,
    .on_stopped = on_stopped,
};

int sp_server_start(struct sp_server *s)
{
    int rc = cg_conns_init(&s->set, s->loop, &conn_ops, s);
    if (rc < 0)
        return rc;
    s->set.name = "server";
    s->set.max_conns = s->max_conns;
    return cg_conns_listen(&s->set, &s->listen_addr, 511);
}

void sp_server_stop(struct sp_server *s)
{
    s->stopping = 1;
    cg_conns_drain(&s->set);
}

void sp_server_abort(struct sp_server *s)
{
    s->stopping = 1;
    cg_conns_abort(&s->set, "shutdown_deadline");
}
