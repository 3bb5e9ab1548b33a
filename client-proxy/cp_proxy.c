#include "cp_proxy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/buf.h"
#include "ccgate/httpmsg.h"
#include "ccgate/log.h"
#include "ccgate/stream.h"
#include "ccgate/json.h"

#define VIA "ccgate"
#define HEAD_MAX (64 * 1024)
#define PENDING_MAX (CG_STREAM_HIGH_WATER + 2 * 64 * 1024)
#define FIFO_CAP 1024     /* requests in flight on one app connection */
#define FIFO_PAUSE 64     /* stop reading the app beyond this many */
#define LOCAL_PREFIX "/.well-known/ccgate/"
#define REPLAY_MAX (64 * 1024) /* requests larger than this are not retried */

/* UP_WAITING: parked until the attested handshake in flight (the gate) has verified the
 * server, so that a burst of new app connections costs one evidence request, not one each. */
enum up_state { UP_NONE, UP_WAITING, UP_CONNECTING, UP_HANDSHAKING, UP_READY, UP_GONE };
/* What the connection's one timer currently measures. */
enum timer_kind { T_NONE, T_HEADERS, T_IDLE, T_HANDSHAKE, T_RESPONSE, T_LINGER };
enum entry_kind { ENTRY_FORWARD, ENTRY_FORWARD_HEAD, ENTRY_LOCAL_VERIFICATION, ENTRY_LOCAL_404 };

/* The attested leg towards ccgate-server: replaced when a key change forces a reconnect. */
struct cp_up {
    struct cg_stream s;
    struct cp_conn *c; /* NULL while pooled */
    struct cp_server *srv;
    struct cg_http_parser *resp;
    uint64_t started_ns;
    struct cp_up *pool_prev, *pool_next;
    uint64_t pooled_at_ms; /* loop time it went idle */
    time_t verified_at;    /* when its handshake completed */
    unsigned gen;          /* srv->pool_gen at the handshake */
    unsigned pooled : 1, reused : 1;
    unsigned gate : 1; /* carries a nonce: others wait for its verdict */
};

struct cp_conn {
    struct cp_conn *prev, *next;
    struct cp_server *srv;
    uint64_t id;
    struct cg_stream down;
    uv_timer_t timer;
    struct cg_http_parser *req;
    struct cp_up *up;
    enum up_state up_state;
    int nonce_retry_done;
    struct cg_buf pending; /* request bytes held until the server is verified */
    uint8_t fifo[FIFO_CAP];
    size_t fifo_head, fifo_len;
    enum cg_http_framing req_framing, resp_framing;
    int cur_local; /* the request being read is answered locally */
    uint8_t cur_local_kind;
    int resp_status;
    int head_done;       /* the head of the request being read was parsed */
    int resp_started;    /* a response head for the front request arrived */
    size_t reqs_sent;    /* forwarded requests completely read (and sent or pending) */
    enum timer_kind timer_kind;
    uint64_t front_sent_ns; /* when the front request went up (or became the front) */
    int close_after; /* the app or the server asked to close after the current exchange */
    int server_close; /* the server said close: its connection cannot be pooled */
    int cur_idempotent; /* the request being read may be sent twice */
    int replayable;     /* what went up on a reused leg can be sent again on a new one */
    int retried;
    struct cg_buf replay; /* the bytes sent on a reused leg until its first answer */
    int raw;             /* a byte pipe: TCP mode, or an HTTP connection after a 101 */
    int upgrade_pending; /* an Upgrade request went up; app bytes wait for the answer */
    struct cg_buf held;  /* app bytes that followed an Upgrade request */
    int closing_down;
    int handles;
    struct cp_conn *gate_prev, *gate_next; /* in srv's queue while UP_WAITING */
    unsigned closing : 1;
};

#define LINGER_MS 5000

static void conn_close(struct cp_conn *c, const char *reason);
static void up_start(struct cp_conn *c, int with_nonce);
static void up_discard(struct cp_conn *c);
static int pool_attach(struct cp_conn *c);
static void pool_drop(struct cp_up *u, const char *why);
static void reject(struct cp_conn *c, int status, const char *error, const char *reason);
static void on_timeout(uv_timer_t *t);

/* Starts the timer for kind; a timer already measuring that kind keeps its deadline unless
 * restart is set (a trickle of bytes must not extend the time allowed for headers). */
static void arm(struct cp_conn *c, enum timer_kind kind, unsigned ms, int restart)
{
    if (c->timer_kind == kind && !restart)
        return;
    c->timer_kind = kind;
    (void)uv_timer_start(&c->timer, on_timeout, ms, 0);
}

/* Whether the request at the front was completely read and no response head came yet. */
static int awaiting_response(const struct cp_conn *c)
{
    return c->reqs_sent > 0 && !c->resp_started;
}

/* One timer per connection: its meaning follows the state. */
static void rearm(struct cp_conn *c)
{
    struct cp_server *srv = c->srv;
    if (c->closing)
        return;
    if (c->closing_down) {
        arm(c, T_LINGER, LINGER_MS, 0);
    } else if (c->up_state == UP_WAITING || c->up_state == UP_CONNECTING ||
               c->up_state == UP_HANDSHAKING) {
        arm(c, T_HANDSHAKE, srv->handshake_timeout_ms, 0);
    } else if (c->raw) {
        arm(c, T_IDLE, srv->idle_timeout_ms, 1);
    } else if (awaiting_response(c)) {
        arm(c, T_RESPONSE, srv->response_timeout_ms, 0);
    } else if (cg_http_parser_in_message(c->req) && !c->head_done) {
        arm(c, T_HEADERS, srv->header_timeout_ms, 0);
    } else if (c->fifo_len == 0 && !cg_http_parser_in_message(c->req)) {
        arm(c, T_IDLE, srv->idle_timeout_ms, 1);
    } else {
        c->timer_kind = T_NONE;
        (void)uv_timer_stop(&c->timer);
    }
}

/* Ends the app connection after what is queued: FIN now, close once the app closed too (or
 * the linger timer fired). Reading goes on, discarding, so that closing sends no reset
 * that could destroy the answer before the app read it. */
static void end_down(struct cp_conn *c)
{
    c->closing_down = 1;
    (void)cg_stream_read_start(&c->down);
    cg_stream_shutdown(&c->down);
    rearm(c);
}

static uint8_t fifo_front(const struct cp_conn *c)
{
    return c->fifo[c->fifo_head];
}

static int fifo_push(struct cp_conn *c, uint8_t kind)
{
    if (c->fifo_len == FIFO_CAP)
        return CG_ELIMIT;
    c->fifo[(c->fifo_head + c->fifo_len) % FIFO_CAP] = kind;
    c->fifo_len++;
    return 0;
}

static void fifo_pop(struct cp_conn *c)
{
    c->fifo_head = (c->fifo_head + 1) % FIFO_CAP;
    c->fifo_len--;
}

const double cp_hist_bounds[CP_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                 1,     2.5,  5,     10,   30,  60,  HUGE_VAL};

static void observe(struct cp_hist *h, uint64_t since_ns)
{
    double v = (double)(uv_hrtime() - since_ns) / 1e9;
    size_t i = 0;
    while (i + 1 < CP_HIST_BUCKETS && v > cp_hist_bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

static void count_status(struct cp_server *srv, int status)
{
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        srv->stats.responses_by_class[cls]++;
}

/* ---- answers generated here ---- */

static void write_down(struct cp_conn *c, const void *data, size_t len)
{
    if (c->closing || c->closing_down)
        return;
    if (cg_stream_write(&c->down, data, len) < 0)
        conn_close(c, "app_write_failed");
}

static void answer(struct cp_conn *c, int status, const char *json, size_t len, int close)
{
    struct cg_buf out;
    cg_buf_init(&out, len + 1024);
    if (cg_httpmsg_response(&out, status, "application/json", json, len, close) == 0)
        write_down(c, out.data, out.len);
    cg_buf_free(&out);
    count_status(c->srv, status);
}

/* Answers every request of this connection with a 502 naming the failure, then closes. In TCP
 * mode there is no way to say why: the app connection closes (the log names the check). */
static void fail_requests(struct cp_conn *c, const char *error, const struct cg_verdict *v)
{
    if (c->srv->tcp_mode) {
        conn_close(c, error);
        return;
    }
    struct cg_buf body;
    cg_buf_init(&body, 4096);
    (void)cg_buf_printf(&body, "{\"error\": ");
    cg_json_str(&body, error);
    if (v != NULL) {
        (void)cg_buf_printf(&body, ", \"check\": ");
        cg_json_str(&body, v->check);
        (void)cg_buf_printf(&body, ", \"expected\": ");
        cg_json_str(&body, v->expected);
        (void)cg_buf_printf(&body, ", \"actual\": ");
        cg_json_str(&body, v->actual);
    }
    (void)cg_buf_printf(&body, ", \"server\": ");
    cg_json_str(&body, c->srv->server_addr.text);
    (void)cg_buf_printf(&body, "}\n");
    answer(c, 502, body.data, body.len, 1);
    cg_buf_free(&body);
    cg_buf_free(&c->pending);
    end_down(c);
}

int cp_server_verification_json(const struct cp_server *s, struct cg_buf *out)
{
    const struct cg_attestation *a = cp_fresh_attestation(&s->fresh);
    if (a == NULL) {
        (void)cg_buf_printf(out, "{\"verified\": false, \"server\": ");
        cg_json_str(out, s->server_addr.text);
        if (s->last_failure_at != 0) {
            (void)cg_buf_printf(out, ", \"last_failure\": {\"check\": ");
            cg_json_str(out, s->last_failure.check);
            (void)cg_buf_printf(out, ", \"expected\": ");
            cg_json_str(out, s->last_failure.expected);
            (void)cg_buf_printf(out, ", \"actual\": ");
            cg_json_str(out, s->last_failure.actual);
            (void)cg_buf_printf(out, "}");
        }
        (void)cg_buf_printf(out, "}\n");
        return 503;
    }
    char when[32], iat[32];
    struct tm tm;
    gmtime_r(&a->verified_at, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    time_t iat_t = (time_t)a->iat;
    gmtime_r(&iat_t, &tm);
    strftime(iat, sizeof(iat), "%Y-%m-%dT%H:%M:%SZ", &tm);
    (void)cg_buf_printf(out, "{\"verified\": true, \"server\": ");
    cg_json_str(out, s->server_addr.text);
    (void)cg_buf_printf(out, ", \"tee\": \"%s\", \"insecure\": %s", cg_ratls_tee_name(a->tag),
                        a->insecure ? "true" : "false");
    if (a->insecure)
        (void)cg_buf_printf(out, ", \"warning\": \"INSECURE: simulated TEE, no hardware "
                                 "protection\"");
    if (a->tag == CG_TAG_TDX) {
        (void)cg_buf_printf(out, ", \"measurement\": ");
        cg_json_hex(out, a->tdx.mrtd, sizeof(a->tdx.mrtd));
        (void)cg_buf_printf(out, ", \"tcb\": ");
        cg_json_tdx_status(out, &a->tdx_status);
    } else {
        (void)cg_buf_printf(out, ", \"measurement\": ");
        cg_json_hex(out, a->snp.measurement, sizeof(a->snp.measurement));
        (void)cg_buf_printf(out, ", \"tcb\": {\"reported\": ");
        cg_json_tcb(out, &a->snp.reported);
        (void)cg_buf_printf(out, ", \"committed\": ");
        cg_json_tcb(out, &a->snp.committed);
        (void)cg_buf_printf(out, ", \"launch\": ");
        cg_json_tcb(out, &a->snp.launch);
        (void)cg_buf_printf(out, "}");
    }
    if (a->gpu_appraised) {
        (void)cg_buf_printf(out, ", \"gpus\": [");
        for (size_t i = 0; i < a->n_gpus; i++) {
            (void)cg_buf_printf(out, i > 0 ? ", " : "");
            cg_json_gpu(out, &a->gpus[i]);
        }
        (void)cg_buf_printf(out, "]");
    }
    (void)cg_buf_printf(out, ", \"policy_digest\": ");
    cg_json_hex(out, s->policy->digest, sizeof(s->policy->digest));
    (void)cg_buf_printf(out, ", \"cert_sha256\": ");
    cg_json_hex(out, a->cert_sha256, sizeof(a->cert_sha256));
    (void)cg_buf_printf(out, ", \"pubkey_sha256\": ");
    cg_json_hex(out, a->spki_sha256, sizeof(a->spki_sha256));
    (void)cg_buf_printf(out, ", \"evidence_iat\": \"%s\", \"verified_at\": \"%s\"", iat, when);
    (void)cg_buf_printf(out, ", \"freshness\": \"%s\", \"report\": ",
                        a->nonce_matched ? "nonce" : "max-age");
    if (a->tag == CG_TAG_TDX)
        cg_json_tdx_quote(out, &a->tdx);
    else
        cg_json_snp_report(out, &a->snp);
    (void)cg_buf_printf(out, "}\n");
    return 200;
}

int cp_server_ready(const struct cp_server *s, time_t now)
{
    const struct cg_attestation *a = cp_fresh_attestation(&s->fresh);
    return a != NULL && now - a->verified_at <= (time_t)s->policy->freshness.max_age_s;
}

/* Writes the answers to local requests that reached the front of the queue. */
static void emit_locals(struct cp_conn *c)
{
    while (c->fifo_len > 0 && fifo_front(c) >= ENTRY_LOCAL_VERIFICATION && !c->closing) {
        uint8_t kind = fifo_front(c);
        fifo_pop(c);
        struct cg_buf body;
        cg_buf_init(&body, 16 * 1024);
        int status;
        if (kind == ENTRY_LOCAL_VERIFICATION) {
            status = cp_server_verification_json(c->srv, &body);
        } else {
            status = 404;
            (void)cg_buf_printf(&body, "{\"error\": \"not_found\", \"hint\": \"%s"
                                       "verification\"}\n",
                                LOCAL_PREFIX);
        }
        answer(c, status, body.data, body.len, 0);
        cg_buf_free(&body);
    }
}

/* ---- app -> server ---- */

/* RFC 9110 9.2.2: methods whose repetition has the effect of one request. */
static int is_idempotent(const char *m)
{
    static const char *const list[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
        if (strcmp(m, list[i]) == 0)
            return 1;
    return 0;
}

static void send_up(struct cp_conn *c, const void *data, size_t len)
{
    if (c->replayable && cg_buf_append(&c->replay, data, len) < 0) {
        c->replayable = 0;
        cg_buf_free(&c->replay);
    }
    if (c->up_state == UP_READY) {
        if (cg_stream_write(&c->up->s, data, len) < 0)
            conn_close(c, "server_write_failed");
        return;
    }
    if (c->up_state == UP_NONE && !c->srv->tcp_mode && pool_attach(c)) {
        /* A pooled leg may turn out closed by the server: keep what it carries until the
         * first answer, to send it again on a new, freshly verified connection. */
        c->replayable = c->cur_idempotent && !c->retried && c->reqs_sent == 0;
        if (c->replayable && cg_buf_append(&c->replay, data, len) < 0) {
            c->replayable = 0;
            cg_buf_free(&c->replay);
        }
        if (cg_stream_write(&c->up->s, data, len) < 0)
            conn_close(c, "server_write_failed");
        return;
    }
    if (cg_buf_append(&c->pending, data, len) < 0) {
        conn_close(c, "pending_overflow");
        return;
    }
    if (c->up_state == UP_NONE)
        up_start(c, 0);
}

/* Bytes of body up to which a re-chunked piece goes out as one write (size line, data, CRLF):
 * an SSE event is then one packet, or one TLS record, instead of three. */
#define CHUNK_COALESCE (16 * 1024)

/* Writes one chunk of a re-chunked body with out (send_up or write_down). */
static void write_chunk(struct cp_conn *c, void (*out)(struct cp_conn *, const void *, size_t),
                        const uint8_t *data, size_t len)
{
    char line[32];
    size_t n = cg_http_chunk_header(line, sizeof(line), len);
    if (len <= CHUNK_COALESCE) {
        uint8_t buf[sizeof(line) + CHUNK_COALESCE + 2];
        memcpy(buf, line, n);
        memcpy(buf + n, data, len);
        memcpy(buf + n + len, "\r\n", 2);
        out(c, buf, n + len + 2);
        return;
    }
    out(c, line, n);
    out(c, data, len);
    out(c, "\r\n", 2);
}

static int req_on_head(void *arg, const struct cg_http_head *h)
{
    struct cp_conn *c = arg;
    c->srv->stats.requests_total++;
    c->head_done = 1;
    c->cur_idempotent = is_idempotent(h->method);
    if (!c->cur_idempotent) {
        c->replayable = 0;
        cg_buf_free(&c->replay);
    }
    c->cur_local = strncmp(h->target, LOCAL_PREFIX, strlen(LOCAL_PREFIX)) == 0;
    if (!h->keep_alive)
        c->close_after = 1;
    if (c->cur_local) {
        c->srv->stats.local_requests++;
        c->cur_local_kind = strcmp(h->target, LOCAL_PREFIX "verification") == 0 &&
                                    (strcmp(h->method, "GET") == 0 ||
                                     strcmp(h->method, "HEAD") == 0)
                                ? ENTRY_LOCAL_VERIFICATION
                                : ENTRY_LOCAL_404;
        return 0;
    }
    if (h->upgrade) {
        /* Forwarded; the app's next bytes wait for the answer: a 101 makes the connection a
         * pipe, anything else ends it (those bytes are not HTTP we parsed). */
        c->upgrade_pending = 1;
        c->close_after = 1;
    }
    char *head = malloc(HEAD_MAX);
    if (head == NULL)
        return UV_ENOMEM;
    long n = cg_http_head_write(h, VIA, 1, head, HEAD_MAX, &c->req_framing);
    if (n >= 0) {
        if (fifo_push(c, strcmp(h->method, "HEAD") == 0 ? ENTRY_FORWARD_HEAD : ENTRY_FORWARD) <
            0)
            n = CG_ELIMIT;
        else
            send_up(c, head, (size_t)n);
    }
    free(head);
    return n < 0 ? (int)n : 0;
}

static int req_on_body(void *arg, const uint8_t *data, size_t len)
{
    struct cp_conn *c = arg;
    if (c->cur_local || len == 0)
        return 0;
    if (c->req_framing == CG_HTTP_BODY_CHUNKED)
        write_chunk(c, send_up, data, len);
    else
        send_up(c, data, len);
    return 0;
}

static int req_on_complete(void *arg)
{
    struct cp_conn *c = arg;
    c->head_done = 0;
    if (c->cur_local) {
        c->cur_local = 0;
        if (fifo_push(c, c->cur_local_kind) < 0)
            return CG_ELIMIT;
        if (c->fifo_len == 1)
            emit_locals(c);
        return 0;
    }
    if (c->req_framing == CG_HTTP_BODY_CHUNKED)
        send_up(c, "0\r\n\r\n", 5);
    if (c->reqs_sent++ == 0)
        c->front_sent_ns = uv_hrtime();
    return 0;
}

static const struct cg_http_callbacks req_cb = {req_on_head, req_on_body, req_on_complete};

/* ---- server -> app ---- */

static void arm_response(struct cp_conn *c)
{
    if (c->up != NULL && c->fifo_len > 0 && fifo_front(c) == ENTRY_FORWARD_HEAD)
        cg_http_parser_expect_head_response(c->up->resp);
}

static int resp_on_head(void *arg, const struct cg_http_head *h)
{
    struct cp_conn *c = arg;
    if (c->fifo_len == 0 || fifo_front(c) >= ENTRY_LOCAL_VERIFICATION)
        return CG_EHTTP; /* a response nobody asked for */
    c->resp_status = h->status;
    int informational = h->status >= 100 && h->status < 200;
    if (!informational && c->reqs_sent > 0)
        observe(&c->srv->stats.response_latency, c->front_sent_ns);
    /* Any head is progress; after a 1xx the final response gets a full timeout again. */
    c->resp_started = !informational;
    c->timer_kind = T_NONE;
    if (!informational && !h->keep_alive)
        c->close_after = c->server_close = 1;
    int keep = !c->close_after || informational;
    char *head = malloc(HEAD_MAX);
    if (head == NULL)
        return UV_ENOMEM;
    long n = cg_http_head_write(h, VIA, keep, head, HEAD_MAX, &c->resp_framing);
    if (n >= 0)
        write_down(c, head, (size_t)n);
    free(head);
    return n < 0 ? (int)n : 0;
}

static int resp_on_body(void *arg, const uint8_t *data, size_t len)
{
    struct cp_conn *c = arg;
    if (len == 0)
        return 0;
    if (c->resp_framing == CG_HTTP_BODY_CHUNKED)
        write_chunk(c, write_down, data, len);
    else
        write_down(c, data, len);
    return 0;
}

static void start_pipe(struct cp_conn *c);

static int resp_on_complete(void *arg)
{
    struct cp_conn *c = arg;
    if (c->resp_status == 101) {
        if (!c->upgrade_pending)
            return CG_EHTTP; /* switching protocols nobody asked for */
        start_pipe(c);
        return 0;
    }
    if (c->resp_status >= 100 && c->resp_status < 200)
        return 0; /* the final response follows */
    if (c->resp_framing == CG_HTTP_BODY_CHUNKED)
        write_down(c, "0\r\n\r\n", 5);
    count_status(c->srv, c->resp_status);
    /* Never a header value or payload byte: ids, status and sizes only. */
    cg_log_debug("request", "id=%llu status=%d from_app=%llu to_app=%llu",
                 (unsigned long long)c->id, c->resp_status, (unsigned long long)c->down.bytes_in,
                 (unsigned long long)c->down.bytes_out);
    fifo_pop(c);
    if (c->reqs_sent > 0 && --c->reqs_sent > 0)
        c->front_sent_ns = uv_hrtime();
    c->resp_started = 0;
    c->timer_kind = T_NONE;
    emit_locals(c);
    arm_response(c);
    if (c->close_after && c->fifo_len == 0) {
        end_down(c);
    } else if (c->fifo_len < FIFO_PAUSE && !c->down.eof) {
        (void)cg_stream_read_start(&c->down);
    }
    rearm(c);
    return 0;
}

static const struct cg_http_callbacks resp_cb = {resp_on_head, resp_on_body, resp_on_complete};

/* ---- a byte pipe: TCP mode, or a connection upgraded by a 101 ---- */

/* The server answered an Upgrade with 101: from now on bytes pass untouched both ways. */
static void start_pipe(struct cp_conn *c)
{
    count_status(c->srv, 101);
    c->raw = 1;
    c->upgrade_pending = 0;
    fifo_pop(c);
    c->reqs_sent = 0;
    c->resp_started = 0;
    c->timer_kind = T_NONE;
    if (c->held.len > 0)
        send_up(c, c->held.data, c->held.len);
    cg_buf_free(&c->held);
    if (c->closing)
        return;
    if (c->down.eof)
        cg_stream_shutdown(&c->up->s);
    else
        (void)cg_stream_read_start(&c->down);
    rearm(c);
}

/* Both directions ended (FIN one way, close_notify the other) and all is written. */
static void pipe_maybe_done(struct cp_conn *c)
{
    if (c->closing || c->up == NULL)
        return;
    if (c->down.eof && c->up->s.eof && c->down.queued == 0 && c->up->s.queued == 0)
        conn_close(c, "done");
}

/* ---- the attested leg ---- */

static void up_closed(struct cg_stream *s, void *arg)
{
    struct cp_up *u = arg;
    (void)s;
    struct cp_conn *c = u->c;
    cg_http_parser_free(u->resp);
    free(u);
    if (c != NULL && --c->handles == 0)
        free(c);
}

/* ---- the gate: one attested handshake with a nonce at a time ---- */

static void gate_unlink(struct cp_conn *c)
{
    struct cp_server *srv = c->srv;
    if (c->up_state != UP_WAITING)
        return;
    if (c->gate_prev != NULL)
        c->gate_prev->gate_next = c->gate_next;
    else
        srv->gate_head = c->gate_next;
    if (c->gate_next != NULL)
        c->gate_next->gate_prev = c->gate_prev;
    else
        srv->gate_tail = c->gate_prev;
    c->gate_prev = c->gate_next = NULL;
    c->up_state = UP_NONE;
}

static void gate_park(struct cp_conn *c)
{
    struct cp_server *srv = c->srv;
    c->up_state = UP_WAITING;
    c->gate_next = NULL;
    c->gate_prev = srv->gate_tail;
    if (srv->gate_tail != NULL)
        srv->gate_tail->gate_next = c;
    else
        srv->gate_head = c;
    srv->gate_tail = c;
    rearm(c);
}

/* The gate's handshake ended. With the server verified, every waiting connection goes on
 * without a nonce; without, the first one becomes the next gate and the others keep waiting. */
static void gate_end(struct cp_up *u)
{
    struct cp_server *srv = u->srv;
    if (!u->gate)
        return;
    u->gate = 0;
    srv->gate_inflight--;
    while (srv->gate_head != NULL && srv->gate_inflight == 0) {
        struct cp_conn *w = srv->gate_head;
        int verified = !cp_fresh_needs_nonce(&srv->fresh, time(NULL));
        gate_unlink(w);
        up_start(w, 0);
        if (!verified)
            break;
    }
}

static void up_discard(struct cp_conn *c)
{
    struct cp_up *u = c->up;
    if (u == NULL)
        return;
    gate_end(u);
    c->up = NULL;
    cg_stream_close(&u->s, up_closed, u);
}

/* ---- the pool of idle attested connections ---- */

static void pool_unlink(struct cp_server *srv, struct cp_up *u)
{
    if (!u->pooled)
        return;
    if (u->pool_prev != NULL)
        u->pool_prev->pool_next = u->pool_next;
    else
        srv->pool = u->pool_next;
    if (u->pool_next != NULL)
        u->pool_next->pool_prev = u->pool_prev;
    u->pool_prev = u->pool_next = NULL;
    u->pooled = 0;
    srv->pool_len--;
}

static void pool_drop(struct cp_up *u, const char *why)
{
    struct cp_server *srv = u->srv;
    pool_unlink(srv, u);
    srv->stats.pool_dropped++;
    cg_log_debug("pool.drop", "reason=%s pooled=%zu", why, srv->pool_len);
    cg_stream_shutdown(&u->s);
    cg_stream_close(&u->s, up_closed, u);
}

/* Whether the connection's attested leg is between messages and may serve another app: both
 * messages complete, nobody said close, not upgraded, same key generation, still fresh. */
static int up_poolable(const struct cp_conn *c)
{
    const struct cp_server *srv = c->srv;
    const struct cp_up *u = c->up;
    if (u == NULL || srv->pool_max == 0 || srv->stopping || srv->pool_len >= srv->pool_max)
        return 0;
    if (c->raw || c->upgrade_pending || c->up_state != UP_READY || c->server_close)
        return 0;
    if (c->fifo_len != 0 || c->reqs_sent != 0 || c->pending.len != 0 ||
        cg_http_parser_in_message(c->req) || cg_http_parser_in_message(u->resp))
        return 0;
    if (u->s.eof || u->s.failed || u->s.shut || u->gen != srv->pool_gen)
        return 0;
    return time(NULL) - u->verified_at < (time_t)srv->policy->freshness.max_age_s;
}

/* Moves the connection's attested leg into the pool (the caller checked up_poolable). It
 * keeps reading so that a close by the server is noticed while it waits. */
static void pool_put(struct cp_conn *c)
{
    struct cp_server *srv = c->srv;
    struct cp_up *u = c->up;
    c->up = NULL;
    c->up_state = UP_NONE;
    c->handles--;
    u->c = NULL;
    u->pooled = 1;
    u->pooled_at_ms = uv_now(srv->loop);
    u->pool_prev = NULL;
    u->pool_next = srv->pool;
    if (srv->pool != NULL)
        srv->pool->pool_prev = u;
    srv->pool = u;
    srv->pool_len++;
    (void)cg_stream_read_start(&u->s);
}

static const struct cg_http_callbacks resp_cb;

/* Takes the most recently used pooled leg that is still usable, or NULL. */
static struct cp_up *pool_take(struct cp_server *srv)
{
    time_t now = time(NULL);
    while (srv->pool != NULL) {
        struct cp_up *u = srv->pool;
        if (u->gen != srv->pool_gen || u->s.eof || u->s.failed ||
            now - u->verified_at >= (time_t)srv->policy->freshness.max_age_s) {
            pool_drop(u, "stale");
            continue;
        }
        pool_unlink(srv, u);
        return u;
    }
    return NULL;
}

/* Gives c a pooled attested leg: 1 when it got one, 0 when the pool had none. */
static int pool_attach(struct cp_conn *c)
{
    struct cp_server *srv = c->srv;
    struct cp_up *u = pool_take(srv);
    if (u == NULL)
        return 0;
    struct cg_http_parser *p = NULL;
    if (cg_http_parser_new(CG_HTTP_RESPONSE, NULL, &resp_cb, c, &p) < 0) {
        pool_drop(u, "no_memory");
        return 0;
    }
    cg_http_parser_free(u->resp);
    u->resp = p;
    u->c = c;
    u->reused = 1;
    c->up = u;
    c->handles++;
    c->up_state = UP_READY;
    srv->stats.pool_reused++;
    arm_response(c);
    return 1;
}

static void pool_sweep(uv_timer_t *t)
{
    struct cp_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    struct cp_up *u = srv->pool;
    while (u != NULL) {
        struct cp_up *next = u->pool_next;
        if (now - u->pooled_at_ms >= srv->pool_idle_ms)
            pool_drop(u, "idle");
        u = next;
    }
}

void cp_server_pool_flush(struct cp_server *s)
{
    s->pool_gen++;
    while (s->pool != NULL)
        pool_drop(s->pool, "flush");
}

static void record_failure(struct cp_server *srv, const struct cg_verdict *v)
{
    srv->last_failure = *v;
    srv->last_failure_at = time(NULL);
    srv->stats.verify_failed++;
    for (size_t i = 0; i < srv->stats.n_checks; i++) {
        if (strcmp(srv->stats.failed_checks[i].check, v->check) == 0) {
            srv->stats.failed_checks[i].count++;
            return;
        }
    }
    if (srv->stats.n_checks < CP_MAX_CHECKS) {
        size_t i = srv->stats.n_checks++;
        snprintf(srv->stats.failed_checks[i].check, sizeof(srv->stats.failed_checks[i].check),
                 "%s", v->check);
        srv->stats.failed_checks[i].count = 1;
    }
}

static void up_on_handshake(struct cg_stream *s, int status)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    struct cp_server *srv = c->srv;
    c->timer_kind = T_NONE;
    (void)uv_timer_stop(&c->timer);
    gate_end(u);
    if (status == 0) {
        srv->stats.handshakes++;
        srv->stats.handshake_seconds_sum += (double)(uv_hrtime() - u->started_ns) / 1e9;
        if (cg_tls_sent_nonce(s->tls)) {
            srv->stats.verify_ok++;
            observe(&srv->stats.verification_latency, u->started_ns);
        }
        c->up_state = UP_READY;
        u->verified_at = time(NULL);
        u->gen = srv->pool_gen;
        arm_response(c);
        if (c->pending.len > 0 && cg_stream_write(s, c->pending.data, c->pending.len) < 0) {
            conn_close(c, "server_write_failed");
            return;
        }
        cg_buf_free(&c->pending);
        if (c->raw && c->down.eof)
            cg_stream_shutdown(s);
        if (!c->down.eof && c->fifo_len < FIFO_PAUSE)
            (void)cg_stream_read_start(&c->down);
        rearm(c);
        return;
    }
    if (cp_fresh_key_changed(s->tls) && !c->nonce_retry_done) {
        /* The server presents a key we have not verified (restart, rotation): ask for
         * fresh evidence bound to that key. */
        srv->stats.key_changes++;
        cg_log_info("attest.key_changed", "id=%llu server=%s: reconnecting with a nonce",
                    (unsigned long long)c->id, srv->server_addr.text);
        cp_fresh_forget(&srv->fresh);
        cp_server_pool_flush(srv);
        c->nonce_retry_done = 1;
        up_discard(c);
        up_start(c, 1);
        return;
    }
    const struct cg_verdict *v = cg_tls_verdict(s->tls);
    struct cg_verdict tls_v;
    if (v == NULL || v->check[0] == '\0') {
        (void)cg_reject(&tls_v, CG_ETLS, "tls.handshake", "a TLS 1.3 RA-TLS server",
                        "%s", cg_strerror(status));
        v = &tls_v;
    }
    record_failure(srv, v);
    /* Nothing verified before this failure is trusted again without new evidence. */
    cp_fresh_forget(&srv->fresh);
    cp_server_pool_flush(srv);
    cg_log_error("attest.failed",
                 "id=%llu server=%s check=%s expected=\"%s\" actual=\"%s\": nothing was sent",
                 (unsigned long long)c->id, srv->server_addr.text, v->check, v->expected,
                 v->actual);
    c->up_state = UP_GONE;
    struct cg_verdict copy = *v;
    up_discard(c);
    fail_requests(c, "attestation_failed", &copy);
}

static void up_on_read(struct cg_stream *s, const uint8_t *data, size_t len)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    if (c == NULL) {
        pool_drop(u, "unexpected_data"); /* nothing was asked: the stream is out of step */
        return;
    }
    if (c->raw) {
        write_down(c, data, len);
        if (!c->closing && c->down.queued >= CG_STREAM_HIGH_WATER)
            cg_stream_read_stop(s);
        rearm(c);
        return;
    }
    if (c->replayable) {
        c->replayable = 0;
        cg_buf_free(&c->replay);
    }
    long n = cg_http_parser_feed(u->resp, data, len);
    if (n < 0) {
        cg_log_warn("server.bad_response", "id=%llu reason=\"%s\"", (unsigned long long)c->id,
                    cg_http_parser_reason(u->resp));
        conn_close(c, "bad_response");
        return;
    }
    if (c->raw && (size_t)n < len)
        write_down(c, data + n, len - (size_t)n); /* the first bytes of the tunnel */
    if (!c->closing && c->down.queued >= CG_STREAM_HIGH_WATER)
        cg_stream_read_stop(s);
}

/* A reused leg died before any answer: send the same bytes again over a new connection,
 * which is verified before they go (idempotent requests only, once). Returns 1 if so. */
static int retry(struct cp_conn *c, const char *why)
{
    if (!c->replayable || c->up == NULL || !c->up->reused)
        return 0;
    struct cp_server *srv = c->srv;
    srv->stats.retries++;
    cg_log_info("request.retry", "id=%llu reason=%s bytes=%zu", (unsigned long long)c->id, why,
                c->replay.len);
    c->replayable = 0;
    c->retried = 1;
    up_discard(c);
    c->up_state = UP_NONE;
    c->resp_started = 0;
    struct cg_buf tmp = c->pending;
    c->pending = c->replay;
    c->pending.max = PENDING_MAX;
    c->replay = tmp;
    cg_buf_free(&c->replay);
    up_start(c, 0);
    return 1;
}

/* The attested leg ended (error or close) under an app connection: retry, or answer 502 when
 * no answer began, or cut the app connection (a truncated answer stays truncated). */
static void up_lost(struct cp_conn *c, const char *why)
{
    if (retry(c, why))
        return;
    if (c->fifo_len > 0 && !c->resp_started && fifo_front(c) < ENTRY_LOCAL_VERIFICATION) {
        reject(c, 502, "server_closed", why);
        return;
    }
    conn_close(c, why);
}

static void up_on_eof(struct cg_stream *s)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    if (c == NULL) {
        pool_drop(u, "server_closed");
        return;
    }
    if (c->raw) {
        cg_stream_shutdown(&c->down);
        pipe_maybe_done(c);
        return;
    }
    int head_went_up = c->head_done && !c->cur_local;
    if (c->fifo_len == 0 && c->pending.len == 0 && !head_went_up &&
        !cg_http_parser_in_message(u->resp)) {
        /* The server ended an idle leg: the app's connection stays; its next request takes
         * a pooled or new leg (a request head still arriving has not gone up yet). */
        up_discard(c);
        c->up_state = UP_NONE;
        return;
    }
    int rc = cg_http_parser_finish(u->resp);
    if (rc < 0) {
        up_lost(c, "server_truncated");
        return;
    }
    if (c->fifo_len == 0 && !cg_http_parser_in_message(c->req)) {
        /* An answer delimited by the close just ended. */
        up_discard(c);
        c->up_state = UP_NONE;
        return;
    }
    up_lost(c, "server_closed");
}

static void up_on_error(struct cg_stream *s, int err)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    (void)err;
    if (c == NULL) {
        pool_drop(u, "server_error");
        return;
    }
    up_lost(c, "server_error");
}

static void up_on_drain(struct cg_stream *s)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    if (c == NULL)
        return;
    if (!c->down.eof && !c->closing_down && c->fifo_len < FIFO_PAUSE)
        (void)cg_stream_read_start(&c->down);
    if (c->raw)
        pipe_maybe_done(c);
}

static void up_on_connect(struct cg_stream *s, int status)
{
    struct cp_up *u = s->data;
    struct cp_conn *c = u->c;
    if (status < 0) {
        c->srv->stats.server_unreachable++;
        struct cg_verdict v;
        (void)cg_reject(&v, status, "server.connect", c->srv->server_addr.text, "%s",
                        cg_strerror(status));
        cg_log_error("server.unreachable", "id=%llu server=%s err=\"%s\"",
                     (unsigned long long)c->id, c->srv->server_addr.text, cg_strerror(status));
        c->up_state = UP_GONE;
        up_discard(c);
        fail_requests(c, "server_unreachable", &v);
        return;
    }
    c->up_state = UP_HANDSHAKING;
    (void)cg_stream_read_start(s);
    cg_stream_handshake(s);
}

static const struct cg_stream_callbacks up_cb = {
    .on_read = up_on_read,
    .on_eof = up_on_eof,
    .on_error = up_on_error,
    .on_handshake = up_on_handshake,
    .on_drain = up_on_drain,
    .on_connect = up_on_connect,
};

static void up_start(struct cp_conn *c, int with_nonce)
{
    struct cp_server *srv = c->srv;
    int nonce = with_nonce || cp_fresh_needs_nonce(&srv->fresh, time(NULL));
    if (nonce && !with_nonce && srv->gate_inflight > 0) {
        gate_park(c);
        return;
    }
    struct cp_up *u = calloc(1, sizeof(*u));
    struct cg_tls *t = NULL;
    if (u == NULL)
        goto fail;
    u->c = c;
    u->srv = srv;
    u->started_ns = uv_hrtime();
    if (!srv->tcp_mode && cg_http_parser_new(CG_HTTP_RESPONSE, NULL, &resp_cb, c, &u->resp) < 0) {
        free(u);
        goto fail;
    }
    if (cg_stream_init(&u->s, srv->loop, 0, &up_cb, u) < 0) {
        cg_http_parser_free(u->resp);
        free(u);
        goto fail;
    }
    c->handles++;
    c->up = u;
    if (nonce) {
        srv->stats.handshakes_with_nonce++;
        u->gate = 1;
        srv->gate_inflight++;
    }
    if (cp_fresh_tls_new(&srv->fresh, nonce, &t) < 0)
        goto fail;
    cg_stream_set_tls(&u->s, t);
    c->up_state = UP_CONNECTING;
    c->timer_kind = T_NONE;
    rearm(c);
    if (cg_stream_connect(&u->s, &srv->server_addr) < 0)
        goto fail;
    return;
fail:
    up_discard(c);
    c->up_state = UP_GONE;
    conn_close(c, "server_connect_failed");
}

/* ---- the app leg ---- */

static void conn_freed(uv_handle_t *h)
{
    struct cp_conn *c = h->data;
    if (--c->handles == 0)
        free(c);
}

static void down_closed(struct cg_stream *s, void *arg)
{
    struct cp_conn *c = arg;
    (void)s;
    if (--c->handles == 0)
        free(c);
}

/* Runs on_idle once, when stopping and the last connection closed. */
static void notify_idle(struct cp_server *srv)
{
    if (!srv->stopping || srv->conns != NULL || srv->on_idle == NULL || srv->idle_notified)
        return;
    srv->idle_notified = 1;
    srv->on_idle(srv);
}

static void conn_close(struct cp_conn *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = 1;
    gate_unlink(c);
    struct cp_server *srv = c->srv;
    srv->stats.conns_active--;
    srv->stats.bytes_from_app += c->down.bytes_in;
    srv->stats.bytes_to_app += c->down.bytes_out;
    cg_log_debug("conn.close", "id=%llu reason=%s from_app=%llu to_app=%llu",
                 (unsigned long long)c->id, reason, (unsigned long long)c->down.bytes_in,
                 (unsigned long long)c->down.bytes_out);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (up_poolable(c))
        pool_put(c);
    cg_http_parser_free(c->req);
    c->req = NULL;
    cg_buf_free(&c->pending);
    cg_buf_free(&c->held);
    cg_buf_free(&c->replay);
    if (c->up != NULL) {
        if (c->up_state == UP_READY)
            cg_stream_shutdown(&c->up->s); /* close_notify: a clean end, not a truncation */
        c->up->c = NULL;
        c->handles--;
        up_discard(c);
    }
    uv_close((uv_handle_t *)&c->timer, conn_freed);
    cg_stream_close(&c->down, down_closed, c);
    notify_idle(srv);
}

/* Answers status with a JSON error naming reason, then ends the app connection (and the
 * attested leg, which may hold a half-sent request or a late answer) once it is written. */
static void reject(struct cp_conn *c, int status, const char *error, const char *reason)
{
    struct cg_buf body;
    cg_buf_init(&body, 1024);
    (void)cg_buf_printf(&body, "{\"error\": ");
    cg_json_str(&body, error);
    (void)cg_buf_printf(&body, ", \"reason\": ");
    cg_json_str(&body, reason);
    (void)cg_buf_printf(&body, "}\n");
    if (!c->closing_down)
        answer(c, status, body.data, body.len, 1);
    cg_buf_free(&body);
    cg_log_info("request.rejected", "id=%llu status=%d error=%s", (unsigned long long)c->id,
                status, error);
    if (c->up != NULL && c->up_state == UP_READY && !c->raw) {
        cg_stream_shutdown(&c->up->s);
        up_discard(c);
        c->up_state = UP_GONE;
    }
    end_down(c);
}

static void on_timeout(uv_timer_t *t)
{
    struct cp_conn *c = t->data;
    enum timer_kind kind = c->timer_kind;
    c->timer_kind = T_NONE;
    if (kind == T_LINGER || c->closing_down) {
        conn_close(c, "closed");
        return;
    }
    if (kind == T_HEADERS) {
        if (cg_http_parser_in_message(c->req))
            reject(c, 408, "request_timeout", "the request head did not arrive in time");
        else
            conn_close(c, "header_timeout");
        return;
    }
    if (kind == T_RESPONSE) {
        c->srv->stats.response_timeouts++;
        reject(c, 504, "upstream_timeout", "no response from the server in time");
        return;
    }
    if (kind == T_HANDSHAKE) {
        gate_unlink(c);
        struct cg_verdict v;
        (void)cg_reject(&v, CG_ETIMEOUT, "server.handshake_timeout", "a handshake in time",
                        "none after %u ms", c->srv->handshake_timeout_ms);
        record_failure(c->srv, &v);
        cg_log_error("attest.failed", "id=%llu server=%s check=%s actual=\"%s\": nothing was sent",
                     (unsigned long long)c->id, c->srv->server_addr.text, v.check, v.actual);
        c->up_state = UP_GONE;
        up_discard(c);
        fail_requests(c, "attestation_failed", &v);
        return;
    }
    conn_close(c, "idle_timeout");
}

static void down_on_read(struct cg_stream *s, const uint8_t *data, size_t len)
{
    struct cp_conn *c = s->data;
    if (c->closing_down)
        return;
    if (c->raw) {
        send_up(c, data, len);
        if (c->closing)
            return;
        if (c->pending.len >= CG_STREAM_HIGH_WATER ||
            (c->up_state == UP_READY && c->up->s.queued >= CG_STREAM_HIGH_WATER))
            cg_stream_read_stop(s);
        rearm(c);
        return;
    }
    if (c->upgrade_pending) {
        if (cg_buf_append(&c->held, data, len) < 0)
            reject(c, 400, "bad_request", "too many bytes before the upgrade was answered");
        else
            cg_stream_read_stop(s);
        return;
    }
    long n = cg_http_parser_feed(c->req, data, len);
    if (c->closing)
        return;
    if (n >= 0 && c->upgrade_pending) {
        if (cg_buf_append(&c->held, data + n, len - (size_t)n) < 0) {
            reject(c, 400, "bad_request", "too many bytes before the upgrade was answered");
            return;
        }
        cg_stream_read_stop(s);
        rearm(c);
        return;
    }
    if (n < 0) {
        int status = cg_http_parser_status(c->req);
        reject(c, status >= 400 ? status : 400, "bad_request", cg_http_parser_reason(c->req));
        return;
    }
    int busy = c->fifo_len >= FIFO_PAUSE || c->pending.len >= CG_STREAM_HIGH_WATER ||
               (c->up_state == UP_READY && c->up->s.queued >= CG_STREAM_HIGH_WATER);
    if (busy)
        cg_stream_read_stop(s);
    rearm(c);
}

static void down_on_eof(struct cg_stream *s)
{
    struct cp_conn *c = s->data;
    if (c->raw) {
        /* FIN from the app becomes close_notify; the server half-closes its upstream. */
        if (c->up_state == UP_READY)
            cg_stream_shutdown(&c->up->s);
        pipe_maybe_done(c);
        return;
    }
    if (c->closing_down) {
        if (s->queued == 0)
            conn_close(c, "done");
        return;
    }
    if (cg_http_parser_in_message(c->req) || c->fifo_len == 0) {
        conn_close(c, c->fifo_len == 0 ? "app_closed" : "app_truncated");
        return;
    }
    /* The app half-closed after its requests: answer them, then close. */
    c->close_after = 1;
}

static void down_on_error(struct cg_stream *s, int err)
{
    (void)err;
    conn_close(s->data, "app_error");
}

static void down_on_drain(struct cg_stream *s)
{
    struct cp_conn *c = s->data;
    if (c->closing_down && s->queued == 0 && s->eof) {
        conn_close(c, "done");
        return;
    }
    if (c->up_state == UP_READY)
        (void)cg_stream_read_start(&c->up->s);
    if (c->raw)
        pipe_maybe_done(c);
}

static const struct cg_stream_callbacks down_cb = {
    .on_read = down_on_read,
    .on_eof = down_on_eof,
    .on_error = down_on_error,
    .on_drain = down_on_drain,
};

static void on_connection(uv_stream_t *listener, int status)
{
    struct cp_server *srv = listener->data;
    if (status < 0 || srv->stopping)
        return;
    struct cp_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->srv = srv;
    c->id = ++srv->stats.conns_total;
    cg_buf_init(&c->pending, PENDING_MAX);
    cg_buf_init(&c->held, 2 * 64 * 1024);
    cg_buf_init(&c->replay, REPLAY_MAX);
    if (cg_stream_init(&c->down, srv->loop, 0, &down_cb, c) < 0) {
        free(c);
        return;
    }
    c->handles = 2;
    (void)uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    srv->stats.conns_active++;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    if (cg_stream_accept(&c->down, listener) < 0) {
        conn_close(c, "accept_failed");
        return;
    }
    if (srv->stats.conns_active > srv->max_conns) {
        srv->stats.conns_refused++;
        if (srv->tcp_mode) {
            conn_close(c, "too_many_connections");
            return;
        }
        /* Answer 503 at once; the request is read and dropped so that closing does not
         * reset the connection before the app read the answer. */
        reject(c, 503, "too_many_connections", "the client sidecar is at max-connections");
        return;
    }
    if (srv->tcp_mode) {
        c->raw = 1;
        /* The attested leg starts at once; app bytes wait in pending until it is verified. */
        if (cg_stream_read_start(&c->down) < 0) {
            conn_close(c, "init_failed");
            return;
        }
        up_start(c, 0);
        return;
    }
    if (cg_http_parser_new(CG_HTTP_REQUEST, &srv->limits, &req_cb, c, &c->req) < 0 ||
        cg_stream_read_start(&c->down) < 0) {
        conn_close(c, "init_failed");
        return;
    }
    arm(c, T_HEADERS, srv->header_timeout_ms, 1);
}

int cp_server_start(struct cp_server *s)
{
    int rc = uv_tcp_init(s->loop, &s->listener.tcp);
    if (rc < 0)
        return rc;
    s->listener.handle.data = s;
    rc = uv_tcp_bind(&s->listener.tcp, (const struct sockaddr *)&s->listen_addr.ss, 0);
    if (rc == 0)
        rc = uv_listen(&s->listener.stream, 511, on_connection);
    if (rc < 0) {
        uv_close(&s->listener.handle, NULL);
        return rc;
    }
    (void)uv_timer_init(s->loop, &s->pool_timer);
    s->pool_timer.data = s;
    unsigned sweep = s->pool_idle_ms < 2000 ? s->pool_idle_ms / 2 + 1 : 1000;
    (void)uv_timer_start(&s->pool_timer, pool_sweep, sweep, sweep);
    uv_unref((uv_handle_t *)&s->pool_timer);
    return 0;
}

void cp_server_stop(struct cp_server *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    uv_close(&s->listener.handle, NULL);
    uv_close((uv_handle_t *)&s->pool_timer, NULL);
    cp_server_pool_flush(s);
    /* Idle keep-alive connections end now; busy ones after their last response. */
    for (struct cp_conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->raw)
            continue; /* a byte stream has no safe point to stop: the deadline ends it */
        if (c->closing_down || (c->fifo_len == 0 && !cg_http_parser_in_message(c->req)))
            conn_close(c, "shutdown");
        else
            c->close_after = 1;
    }
    notify_idle(s);
}

void cp_server_set_policy(struct cp_server *s, const struct cg_policy *policy)
{
    int changed = memcmp(s->policy->digest, policy->digest, sizeof(policy->digest)) != 0;
    s->policy = policy;
    cp_fresh_set_policy(&s->fresh, policy);
    if (changed)
        cp_server_pool_flush(s);
}

void cp_server_abort(struct cp_server *s)
{
    while (s->conns != NULL)
        conn_close(s->conns, "shutdown_deadline");
}
