#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ccgate/err.h"
#include "ccgate/httpmsg.h"
#include "ccgate/log.h"
#include "sp_conn.h"

#define HEAD_MAX (1024 * 1024) /* request and response heads followed (and held) up to this */
#define PENDING_MAX (CG_STREAM_HIGH_WATER + 64 * 1024) /* client bytes read while blocked */
#define LOG_PATH_MAX 256 /* access log: longest path logged (as the client) */
#define FWD_IOVS 8

/* Access log: what a request's line needs until its response completes. */
struct sp_reqlog {
    uint64_t seq;
    uint64_t t0, t_head; /* uv_hrtime() at its head and at the response head (0: none) */
    uint64_t bytes_in;
    const char *method, *path, *request_id, *token; /* in text; request_id, token may be NULL */
    char text[];
};

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
    if (id != NULL && !cg_httpmsg_request_id_valid(id->value, id->value_len))
        id = NULL; /* logged as "-": the client passes on only valid ones */
    size_t ilen = id != NULL ? id->value_len : 0, tlen = token != NULL ? strlen(token) : 0;
    plen = plen < LOG_PATH_MAX ? plen : LOG_PATH_MAX;
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

void sp_msg_count_status(struct sp_server *srv, int status)
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
    c->req_bytes = 0;
    if (c->gated) {
        cg_http_parser_pause(c->reqp); /* the caller forwards the head or answers 401 */
        c->req_paused = 1;
        enum cg_token_fail f = gate_check(c, h, &token);
        if (f != CG_TOKEN_OK) {
            c->srv->stats.auth_failures[f]++;
            c->rq = RQ_DROP;
            c->refused = f;
            c->refused_v1 = cg_httpmsg_openai_path(h->target);
            c->refused_head = strcmp(h->method, "HEAD") == 0;
            c->refused_close = !h->keep_alive || h->expect_continue || h->upgrade;
            cg_logf(CG_LOG_DEBUG, "auth.refused", CG_LF_UINT("conn", c->conn.id),
                    CG_LF_STR("reason", cg_token_fail_name(f)));
            if (c->srv->access_log)
                c->cur = c->rej_log = reqlog_new(c, h, NULL);
            return 0;
        }
        c->rq = RQ_PASS;
    }
    if (c->srv->access_log && c->logs == NULL) /* first request: idle connections need none */
        c->logs = calloc(TRACK_MAX, sizeof(c->logs[0]));
    if (c->logs != NULL)
        c->cur = reqlog_new(c, h, token);
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
        cg_http_parser_pause(c->reqp); /* req_run acts at the boundary (req_ended) */
        c->req_paused = 1;
        c->req_ended = 1;
    } else {
        if (c->cur != NULL)
            c->cur->bytes_in = c->req_bytes;
        c->cur = NULL;
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
    if (c->logs != NULL && c->logs[c->track_head] != NULL) {
        struct sp_reqlog **lg = &c->logs[c->track_head];
        if (c->cur == *lg) { /* answered before its body ended */
            (*lg)->bytes_in = c->req_bytes;
            c->cur = NULL;
        }
        reqlog_emit(c, *lg, c->resp_status, c->resp_bytes, NULL);
        reqlog_free(lg);
    }
    c->resp_bytes = 0;
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
        sp_msg_count_status(c->srv, h->status);
        cg_hist_observe(&c->srv->stats.latency,
                        (double)(uint32_t)(now_us() - c->t0_us[c->track_head]) / 1e6);
        if (c->logs != NULL && c->logs[c->track_head] != NULL)
            c->logs[c->track_head]->t_head = uv_hrtime();
    }
    if (h->status == 101) {
        c->tracking = 0;
        c->tunnel = c->upgrade_waiting;
    }
    return 0;
}

/* Body bytes (decoded, as the access log counts them). */
static int track_req_body(void *arg, const uint8_t *data, size_t len)
{
    struct sp_conn *c = arg;
    (void)data;
    c->req_bytes += len;
    return 0;
}

static int track_resp_body(void *arg, const uint8_t *data, size_t len)
{
    struct sp_conn *c = arg;
    (void)data;
    c->resp_bytes += len;
    return 0;
}

static const struct cg_http_callbacks track_req_cb = {track_req_head, track_req_body,
                                                      track_req_complete};
static const struct cg_http_callbacks track_resp_cb = {track_resp_head, track_resp_body,
                                                       track_resp_complete};

int sp_msg_init(struct sp_conn *c)
{
    /* Limits that only follow what the client sidecar already bounded (its own limits are the
     * real ones); with access control a head past them is refused (431). */
    struct cg_http_limits lim = {.max_header_bytes = HEAD_MAX,
                                 .max_headers = CG_HTTP_MAX_HEADERS_CAP};
    cg_buf_init(&c->hold, HEAD_MAX + 4096);
    cg_buf_init(&c->pending, PENDING_MAX);
    c->gated = c->srv->tokens != NULL;
    c->by_message = c->gated;
    if (cg_http_parser_new(CG_HTTP_REQUEST, &lim, &track_req_cb, c, &c->reqp) < 0 ||
        cg_http_parser_new(CG_HTTP_RESPONSE, &lim, &track_resp_cb, c, &c->respp) < 0)
        return UV_ENOMEM;
    c->tracking = 1;
    return 0;
}

void sp_msg_free(struct sp_conn *c)
{
    cg_http_parser_free(c->reqp);
    cg_http_parser_free(c->respp);
    cg_buf_free(&c->hold);
    cg_buf_free(&c->pending);
    if (c->logs != NULL)
        for (size_t i = 0; i < TRACK_MAX; i++)
            reqlog_free(&c->logs[i]);
    free(c->logs);
    reqlog_free(&c->rej_log);
}

static void track(struct sp_conn *c, struct cg_stream *from, const uint8_t *data, size_t len)
{
    if (!c->tracking)
        return;
    struct cg_http_parser *p = from == &c->down ? c->reqp : c->respp;
    long n = cg_http_parser_feed(p, data, len);
    if (n < 0 || (size_t)n < len)
        c->tracking = 0;
}

/* The upstream's bytes: followed (the caller relays them). */
void sp_msg_track_response(struct sp_conn *c, const uint8_t *data, size_t len)
{
    track(c, &c->up, data, len);
}

/* Whether the request side waits before the next request: for earlier responses (a 401 to
 * send after them, or TRACK_MAX of them), or for the answer to an Upgrade. */
int sp_msg_blocked(const struct sp_conn *c)
{
    return c->rq == RQ_CLOSED ||
           (c->rq == RQ_IDLE && (c->reject_waiting || (c->gated && c->track_len == TRACK_MAX) ||
                                 (c->upgrade_waiting && !c->tunnel)));
}

/* Between messages: every request answered, nothing half-parsed, nothing queued or held. */
int sp_msg_between(const struct sp_conn *c)
{
    return c->tracking && c->track_len == 0 && !cg_http_parser_in_message(c->reqp) &&
           !cg_http_parser_in_message(c->respp) && c->down.queued == 0 && c->held.len == 0 &&
           (!c->up_inited || c->up.queued == 0) && c->rq == RQ_IDLE && !c->reject_waiting &&
           c->pending.len == 0;
}

/* ---- the request side, message by message (access control) ---- */

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
    sp_msg_count_status(c->srv, status);
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
        sp_end_gracefully(c);
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
        sp_conn_close(c, CG_EHTTP, "client_http_error");
        return 0;
    }
    (void)answer_local(c, cg_http_parser_status(c->reqp), "http.request",
                       "the request is not valid HTTP/1.1", 0, 0, 1, NULL);
    sp_end_gracefully(c);
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
 * Client bytes in HTTP mode with access control: fed to the request parser
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
        if (sp_msg_blocked(c)) {
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
        sp_conn_close(c, rc, rc == CG_ELIMIT ? "request_buffer_overflow" : "write_failed");
}

/* After the upstream's bytes: a waiting 401 goes out once every earlier request is answered,
 * then the bytes kept meanwhile are run and reading resumes. */
int sp_msg_from_client(struct sp_conn *c, const uint8_t *data, size_t len)
{
    if (c->by_message && (c->tracking || c->gated)) {
        req_run(c, data, len);
        return 1;
    }
    track(c, &c->down, data, len);
    return 0;
}

void sp_msg_unblock(struct sp_conn *c)
{
    if (c->reject_waiting && c->track_len == 0)
        reject_now(c);
    if (sp_msg_blocked(c) || !cg_conn_live(&c->conn))
        return;
    if (c->pending.len > 0) {
        struct cg_buf p = c->pending;
        cg_buf_init(&c->pending, PENDING_MAX);
        req_run(c, (const uint8_t *)p.data, p.len);
        cg_buf_free(&p);
        if (sp_msg_blocked(c) || !cg_conn_live(&c->conn))
            return;
    }
    if (c->down.eof)
        (void)cg_stream_shutdown(&c->up); /* the client's FIN, held back until now */
    else if (c->up_connected && c->up.queued < CG_STREAM_HIGH_WATER)
        (void)cg_stream_read_start(&c->down);
}
