#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ccgate/httpmsg.h"
#include "ccgate/json.h"
#include "ccgate/log.h"
#include "cp_int.h"

/*
 * The app leg: requests are read into a queue of exchanges and answered in the order they
 * came, whether the server answers them or the client does (the verification endpoint, a
 * refused request, a server that failed). One state per connection, one timer re-armed per
 * state, one close path that logs its reason once.
 */

/* ---- the queue of exchanges ---- */

static struct cp_exchange *tail(struct cp_conn *c)
{
    return c->q_len > 0 ? &c->q[(c->q_head + c->q_len - 1) % c->q_cap] : NULL;
}

/* Appends an exchange; NULL at CP_QUEUE_CAP or without memory. */
static struct cp_exchange *q_push(struct cp_conn *c, enum cp_xkind kind)
{
    if (c->q_len == c->q_cap) {
        if (c->q_cap == CP_QUEUE_CAP)
            return NULL;
        uint16_t cap = c->q_cap == 0 ? 4 : (uint16_t)(c->q_cap * 2);
        struct cp_exchange *q = malloc(cap * sizeof(*q));
        if (q == NULL)
            return NULL;
        for (uint16_t i = 0; i < c->q_len; i++)
            q[i] = c->q[(c->q_head + i) % c->q_cap];
        free(c->q);
        c->q = q;
        c->q_cap = cap;
        c->q_head = 0;
    }
    struct cp_exchange *x = &c->q[(c->q_head + c->q_len) % c->q_cap];
    memset(x, 0, sizeof(*x));
    x->kind = (uint8_t)kind;
    c->q_len++;
    if (kind == X_FORWARD)
        c->q_forward++;
    return x;
}

static void q_pop(struct cp_conn *c)
{
    struct cp_exchange *x = &c->q[c->q_head];
    if (x->kind == X_FORWARD)
        c->q_forward--;
    free(x->meta);
    x->meta = NULL;
    c->q_head = (uint16_t)((c->q_head + 1) % c->q_cap);
    c->q_len--;
    if (c->q_len == 0 && c->q_cap > 4) {
        /* A burst of pipelined requests must not keep a big ring on an idle connection. */
        free(c->q);
        c->q = NULL;
        c->q_cap = c->q_head = 0;
    }
}

static int req_in_message(const struct cp_conn *c)
{
    return c->req != NULL && cg_http_parser_in_message(c->req);
}

/* The path of a request-target, also in absolute form ("http://host/path"). */
static const char *target_path(const char *target)
{
    size_t skip = strncasecmp(target, "http://", 7) == 0    ? 7
                  : strncasecmp(target, "https://", 8) == 0 ? 8
                                                            : 0;
    if (skip == 0)
        return target;
    const char *p = strchr(target + skip, '/');
    return p != NULL ? p : "/";
}

/* Gives x its request id, method and path (query cut, at most CP_LOG_PATH_MAX bytes). Without
 * memory x keeps none: its answer then carries no id and its log line says "-". */
static void x_set_meta(struct cp_exchange *x, const char *rid, const char *method, const char *path)
{
    size_t rl = strlen(rid), ml = strlen(method), pl = strcspn(path, "?");
    if (pl > CP_LOG_PATH_MAX)
        pl = CP_LOG_PATH_MAX;
    char *m = malloc(rl + ml + pl + 3);
    if (m == NULL)
        return;
    memcpy(m, rid, rl + 1);
    memcpy(m + rl + 1, method, ml + 1);
    memcpy(m + rl + ml + 2, path, pl);
    m[rl + ml + 2 + pl] = '\0';
    free(x->meta);
    x->meta = m;
    x->method_off = (uint8_t)(rl + 1);
    x->path_off = (uint16_t)(rl + ml + 2);
}

/* A refused request whose head was not read: a new id, and the path when the parser got as
 * far as the request-target (so that a 431 on an OpenAI path is in its shape). */
static void x_refused_meta(struct cp_conn *c, struct cp_exchange *x)
{
    char rid[33];
    const char *target = c->req != NULL ? cg_http_parser_target(c->req) : NULL;
    const char *path = target != NULL ? target_path(target) : "-";
    cp_fwd_request_id_new(rid);
    x->seq = ++c->n_requests;
    x->start_ns = uv_hrtime();
    x->openai = (uint8_t)cg_httpmsg_openai_path(path);
    x_set_meta(x, rid, "-", path);
}

/* ---- the access log ---- */

/* One line for x, answered status (0: none, the connection ended first) with bytes_out body
 * bytes; e names the error when it was answered here, why the reason of a close. */
static void access_line(struct cp_conn *c, const struct cp_exchange *x, int status,
                        uint64_t bytes_out, const struct cp_error *e, const char *why)
{
    struct cp_server *srv = c->srv;
    if (!srv->access_log || srv->tcp_mode)
        return;
    uint64_t now = uv_hrtime();
    struct cg_log_field f[14];
    size_t n = 0;
    f[n++] = CG_LF_STR("forward", srv->name);
    f[n++] = CG_LF_UINT("conn", c->conn.id);
    f[n++] = CG_LF_UINT("req", x->seq);
    f[n++] = CG_LF_STR("method", x->meta != NULL ? x->meta + x->method_off : "-");
    f[n++] = CG_LF_STR("path", x->meta != NULL ? x->meta + x->path_off : "-");
    f[n++] = CG_LF_INT("status", status);
    f[n++] = CG_LF_UINT("bytes_in", x->bytes_in);
    f[n++] = CG_LF_UINT("bytes_out", bytes_out);
    f[n++] = CG_LF_DBL("duration_ms", x->start_ns != 0 ? (double)(now - x->start_ns) / 1e6 : 0);
    if (x->kind == X_FORWARD && c->resp_head_ns != 0 && c->resp_head_ns >= c->front_sent_ns)
        f[n++] = CG_LF_DBL("upstream_ms", (double)(c->resp_head_ns - c->front_sent_ns) / 1e6);
    if (e != NULL)
        f[n++] = CG_LF_STR("error", e->error);
    if (e != NULL && e->v != NULL)
        f[n++] = CG_LF_STR("check", e->v->check);
    if (why != NULL)
        f[n++] = CG_LF_STR("reason", why);
    f[n++] = CG_LF_STR("request_id", x->meta != NULL ? x->meta : "-");
    cg_log_fields(CG_LOG_INFO, "request", f, n);
}

/* ---- the one timer ---- */

/* Starts the timer for kind; a timer already measuring that kind keeps its deadline unless
 * restart is set (a trickle of bytes must not extend the time allowed for headers). */
static void arm(struct cp_conn *c, enum cp_timer kind, unsigned ms, int restart)
{
    if (c->timer_kind == kind && !restart)
        return;
    c->timer_kind = kind;
    cg_conn_timer(&c->conn, ms);
}

void cp__rearm(struct cp_conn *c)
{
    struct cp_server *srv = c->srv;
    struct cp_exchange *x = cp__front(c), *t = tail(c);
    int in_msg = req_in_message(c);
    if (c->state == CP_CLOSED)
        return;
    if (c->state == CP_LINGER) {
        arm(c, T_LINGER, CP_LINGER_MS, 0);
    } else if (c->wait_since_ms != 0 && c->peer != NULL && c->peer->down_ms > 0 &&
               (c->up_state == UP_WAITING || c->up_state == UP_CONNECTING)) {
        /* One deadline across the probes it waits for or makes. */
        uint64_t waited = uv_now(srv->loop) - c->wait_since_ms;
        c->timer_kind = T_SERVER_WAIT;
        cg_conn_timer(&c->conn,
                      waited + 1 < srv->server_wait_ms ? srv->server_wait_ms - waited : 1);
    } else if (c->up_state == UP_WAITING || c->up_state == UP_CONNECTING ||
               c->up_state == UP_HANDSHAKING) {
        arm(c, T_HANDSHAKE, srv->handshake_timeout_ms, 0);
    } else if (c->state == CP_PIPE) {
        arm(c, T_IDLE, srv->idle_timeout_ms, 1);
    } else if (x != NULL && x->kind == X_FORWARD && x->complete && !c->resp_started) {
        arm(c, T_RESPONSE, srv->response_timeout_ms, 0);
    } else if (in_msg && (t == NULL || t->complete)) {
        arm(c, T_HEADERS, srv->header_timeout_ms, 0);
    } else if (c->q_len == 0 && !in_msg && c->up != NULL && c->up_state == UP_READY &&
               srv->idle_timeout_ms > CP_LEG_IDLE_MS) {
        arm(c, T_LEG_IDLE, CP_LEG_IDLE_MS, 1);
    } else if (c->q_len == 0 && !in_msg) {
        arm(c, T_IDLE, srv->idle_timeout_ms, 1);
    } else {
        c->timer_kind = T_NONE;
        cg_conn_timer(&c->conn, 0);
    }
}

/* ---- answers from here ---- */

void cp__write_down(struct cp_conn *c, const void *data, size_t len)
{
    if (c->state == CP_CLOSED || c->state == CP_LINGER)
        return;
    if (cg_stream_write(&c->down, data, len) < 0)
        cp__conn_close(c, "app_write_failed");
}

static void out_down(void *arg, const void *data, size_t len)
{
    cp__write_down(arg, data, len);
}

static void out_up(void *arg, const void *data, size_t len)
{
    cp__send_up(arg, data, len);
}

/* Writes the answer made here to x: its request id, and x-should-retry for an error (retry
 * -1: none). */
static void answer(struct cp_conn *c, const struct cp_exchange *x, int status,
                   const struct cg_buf *json, int close, int retry)
{
    struct cg_buf out;
    char headers[64 + CP_REQUEST_ID_MAX];
    int n_h = 0;
    if (x->meta != NULL)
        n_h = snprintf(headers, sizeof(headers), "X-Request-Id: %s\r\n", x->meta);
    if (retry >= 0)
        snprintf(headers + n_h, sizeof(headers) - (size_t)n_h, "X-Should-Retry: %s\r\n",
                 retry ? "true" : "false");
    else
        headers[n_h] = '\0';
    cg_buf_init(&out, json->len + 1024 + sizeof(headers));
    if (cg_httpmsg_response_ex(&out, status, "application/json", headers, json->data, json->len,
                               close) == 0) {
        size_t n = out.len;
        if (x->head) {
            const char *end = memmem(out.data, out.len, "\r\n\r\n", 4);
            n = end != NULL ? (size_t)(end - out.data) + 4 : out.len;
        }
        cp__write_down(c, out.data, n);
    }
    cg_buf_free(&out);
    cp__count_status(c->srv, status);
}

/* FIN after what is queued; app bytes are read and dropped until it closes too (or the
 * linger timer fires), so that closing sends no reset that could destroy the answer. */
static void end_down(struct cp_conn *c)
{
    if (c->state == CP_CLOSED || c->state == CP_LINGER)
        return;
    c->state = CP_LINGER;
    if (!cp__pool_put(c))
        cp__up_discard(c, c->q_forward == 0);
    (void)cg_stream_read_start(&c->down);
    cg_stream_shutdown(&c->down);
    if (c->down.eof && c->down.queued == 0) {
        cp__conn_close(c, "done");
        return;
    }
    cp__rearm(c);
}

/* Whether the connection ends once the queue is empty. */
static int ends_after_queue(const struct cp_conn *c)
{
    if (c->state == CP_REFUSED)
        return 1;
    return c->state == CP_ENDING && !req_in_message(c);
}

void cp__answer_front(struct cp_conn *c)
{
    struct cp_exchange *x;
    while ((x = cp__front(c)) != NULL && x->kind != X_FORWARD && c->state != CP_CLOSED &&
           c->state != CP_LINGER) {
        int local = x->kind == X_VERIFICATION || x->kind == X_NOT_FOUND;
        if (local && !x->complete)
            break; /* its body is still being read */
        int close = x->kind == X_ERROR || (c->q_len == 1 && ends_after_queue(c));
        struct cg_buf body;
        cg_buf_init(&body, 64 * 1024);
        int status;
        struct cp_error err, *e = NULL;
        switch (x->kind) {
        case X_VERIFICATION:
            status = cp_server_verification_json(c->srv, &body);
            break;
        case X_NOT_FOUND:
            status = 404;
            (void)cg_buf_printf(&body,
                                "{\"error\": \"not_found\", \"hint\": \"%s"
                                "verification\"}\n",
                                CP_LOCAL_PREFIX);
            break;
        case X_ERROR:
            err = (struct cp_error){
                .status = c->err_status, .error = c->err_error, .reason = c->err_reason};
            e = &err;
            status = e->status;
            cg_log_info("request.rejected", "id=%llu forward=%s status=%d error=%s",
                        (unsigned long long)c->conn.id, c->srv->name, status, c->err_error);
            break;
        default: /* X_FAILED */
            e = &c->fail->e;
            status = e->status;
            break;
        }
        if (e != NULL)
            cp_error_body(&body, e, x->openai);
        /* Out of the queue first: a write that fails closes the connection, which logs what
         * is still queued. */
        struct cp_exchange done = *x;
        x->meta = NULL;
        q_pop(c);
        answer(c, &done, status, &body, close, e != NULL ? cp_error_retry(e) : -1);
        access_line(c, &done, status, done.head ? 0 : body.len, e, NULL);
        free(done.meta);
        cg_buf_free(&body);
        if (close) {
            end_down(c);
            return;
        }
    }
    if (c->q_len == 0 && ends_after_queue(c))
        end_down(c);
}

/* Refuses the request being read (or, when its head was not parsed, the bytes that follow
 * the last one) with status: answered after the exchanges before it; nothing more is read. */
static void refuse(struct cp_conn *c, int status, const char *error, const char *reason)
{
    struct cp_exchange *t = tail(c);
    if (c->state == CP_REFUSED || c->state == CP_LINGER || c->state == CP_CLOSED)
        return;
    c->err_status = status;
    c->err_error = error;
    if (reason != c->err_reason)
        snprintf(c->err_reason, sizeof(c->err_reason), "%s", reason);
    if (t != NULL && t == cp__front(c) && t->kind == X_FORWARD &&
        (c->front_bytes || c->resp_started)) {
        /* Its answer is already on its way: a status can no longer be given. */
        cp__conn_close(c, "bad_request_body");
        return;
    }
    if (t != NULL && !t->complete) {
        /* Its head was taken: the part that went up makes the leg unusable after the answers
         * before it. */
        if (t->kind == X_FORWARD) {
            c->q_forward--;
            c->leg_tainted = 1;
        }
        t->kind = X_ERROR;
    } else if ((t = q_push(c, X_ERROR)) == NULL) {
        cp__conn_close(c, "queue_full");
        return;
    } else {
        x_refused_meta(c, t);
    }
    c->state = CP_REFUSED;
    cg_buf_free(&c->held);
    cp__answer_front(c);
    cp__rearm(c);
}

void cp__fail_all(struct cp_conn *c, const struct cp_error *e)
{
    if (c->state == CP_CLOSED || c->state == CP_LINGER)
        return;
    if (c->state == CP_PIPE) {
        cp__conn_close(c, "server_failed");
        return;
    }
    if (c->fail == NULL && (c->fail = malloc(sizeof(*c->fail))) == NULL) {
        cp__conn_close(c, "out_of_memory");
        return;
    }
    struct cp_fail *f = c->fail;
    f->e = *e;
    if (e->v != NULL) {
        f->v = *e->v;
        f->e.v = &f->v;
    }
    if (e->reason != NULL) {
        snprintf(f->reason, sizeof(f->reason), "%s", e->reason);
        f->e.reason = f->reason;
    }
    cp__up_discard(c, 0);
    cg_buf_free(&c->pending);
    cg_buf_free(&c->replay);
    cg_buf_free(&c->held);
    c->replay_ok = 0;
    for (uint16_t i = 0; i < c->q_len; i++) {
        struct cp_exchange *x = &c->q[(c->q_head + i) % c->q_cap];
        if (x->kind == X_FORWARD)
            x->kind = X_FAILED;
    }
    c->q_forward = 0;
    c->resp_started = 0;
    c->front_bytes = 0;
    c->state = CP_REFUSED;
    cp__answer_front(c);
    cp__rearm(c);
}

void cp__fail_verdict(struct cp_conn *c, const char *error, const struct cg_verdict *v)
{
    if (c->srv->tcp_mode) {
        /* A byte pipe has no way to say why: the log names the check. */
        cp__conn_close(c, error);
        return;
    }
    struct cp_error e = {.status = 502,
                         .error = error,
                         .v = v,
                         .server =
                             c->last_server != NULL ? c->last_server : c->srv->peers[0]->addr.text};
    cp__fail_all(c, &e);
}

void cp__front_done(struct cp_conn *c)
{
    struct cp_exchange *x = cp__front(c);
    if (c->replay_ok && c->replay.len >= x->up_bytes)
        cg_buf_consume(&c->replay, x->up_bytes);
    access_line(c, x, c->resp_status, c->resp_status == 101 ? 0 : c->to_app.body_bytes, NULL, NULL);
    q_pop(c);
    c->resp_head_ns = 0;
    c->resp_started = 0;
    c->front_bytes = 0;
    c->retried = 0;
    c->timer_kind = T_NONE;
    c->front_sent_ns = uv_hrtime();
    if (c->q_forward == 0) {
        /* Nothing unanswered: the next requests may be sent again if they must, to any
         * server. */
        c->replay_ok = 1;
        cg_buf_free(&c->replay);
        c->tried = c->refused = 0;
    }
    cp__track(c);
    if (c->state == CP_UPGRADING)
        c->state = CP_ENDING; /* refused: the bytes after the request are not HTTP we read */
    cp__answer_front(c);
    cp__resume_down(c);
    cp__rearm(c);
}

void cp__resume_down(struct cp_conn *c)
{
    if (c->state != CP_HTTP && c->state != CP_ENDING && c->state != CP_PIPE)
        return;
    if (c->down.eof || c->q_len >= CP_QUEUE_PAUSE || c->pending.len >= CG_STREAM_HIGH_WATER)
        return;
    if (c->up != NULL && c->up->s.queued >= CG_STREAM_HIGH_WATER)
        return;
    (void)cg_stream_read_start(&c->down);
}

/* ---- app -> server: the request parser ---- */

/* RFC 9110 9.2.2: methods whose repetition has the effect of one request. */
static int is_idempotent(const char *m)
{
    static const char *const list[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
        if (strcmp(m, list[i]) == 0)
            return 1;
    return 0;
}

/* Stops the parser with a refusal that names why (the parser's own text would not). */
static int head_error(struct cp_conn *c, int status, const char *reason)
{
    c->err_status = status;
    snprintf(c->err_reason, sizeof(c->err_reason), "%s", reason);
    return CG_EHTTP;
}

static int req_on_head(void *arg, const struct cg_http_head *h)
{
    struct cp_conn *c = arg;
    struct cp_server *srv = c->srv;
    srv->stats.requests_total++;
    /* RFC 9112 3.2: an HTTP/1.1 request without Host is answered 400. */
    if (h->version_minor >= 1 && cg_http_head_get(h, "host") == NULL)
        return head_error(c, 400, "missing Host header (RFC 9112 3.2)");
    const char *path = target_path(h->target);
    int local = strncmp(path, CP_LOCAL_PREFIX, strlen(CP_LOCAL_PREFIX)) == 0;
    int get_or_head = strcmp(h->method, "GET") == 0 || strcmp(h->method, "HEAD") == 0;
    enum cp_xkind kind = !local ? X_FORWARD
                         : strcmp(path, CP_LOCAL_PREFIX "verification") == 0 && get_or_head
                             ? X_VERIFICATION
                             : X_NOT_FOUND;
    struct cp_exchange *x = q_push(c, kind);
    if (x == NULL)
        return head_error(c, 400, "too many pipelined requests");
    char rid[CP_REQUEST_ID_MAX + 1];
    if (!cp_fwd_request_id_take(h, rid))
        cp_fwd_request_id_new(rid);
    x->seq = ++c->n_requests;
    x->start_ns = uv_hrtime();
    x->openai = (uint8_t)cg_httpmsg_openai_path(path);
    x_set_meta(x, rid, h->method, path);
    x->head = strcmp(h->method, "HEAD") == 0;
    if (!h->keep_alive && c->state == CP_HTTP)
        c->state = CP_ENDING;
    if (local) {
        srv->stats.local_requests++;
        return 0;
    }
    if (!is_idempotent(h->method)) {
        c->replay_ok = 0;
        cg_buf_free(&c->replay);
    }
    if (h->upgrade && c->state == CP_HTTP) {
        /* The app's next bytes wait for the answer: a 101 makes the connection a pipe,
         * anything else ends it (those bytes are not HTTP we parsed). */
        c->state = CP_UPGRADING;
    }
    /* The server announced it closes this leg: a new request takes another. */
    if (c->up != NULL && c->up->last && c->q_forward == 1)
        cp__up_discard(c, 1);
    c->to_up.request_id = rid;
    int rc = cp_fwd_head(&c->to_up, h, 1);
    c->to_up.request_id = NULL;
    if (rc < 0)
        return head_error(c, rc == CG_ELIMIT ? 431 : 400, "request head cannot be forwarded");
    return 0;
}

static int req_on_body(void *arg, const uint8_t *data, size_t len)
{
    struct cp_conn *c = arg;
    struct cp_exchange *t = tail(c);
    if (t != NULL)
        t->bytes_in += len;
    if (t != NULL && t->kind == X_FORWARD)
        cp_fwd_body(&c->to_up, data, len);
    return 0;
}

static int req_on_complete(void *arg)
{
    struct cp_conn *c = arg;
    struct cp_exchange *t = tail(c);
    if (t == NULL)
        return 0;
    t->complete = 1;
    if (t->kind == X_FORWARD) {
        cp_fwd_end(&c->to_up);
        if (t == cp__front(c))
            c->front_sent_ns = uv_hrtime();
    } else if (t == cp__front(c)) {
        cp__answer_front(c);
    }
    return 0;
}

static const struct cg_http_callbacks req_cb = {req_on_head, req_on_body, req_on_complete};

/* ---- the app stream ---- */

void cp__conn_close(struct cp_conn *c, const char *reason)
{
    if (c->state == CP_CLOSED)
        return;
    /* Requests whose answer did not (wholly) go out: a line each, status as far as it got. */
    for (uint16_t i = 0; i < c->q_len; i++) {
        struct cp_exchange *x = &c->q[(c->q_head + i) % c->q_cap];
        int started = i == 0 && x->kind == X_FORWARD && c->resp_started;
        access_line(c, x, started ? c->resp_status : 0, started ? c->to_app.body_bytes : 0, NULL,
                    reason);
    }
    c->pool_on_close = c->state != CP_PIPE && c->state != CP_UPGRADING;
    c->state = CP_CLOSED;
    cp__gate_unlink(c);
    cg_conn_close(&c->conn, 0, reason);
}

/* Adds what c's app leg moved since the last call to the forward's byte counters. */
static void count_bytes(struct cp_conn *c)
{
    cg_stream_count(&c->down, &c->srv->stats.bytes_from_app, &c->srv->stats.bytes_to_app);
}

void cp_server_count_bytes(struct cp_server *s)
{
    for (struct cg_conn *conn = s->set.live; conn != NULL; conn = conn->next)
        count_bytes(conn->data);
}

/* From the loop, after the core logged the close: the leg goes back to the pool when it may
 * serve another app, else it closes; what c holds is freed. */
static void on_close(struct cg_conn *conn)
{
    struct cp_conn *c = conn->data;
    count_bytes(c);
    if (!(c->pool_on_close && cp__pool_put(c)) && c->up != NULL) {
        c->up->c = NULL;
        cg_conn_release(&c->conn);
        cp__up_discard(c, c->up_state == UP_READY && c->q_forward == 0);
    }
    cg_http_parser_free(c->req);
    c->req = NULL;
    for (uint16_t i = 0; i < c->q_len; i++)
        free(c->q[(c->q_head + i) % c->q_cap].meta);
    free(c->q);
    c->q = NULL;
    c->q_len = c->q_cap = c->q_forward = 0;
    cg_buf_free(&c->pending);
    cg_buf_free(&c->held);
    cg_buf_free(&c->replay);
    free(c->fail);
    c->fail = NULL;
}

static void on_free(struct cg_conn *conn)
{
    free(conn->data);
}

static void on_timeout(struct cg_conn *conn)
{
    struct cp_conn *c = conn->data;
    enum cp_timer kind = c->timer_kind;
    c->timer_kind = T_NONE;
    switch (kind) {
    case T_LINGER:
        cp__conn_close(c, "closed");
        return;
    case T_HEADERS:
        if (req_in_message(c))
            refuse(c, 408, "request_timeout", "the request head did not arrive in time");
        else
            cp__conn_close(c, "header_timeout");
        return;
    case T_RESPONSE: {
        char why[64];
        snprintf(why, sizeof(why), "no response head within %u s",
                 c->srv->response_timeout_ms / 1000);
        struct cp_error e = {.status = 504, .error = "upstream_timeout", .reason = why};
        c->srv->stats.response_timeouts++;
        cp__fail_all(c, &e);
        return;
    }
    case T_LEG_IDLE:
        if (c->state == CP_HTTP && !cp__pool_put(c))
            cp__up_discard(c, 1);
        c->timer_kind = T_IDLE;
        cg_conn_timer(&c->conn, c->srv->idle_timeout_ms - CP_LEG_IDLE_MS);
        return;
    case T_HANDSHAKE:
    case T_SERVER_WAIT:
        cp__up_timeout(c, kind == T_SERVER_WAIT);
        return;
    default:
        cp__conn_close(c, "idle_timeout");
        return;
    }
}

/* Stops reading the app while the leg or the queue is full. */
static void backpressure(struct cp_conn *c)
{
    if (c->q_len >= CP_QUEUE_PAUSE || c->pending.len >= CG_STREAM_HIGH_WATER ||
        (c->up_state == UP_READY && c->up->s.queued >= CG_STREAM_HIGH_WATER))
        cg_stream_read_stop(&c->down);
}

static void hold(struct cp_conn *c, const uint8_t *data, size_t len)
{
    if (cg_buf_append(&c->held, data, len) < 0) {
        refuse(c, 400, "bad_request", "too many bytes before the upgrade was answered");
        return;
    }
    cg_stream_read_stop(&c->down);
}

static void down_on_read(struct cg_stream *s, const uint8_t *data, size_t len)
{
    struct cp_conn *c = s->data;
    switch (c->state) {
    case CP_PIPE:
        cp__send_up(c, data, len);
        if (c->state == CP_CLOSED)
            return;
        backpressure(c);
        cp__rearm(c);
        return;
    case CP_UPGRADING:
        hold(c, data, len);
        return;
    case CP_HTTP:
    case CP_ENDING:
        break;
    default:
        return; /* refused or ending: read and dropped */
    }
    long n = cg_http_parser_feed(c->req, data, len);
    if (c->state == CP_CLOSED)
        return;
    if (n < 0) {
        if (c->err_status == 0) {
            int status = cg_http_parser_status(c->req);
            c->err_status = status >= 400 ? status : 400;
            snprintf(c->err_reason, sizeof(c->err_reason), "%s", cg_http_parser_reason(c->req));
        }
        refuse(c, c->err_status, "bad_request", c->err_reason);
        return;
    }
    if (c->state == CP_UPGRADING && (size_t)n < len)
        hold(c, data + n, len - (size_t)n);
    if (c->state == CP_CLOSED)
        return;
    backpressure(c);
    cp__rearm(c);
}

static void down_on_eof(struct cg_stream *s)
{
    struct cp_conn *c = s->data;
    switch (c->state) {
    case CP_PIPE:
        /* FIN from the app becomes close_notify; the server half-closes its upstream. */
        if (c->up_state == UP_READY)
            cg_stream_shutdown(&c->up->s);
        cp__pipe_maybe_done(c);
        return;
    case CP_LINGER:
        if (s->queued == 0)
            cp__conn_close(c, "done");
        return;
    case CP_HTTP:
    case CP_ENDING:
        if (req_in_message(c) || c->q_len == 0) {
            cp__conn_close(c, c->q_len == 0 ? "app_closed" : "app_truncated");
            return;
        }
        /* The app half-closed after its requests: answer them, then close. */
        c->state = CP_ENDING;
        return;
    default:
        return; /* answers are on their way; the close follows them */
    }
}

static void down_on_error(struct cg_stream *s, int err)
{
    (void)err;
    cp__conn_close(s->data, "app_error");
}

static void down_on_drain(struct cg_stream *s)
{
    struct cp_conn *c = s->data;
    if (c->state == CP_LINGER && s->queued == 0 && s->eof) {
        cp__conn_close(c, "done");
        return;
    }
    if (c->up_state == UP_READY)
        (void)cg_stream_read_start(&c->up->s);
    cp__pipe_maybe_done(c);
}

static const struct cg_stream_callbacks down_cb = {
    .on_read = down_on_read,
    .on_eof = down_on_eof,
    .on_error = down_on_error,
    .on_drain = down_on_drain,
};

static void on_accept(struct cg_conns *set, uv_stream_t *listener)
{
    struct cp_server *srv = set->data;
    struct cp_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    cg_conn_init(&c->conn, set, c);
    c->srv = srv;
    c->state = srv->tcp_mode ? CP_PIPE : CP_HTTP;
    c->replay_ok = 1;
    c->to_up = (struct cp_fwd){.out = out_up, .arg = c};
    c->to_app = (struct cp_fwd){.out = out_down, .arg = c};
    cg_buf_init(&c->pending, CP_PENDING_MAX);
    cg_buf_init(&c->held, 2 * 64 * 1024);
    cg_buf_init(&c->replay, CP_REPLAY_MAX);
    if (cg_conn_accept(&c->conn, &c->down, listener, &down_cb) < 0) {
        cp__conn_close(c, "accept_failed");
        return;
    }
    if (cg_conns_full(set)) {
        srv->stats.conns_refused++;
        if (srv->tcp_mode) {
            cp__conn_close(c, "too_many_connections");
            return;
        }
        /* Answer 503 at once; the request is read and dropped so that closing does not
         * reset the connection before the app read the answer. */
        refuse(c, 503, "too_many_connections", "the client sidecar is at max-connections");
        return;
    }
    if (srv->tcp_mode) {
        /* The attested leg starts at once; app bytes wait in pending until it is verified. */
        if (cg_stream_read_start(&c->down) < 0) {
            cp__conn_close(c, "init_failed");
            return;
        }
        cp__up_start(c, NULL, 0);
        return;
    }
    if (cg_http_parser_new(CG_HTTP_REQUEST, &srv->limits, &req_cb, c, &c->req) < 0 ||
        cg_stream_read_start(&c->down) < 0) {
        cp__conn_close(c, "init_failed");
        return;
    }
    arm(c, T_HEADERS, srv->header_timeout_ms, 1);
}

/* SIGTERM: idle keep-alive connections end now; busy ones after their last answer. */
static void on_drain(struct cg_conn *conn)
{
    struct cp_conn *c = conn->data;
    if (c->state == CP_PIPE)
        return; /* a byte stream has no safe point to stop: the deadline ends it */
    if (c->state == CP_LINGER || (c->q_len == 0 && !req_in_message(c)))
        cp__conn_close(c, "shutdown");
    else if (c->state == CP_HTTP)
        c->state = CP_ENDING;
}

static void on_stopped(struct cg_conns *set)
{
    struct cp_server *srv = set->data;
    cp__peers_close(srv);
    if (srv->on_idle != NULL)
        srv->on_idle(srv);
}

static const struct cg_conn_ops conn_ops = {
    .on_accept = on_accept,
    .on_timeout = on_timeout,
    .on_drain = on_drain,
    .on_close = on_close,
    .on_free = on_free,
    .on_stopped = on_stopped,
};

int cp_server_start(struct cp_server *s)
{
    if (s->n_peers == 0)
        return CG_ECONFIG;
    for (size_t i = 0; i < s->n_peers; i++) {
        struct cp_peer *p = s->peers[i];
        int rc = cp_fresh_init(&p->fresh, s->tcp_mode ? CG_ALPN_TCP : CG_ALPN_HTTP, p->addr.text,
                               s->policy);
        if (rc < 0)
            return rc;
    }
    int rc = cg_conns_init(&s->set, s->loop, &conn_ops, s);
    if (rc < 0)
        return rc;
    s->set.name = "client";
    s->set.max_conns = s->max_conns;
    rc = cg_conns_listen(&s->set, &s->listen_addr, 511);
    if (rc < 0)
        return rc;
    cp__peers_start(s);
    return 0;
}

void cp_server_stop(struct cp_server *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    cp__peers_stop(s);
    cg_conns_drain(&s->set);
}

void cp_server_set_policy(struct cp_server *s, const struct cg_policy *policy)
{
    int changed = memcmp(s->policy->digest, policy->digest, sizeof(policy->digest)) != 0;
    s->policy = policy;
    for (size_t i = 0; i < s->n_peers; i++) {
        struct cp_peer *p = s->peers[i];
        cp_fresh_set_policy(&p->fresh, policy);
        if (!changed)
            continue;
        /* What passed the old policy proves nothing under this one: appraise again now. */
        cp__pool_flush(p);
        if (p->state == CP_PEER_VERIFIED)
            p->state = CP_PEER_NEVER;
        cp__probe_schedule(p, 0);
    }
}

void cp_server_abort(struct cp_server *s)
{
    cg_conns_drain(&s->set);
    while (s->set.live != NULL)
        cp__conn_close(s->set.live->data, "shutdown_deadline");
}
