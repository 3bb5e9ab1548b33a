#include "gb_server.h"

#include "ccgate/addr.h"
#include "ccgate/conn.h"
#include "ccgate/err.h"
#include "ccgate/http.h"
#include "ccgate/httpmsg.h"
#include "ccgate/log.h"
#include "gb_backend.h"
#include "gb_chat.h"
#include "gb_engine.h"
#include "gb_model.h"
#include "gb_tok.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PIPELINED 4
#define MAX_TARGET 1024
#define MAX_QUEUED_OUTPUT (4u << 20) /* a streaming client that stops reading is dropped */

struct pending {
    char method[16];
    char target[MAX_TARGET];
    char rid[CG_REQUEST_ID_MAX + 1]; /* its valid x-request-id, or "" */
    uint64_t start_ns;               /* when its head was read */
    int keep_alive;
    char *body;
    size_t body_len;
};

#define LOG_PATH_MAX 256

/* The request being answered, for its access log line. */
struct answering {
    char method[16];
    char path[LOG_PATH_MAX + 1]; /* no query string */
    char rid[CG_REQUEST_ID_MAX + 1];
    uint64_t start_ns, bytes_in, bytes_out;
    int status; /* 0 until the answer's head is sent */
};

struct conn {
    struct cg_conn conn; /* the connection core: list, timer, one deferred close */
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;            /* the socket, closed from on_close (a cg_conn_hold reference) */
    int timer_mode; /* 0 none, 1 request deadline, 2 idle */
    struct gb_server *srv;
    struct cg_http_parser *parser;
    /* the request being read */
    struct pending cur;
    size_t body_cap;
    /* complete requests waiting for their turn */
    struct pending q[MAX_PIPELINED];
    int qn;
    /* the request being answered */
    int busy, keep_alive, input_done;
    struct gb_req *req;
    struct answering ans;
    int stream, chat, include_usage, sent_role;
    char id[40];
    long long created;
    char *text; /* non-streaming: the completion so far */
    size_t text_len;
};

struct gb_server {
    uv_loop_t *loop;
    const struct gb_model *m;
    struct gb_backend *b;
    struct gb_engine *e;
    struct gb_server_opts o;
    char model_id[128];
    enum gb_chat_family chat;
    int n_ctx;
    struct cg_conns set; /* the listener and the live connections */
    uv_async_t async;
    int start_failed; /* gb_server_start frees the server itself */
    unsigned long long next_id;
    void (*close_cb)(void *);
    void *close_arg;
};

static void serve_next(struct conn *c);

static int gone(const struct conn *c)
{
    return !cg_conn_live(&c->conn);
}

/* Cancels the engine's sequence now (not when its tokens run out) and closes c (deferred). */
static void conn_close(struct conn *c)
{
    if (gone(c))
        return;
    if (c->req != NULL)
        gb_engine_cancel(c->srv->e, c->req);
    (void)uv_read_stop(&c->h.stream);
    cg_conn_close(&c->conn, 0, "closed");
}

static void arm_timer(struct conn *c);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* ---- writing ---- */

struct wreq {
    uv_write_t w;
    char *buf;
};

static void on_write(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    (void)status;
    free(wr->buf);
    free(wr);
}

/* Queues len bytes of buf (taken over) on c; closes c when the peer does not keep up. */
static void send_owned(struct conn *c, char *buf, size_t len)
{
    struct wreq *wr;
    if (gone(c) || len == 0 || (wr = malloc(sizeof(*wr))) == NULL) {
        free(buf);
        return;
    }
    wr->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    if (uv_write(&wr->w, &c->h.stream, &b, 1, on_write) != 0) {
        free(buf);
        free(wr);
        conn_close(c);
        return;
    }
    if (uv_stream_get_write_queue_size(&c->h.stream) > MAX_QUEUED_OUTPUT) {
        cg_logf(CG_LOG_WARN, "worker.slow_client",
                CG_LF_UINT("queued", uv_stream_get_write_queue_size(&c->h.stream)));
        conn_close(c);
    }
}

static void send_copy(struct conn *c, const char *s, size_t len)
{
    char *b = malloc(len ? len : 1);
    if (b == NULL) {
        conn_close(c);
        return;
    }
    memcpy(b, s, len);
    send_owned(c, b, len);
}

/* Sends a whole response with a JSON body (json is consumed). */
static void send_json(struct conn *c, int status, json_t *json)
{
    char *body = json != NULL ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (body == NULL) {
        conn_close(c);
        return;
    }
    static const char *const reasons[] = {[200] = "OK",
                                          [400] = "Bad Request",
                                          [404] = "Not Found",
                                          [405] = "Method Not Allowed",
                                          [413] = "Content Too Large",
                                          [431] = "Request Header Fields Too Large",
                                          [500] = "Internal Server Error",
                                          [503] = "Service Unavailable"};
    const char *reason =
        status >= 0 && status <= 503 && reasons[status] ? reasons[status] : "Error";
    size_t blen = strlen(body);
    char head[256];
    int hl = snprintf(
        head, sizeof(head),
        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n", status,
        reason, blen, c->keep_alive ? "" : "Connection: close\r\n");
    char *out = malloc((size_t)hl + blen);
    if (out == NULL) {
        free(body);
        conn_close(c);
        return;
    }
    memcpy(out, head, (size_t)hl);
    memcpy(out + hl, body, blen);
    free(body);
    c->ans.status = status;
    c->ans.bytes_out += blen;
    send_owned(c, out, (size_t)hl + blen);
}

static json_t *error_json(const char *message, const char *type, const char *param,
                          const char *code)
{
    return json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", message, "type", type, "param",
                     param ? json_string(param) : json_null(), "code",
                     code ? json_string(code) : json_null());
}

/* Answers an error in OpenAI's shape and ends the request. */
static void send_error(struct conn *c, int status, const char *param, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    struct conn *c = sr->handle->data;
    (void)status;
    free(sr);
    conn_close(c);
}

/* Begins the access record of request r. */
static void ans_begin(struct conn *c, const struct pending *r)
{
    struct answering *a = &c->ans;
    memset(a, 0, sizeof(*a));
    snprintf(a->method, sizeof(a->method), "%s", r->method[0] != '\0' ? r->method : "-");
    size_t pl = strcspn(r->target, "?");
    if (pl == 0)
        snprintf(a->path, sizeof(a->path), "-");
    else
        snprintf(a->path, sizeof(a->path), "%.*s", (int)(pl < LOG_PATH_MAX ? pl : LOG_PATH_MAX),
                 r->target);
    memcpy(a->rid, r->rid, sizeof(a->rid));
    a->start_ns = r->start_ns != 0 ? r->start_ns : uv_hrtime();
    a->bytes_in = r->body_len;
}

/* The access log line of the answer just finished (the fields of the client sidecar's). */
static void ans_log(struct conn *c)
{
    struct answering *a = &c->ans;
    if (!c->srv->o.access_log || a->status == 0)
        return;
    cg_logf(CG_LOG_INFO, "request", CG_LF_UINT("conn", c->conn.id), CG_LF_STR("method", a->method),
            CG_LF_STR("path", a->path), CG_LF_INT("status", a->status),
            CG_LF_UINT("bytes_in", a->bytes_in), CG_LF_UINT("bytes_out", a->bytes_out),
            CG_LF_DBL("duration_ms", (double)(uv_hrtime() - a->start_ns) / 1e6),
            CG_LF_STR("request_id", a->rid[0] != '\0' ? a->rid : "-"));
    a->status = 0;
}

static void finish_response(struct conn *c)
{
    ans_log(c);
    c->busy = 0;
    if (gone(c))
        return;
    if (!c->keep_alive) {
        c->input_done = 1;
        uv_shutdown_t *sr = malloc(sizeof(*sr));
        /* close once the answer is written: shutdown's callback runs after the writes */
        if (sr == NULL || uv_shutdown(sr, &c->h.stream, on_shutdown) != 0) {
            free(sr);
            conn_close(c);
        }
        return;
    }
    serve_next(c);
}

static void send_error(struct conn *c, int status, const char *param, const char *code,
                       const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";
    send_json(c, status, error_json(msg, type, param, code));
    finish_response(c);
}

/* ---- streaming ---- */

static void send_chunk(struct conn *c, const char *data, size_t len)
{
    char hdr[24];
    size_t hl = cg_http_chunk_header(hdr, sizeof(hdr), len);
    char *b = malloc(hl + len + 2);
    if (b == NULL) {
        conn_close(c);
        return;
    }
    memcpy(b, hdr, hl);
    memcpy(b + hl, data, len);
    memcpy(b + hl + len, "\r\n", 2);
    c->ans.bytes_out += len;
    send_owned(c, b, hl + len + 2);
}

static void send_event(struct conn *c, json_t *json)
{
    char *s = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    if (s == NULL)
        return;
    size_t n = strlen(s);
    char *ev = malloc(n + 8);
    if (ev != NULL) {
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, s, n);
        memcpy(ev + 6 + n, "\n\n", 2);
        send_chunk(c, ev, n + 8);
        free(ev);
    }
    free(s);
}

static json_t *usage_json(const struct gb_out *o)
{
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", o->n_prompt, "completion_tokens",
                     o->n_completion, "total_tokens", o->n_prompt + o->n_completion);
}

static json_t *chunk_json(struct conn *c, const char *text, size_t len, const char *finish)
{
    json_t *choice;
    json_t *fr = finish ? json_string(finish) : json_null();
    if (c->chat) {
        json_t *delta = json_object();
        if (!c->sent_role) {
            json_object_set_new(delta, "role", json_string("assistant"));
            c->sent_role = 1;
        }
        if (text != NULL)
            json_object_set_new(delta, "content", json_stringn(text, len));
        choice = json_pack("{s:i, s:o, s:o, s:n}", "index", 0, "delta", delta, "finish_reason", fr,
                           "logprobs");
    } else {
        choice = json_pack("{s:i, s:s%, s:o, s:n}", "index", 0, "text", text ? text : "",
                           text ? len : 0, "finish_reason", fr, "logprobs");
    }
    return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", c->id, "object",
                     c->chat ? "chat.completion.chunk" : "text_completion", "created",
                     (json_int_t)c->created, "model", c->srv->model_id, "choices", choice);
}

static void end_request(struct conn *c)
{
    if (c->req != NULL) {
        gb_req_unref(c->req);
        c->req = NULL;
    }
    free(c->text);
    c->text = NULL;
    c->text_len = 0;
}

/* Engine output for c's request: stream it or collect it; answer when done. */
static void pump(struct conn *c)
{
    struct gb_out o;
    if (c->req == NULL || gb_engine_take(c->srv->e, c->req, &o) != 0)
        return;
    if (c->stream) {
        if (o.len > 0 || (!c->sent_role && c->chat))
            send_event(c, chunk_json(c, o.text ? o.text : "", o.len, NULL));
    } else if (o.len > 0) {
        char *t = realloc(c->text, c->text_len + o.len);
        if (t == NULL) {
            free(o.text);
            conn_close(c);
            return;
        }
        memcpy(t + c->text_len, o.text, o.len);
        c->text = t;
        c->text_len += o.len;
    }
    free(o.text);
    if (!o.done)
        return;
    int failed = strcmp(o.finish_reason, "error") == 0;
    if (c->stream) {
        if (failed) {
            json_t *e = error_json("inference failed", "server_error", NULL, NULL);
            send_event(c, e);
        } else {
            send_event(c, chunk_json(c, NULL, 0, o.finish_reason));
            if (c->include_usage) {
                json_t *u = json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", c->id, "object",
                                      c->chat ? "chat.completion.chunk" : "text_completion",
                                      "created", (json_int_t)c->created, "model", c->srv->model_id,
                                      "choices", "usage", usage_json(&o));
                send_event(c, u);
            }
        }
        static const char done[] = "data: [DONE]\n\n";
        send_chunk(c, done, sizeof(done) - 1);
        send_copy(c, "0\r\n\r\n", 5);
        end_request(c);
        finish_response(c);
        return;
    }
    if (failed) {
        end_request(c);
        send_error(c, 500, NULL, NULL, "inference failed");
        return;
    }
    json_t *choice;
    json_t *txt = json_stringn(c->text ? c->text : "", c->text_len);
    if (c->chat)
        choice =
            json_pack("{s:i, s:{s:s, s:o}, s:s, s:n}", "index", 0, "message", "role", "assistant",
                      "content", txt, "finish_reason", o.finish_reason, "logprobs");
    else
        choice = json_pack("{s:i, s:o, s:s, s:n}", "index", 0, "text", txt, "finish_reason",
                           o.finish_reason, "logprobs");
    json_t *resp = json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", c->id, "object",
                             c->chat ? "chat.completion" : "text_completion", "created",
                             (json_int_t)c->created, "model", c->srv->model_id, "choices", choice,
                             "usage", usage_json(&o));
    end_request(c);
    send_json(c, 200, resp);
    finish_response(c);
}

static void on_async(uv_async_t *a)
{
    struct gb_server *s = a->data;
    for (struct cg_conn *k = s->set.live, *next; k != NULL; k = next) {
        next = k->next; /* pump may close k: it then leaves the live list */
        struct conn *c = k->data;
        if (c->req != NULL)
            pump(c);
    }
}

static void notify(void *arg)
{
    uv_async_send(arg);
}

/* ---- request handling ---- */

/* Reads an optional number field; 0 ok, -1 after answering 400. */
static int get_num(struct conn *c, json_t *req, const char *name, double lo, double hi, double *out)
{
    json_t *v = json_object_get(req, name);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        send_error(c, 400, name, NULL, "'%s' must be a number between %g and %g", name, lo, hi);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static int get_int(struct conn *c, json_t *req, const char *name, long long lo, long long hi,
                   long long *out)
{
    json_t *v = json_object_get(req, name);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        send_error(c, 400, name, NULL, "'%s' must be an integer between %lld and %lld", name, lo,
                   hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int get_params(struct conn *c, json_t *req, struct gb_gen_params *p, long long *max_tokens)
{
    double temp = 1.0, top_p = 1.0;
    long long top_k = 0, seed = 0, n = 1;
    if (get_num(c, req, "temperature", 0, 2, &temp) || get_num(c, req, "top_p", 0, 1, &top_p) ||
        get_int(c, req, "top_k", 0, 1 << 20, &top_k) ||
        get_int(c, req, "max_tokens", 1, 1 << 30, max_tokens) ||
        get_int(c, req, "max_completion_tokens", 1, 1 << 30, max_tokens) ||
        get_int(c, req, "n", 1, 1, &n))
        return -1;
    json_t *sv = json_object_get(req, "seed");
    if (sv != NULL && !json_is_null(sv)) {
        if (!json_is_integer(sv)) {
            send_error(c, 400, "seed", NULL, "'seed' must be an integer");
            return -1;
        }
        seed = json_integer_value(sv);
        p->has_seed = 1;
    }
    if (top_p <= 0) {
        send_error(c, 400, "top_p", NULL, "'top_p' must be greater than 0");
        return -1;
    }
    p->temperature = (float)temp;
    p->top_p = (float)top_p;
    p->top_k = (int)top_k;
    p->seed = (uint64_t)seed;
    json_t *st = json_object_get(req, "stop");
    json_t *one[1] = {st};
    json_t **items = one;
    size_t n_items = 1;
    if (st == NULL || json_is_null(st))
        n_items = 0;
    else if (json_is_array(st)) {
        n_items = json_array_size(st);
        if (n_items > GB_MAX_STOP) {
            send_error(c, 400, "stop", NULL, "'stop' holds at most %d strings", GB_MAX_STOP);
            return -1;
        }
        items = NULL;
    }
    for (size_t i = 0; i < n_items; i++) {
        json_t *s = items ? items[i] : json_array_get(st, i);
        if (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) > 256) {
            send_error(c, 400, "stop", NULL,
                       "'stop' must be a non-empty string or an array of them");
            return -1;
        }
        p->stop[p->n_stop] = strdup(json_string_value(s));
        if (p->stop[p->n_stop] == NULL) {
            send_error(c, 500, NULL, NULL, "out of memory");
            return -1;
        }
        p->n_stop++;
    }
    json_t *ie = json_object_get(req, "ignore_eos");
    if (ie != NULL && !json_is_boolean(ie) && !json_is_null(ie)) {
        send_error(c, 400, "ignore_eos", NULL, "'ignore_eos' must be a boolean");
        return -1;
    }
    p->ignore_eos = json_is_true(ie);
    json_t *so = json_object_get(req, "stream_options");
    if (so != NULL && json_is_object(so) && json_is_true(json_object_get(so, "include_usage")))
        c->include_usage = 1;
    return 0;
}

static int check_model(struct conn *c, json_t *req)
{
    json_t *m = json_object_get(req, "model");
    if (m == NULL || !json_is_string(m)) {
        send_error(c, 400, "model", NULL, "'model' is required and must be a string");
        return -1;
    }
    if (strcmp(json_string_value(m), c->srv->model_id) != 0) {
        send_error(c, 404, "model", "model_not_found", "The model '%.200s' does not exist",
                   json_string_value(m));
        return -1;
    }
    return 0;
}

static int text_of(json_t *content, const char **s, size_t *n, char **owned)
{
    *owned = NULL;
    if (json_is_string(content)) {
        *s = json_string_value(content);
        *n = json_string_length(content);
        return 0;
    }
    if (!json_is_array(content))
        return -1;
    /* content parts: concatenate the text ones */
    size_t total = 0, i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(json_object_get(part, "type")) || !json_is_string(t) ||
            strcmp(json_string_value(json_object_get(part, "type")), "text") != 0)
            return -1;
        total += json_string_length(t);
    }
    char *buf = malloc(total + 1);
    if (buf == NULL)
        return -1;
    total = 0;
    json_array_foreach(content, i, part)
    {
        json_t *t = json_object_get(part, "text");
        memcpy(buf + total, json_string_value(t), json_string_length(t));
        total += json_string_length(t);
    }
    *owned = buf;
    *s = buf;
    *n = total;
    return 0;
}

static int chat_prompt(struct conn *c, json_t *req, struct gb_ids *ids)
{
    json_t *msgs = json_object_get(req, "messages");
    size_t n = json_is_array(msgs) ? json_array_size(msgs) : 0;
    if (n == 0 || n > 1024) {
        send_error(c, 400, "messages", NULL, "'messages' must be a non-empty array");
        return -1;
    }
    struct gb_chat_msg *cm = calloc(n, sizeof(*cm));
    char **owned = calloc(n, sizeof(*owned));
    int rc = -1;
    if (cm == NULL || owned == NULL) {
        send_error(c, 500, NULL, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        json_t *role = json_object_get(m, "role");
        static const char *const roles[] = {"system", "user", "assistant", "developer", "tool"};
        int ok = json_is_string(role);
        for (size_t k = 0; ok && k < 5; k++)
            if (strcmp(json_string_value(role), roles[k]) == 0)
                ok = 2;
        if (ok != 2) {
            send_error(c, 400, "messages", NULL,
                       "messages[%zu].role must be system, user, assistant, developer or tool", i);
            goto out;
        }
        cm[i].role = json_string_value(role);
        if (strcmp(cm[i].role, "developer") == 0)
            cm[i].role = "system";
        if (text_of(json_object_get(m, "content"), &cm[i].content, &cm[i].content_len, &owned[i]) !=
            0) {
            send_error(c, 400, "messages", NULL,
                       "messages[%zu].content must be a string or an array of text parts", i);
            goto out;
        }
    }
    if (gb_chat_render(c->srv->m, c->srv->chat, cm, n, ids) != 0) {
        send_error(c, 500, NULL, NULL, "out of memory");
        goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; owned != NULL && i < n; i++)
        free(owned[i]);
    free(owned);
    free(cm);
    return rc;
}

static int completion_prompt(struct conn *c, json_t *req, struct gb_ids *ids)
{
    json_t *p = json_object_get(req, "prompt");
    const struct gb_tok *tok = c->srv->m->tok;
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0)))
        p = json_array_get(p, 0);
    if (json_is_string(p)) {
        if (gb_tok_add_bos(tok) && gb_ids_push(ids, gb_tok_bos(tok)) != 0)
            goto oom;
        if (gb_tok_encode(tok, json_string_value(p), json_string_length(p), 1, 1, ids) != 0)
            goto oom;
        return 0;
    }
    if (json_is_array(p) && json_array_size(p) > 0) {
        size_t i;
        json_t *t;
        json_array_foreach(p, i, t)
        {
            if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                json_integer_value(t) >= gb_tok_n_vocab(tok)) {
                send_error(c, 400, "prompt", NULL, "prompt[%zu] is not a token id of this model",
                           i);
                return -1;
            }
            if (gb_ids_push(ids, (int32_t)json_integer_value(t)) != 0)
                goto oom;
        }
        return 0;
    }
    send_error(c, 400, "prompt", NULL,
               "'prompt' must be a string, an array of one string, or an array of token ids");
    return -1;
oom:
    send_error(c, 500, NULL, NULL, "out of memory");
    return -1;
}

static void handle_generate(struct conn *c, const struct pending *r, int chat)
{
    json_error_t jerr;
    json_t *req = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
    struct gb_ids ids = {0};
    struct gb_gen_params p = {0};
    long long max_tokens = chat ? 0 : 16;
    if (req == NULL || !json_is_object(req)) {
        send_error(c, 400, NULL, NULL, "We could not parse the JSON body of your request: %s",
                   req == NULL ? jerr.text : "not a JSON object");
        goto out;
    }
    c->chat = chat;
    c->include_usage = 0;
    c->sent_role = 0;
    json_t *st = json_object_get(req, "stream");
    if (st != NULL && !json_is_boolean(st) && !json_is_null(st)) {
        send_error(c, 400, "stream", NULL, "'stream' must be a boolean");
        goto out;
    }
    c->stream = json_is_true(st);
    if (check_model(c, req) != 0 || get_params(c, req, &p, &max_tokens) != 0)
        goto out;
    if ((chat ? chat_prompt(c, req, &ids) : completion_prompt(c, req, &ids)) != 0)
        goto out;
    if (ids.n == 0) {
        send_error(c, 400, "prompt", NULL, "the prompt is empty");
        goto out;
    }
    if ((long long)ids.n >= c->srv->n_ctx) {
        send_error(c, 400, chat ? "messages" : "prompt", "context_length_exceeded",
                   "This model's maximum context length is %d tokens; the prompt has %zu",
                   c->srv->n_ctx, ids.n);
        goto out;
    }
    long long room = c->srv->n_ctx - (long long)ids.n;
    p.max_tokens = (int)(max_tokens == 0 || max_tokens > room ? room : max_tokens);
    struct gb_req *gr = gb_req_new(&ids, &p);
    if (gr == NULL) {
        send_error(c, 500, NULL, NULL, "out of memory");
        goto out;
    }
    memset(&p, 0, sizeof(p)); /* the request owns the stop strings now */
    if (gb_engine_submit(c->srv->e, gr) != 0) {
        gb_req_unref(gr);
        send_error(c, 503, NULL, "server_busy", "too many requests are waiting; retry later");
        goto out;
    }
    c->req = gr;
    c->created = (long long)time(NULL);
    snprintf(c->id, sizeof(c->id), "%s-%llu", chat ? "chatcmpl" : "cmpl", ++c->srv->next_id);
    if (c->stream) {
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                   "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
        char h[256];
        int n =
            snprintf(h, sizeof(h), "%s%s\r\n", head, c->keep_alive ? "" : "Connection: close\r\n");
        c->ans.status = 200;
        send_copy(c, h, (size_t)n);
    }
out:
    for (size_t i = 0; i < p.n_stop; i++)
        free(p.stop[i]);
    gb_ids_free(&ids);
    json_decref(req);
}

static void handle(struct conn *c, const struct pending *r)
{
    struct gb_server *s = c->srv;
    char path[MAX_TARGET];
    snprintf(path, sizeof(path), "%s", r->target);
    char *q = strchr(path, '?');
    if (q != NULL)
        *q = 0;
    int get = strcmp(r->method, "GET") == 0, post = strcmp(r->method, "POST") == 0;
    if (strcmp(path, "/health") == 0 && get) {
        struct gb_engine_stats st;
        gb_engine_stats(s->e, &st);
        json_t *h = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i}", "status", "ok",
                              "backend", s->b->kind, "device", s->b->device, "model", s->model_id,
                              "cc_mode", s->o.cc_mode, "chat_template",
                              gb_chat_family_name(s->chat), "n_ctx", s->n_ctx, "slots",
                              s->b->n_slots, "running", st.running, "waiting", st.waiting);
        if (h != NULL && s->o.sealed_name != NULL)
            json_object_set_new(h, "sealed",
                                json_pack("{s:s, s:I, s:s}", "name", s->o.sealed_name, "version",
                                          (json_int_t)s->o.sealed_version, "sha256",
                                          s->o.sealed_sha256));
        send_json(c, 200, h);
        finish_response(c);
    } else if (strcmp(path, "/v1/models") == 0 && get) {
        send_json(c, 200,
                  json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id",
                            s->model_id, "object", "model", "created", (json_int_t)0, "owned_by",
                            "ccgate"));
        finish_response(c);
    } else if (strcmp(path, "/v1/completions") == 0 && post) {
        handle_generate(c, r, 0);
    } else if (strcmp(path, "/v1/chat/completions") == 0 && post) {
        handle_generate(c, r, 1);
    } else if (strcmp(path, "/health") == 0 || strcmp(path, "/v1/models") == 0 ||
               strcmp(path, "/v1/completions") == 0 || strcmp(path, "/v1/chat/completions") == 0) {
        send_error(c, 405, NULL, NULL, "Method %s not allowed on %.200s", r->method, path);
    } else {
        send_error(c, 404, NULL, NULL, "Invalid URL (%s %.200s)", r->method, path);
    }
}

static void pending_free(struct pending *p)
{
    free(p->body);
    memset(p, 0, sizeof(*p));
}

/* Answers the next complete request, unless one is being answered. */
static void serve_next(struct conn *c)
{
    while (!c->busy && !gone(c) && c->qn > 0) {
        struct pending r = c->q[0];
        memmove(&c->q[0], &c->q[1], (size_t)(c->qn - 1) * sizeof(c->q[0]));
        c->qn--;
        c->busy = 1;
        c->keep_alive = r.keep_alive;
        ans_begin(c, &r);
        handle(c, &r);
        pending_free(&r);
    }
    if (!gone(c) && !c->input_done && c->qn < MAX_PIPELINED)
        (void)uv_read_start(&c->h.stream, on_alloc, on_read); /* no-op if reading */
    arm_timer(c);
}

/* ---- HTTP parsing callbacks ---- */

static int on_head(void *arg, const struct cg_http_head *h)
{
    struct conn *c = arg;
    pending_free(&c->cur);
    c->body_cap = 0;
    snprintf(c->cur.method, sizeof(c->cur.method), "%s", h->method);
    snprintf(c->cur.target, sizeof(c->cur.target), "%s", h->target);
    c->cur.keep_alive = h->keep_alive;
    c->cur.start_ns = uv_hrtime();
    const struct cg_http_header *rid = cg_http_head_get(h, "x-request-id");
    if (rid != NULL && cg_httpmsg_request_id_valid(rid->value, rid->value_len))
        snprintf(c->cur.rid, sizeof(c->cur.rid), "%.*s", (int)rid->value_len, rid->value);
    /* invite the body now, unless an answer is being written (it would interleave) or the
     * body is too large anyway */
    if (h->expect_continue && !c->busy && c->qn == 0 &&
        !(h->framing == CG_HTTP_BODY_LENGTH && h->content_length > c->srv->o.max_body))
        send_copy(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int on_body(void *arg, const uint8_t *data, size_t len)
{
    struct conn *c = arg;
    if (c->cur.body_len + len > c->srv->o.max_body)
        return CG_ELIMIT;
    if (c->cur.body_len + len > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        while (cap < c->cur.body_len + len)
            cap *= 2;
        char *b = realloc(c->cur.body, cap);
        if (b == NULL)
            return -ENOMEM;
        c->cur.body = b;
        c->body_cap = cap;
    }
    memcpy(c->cur.body + c->cur.body_len, data, len);
    c->cur.body_len += len;
    return 0;
}

static int on_complete(void *arg)
{
    struct conn *c = arg;
    if (c->qn == MAX_PIPELINED)
        return CG_ELIMIT; /* reading stops at the limit, so this is a protocol abuse */
    c->q[c->qn++] = c->cur;
    memset(&c->cur, 0, sizeof(c->cur));
    c->body_cap = 0;
    return 0;
}

static const struct cg_http_callbacks http_cb = {on_head, on_body, on_complete};

/* ---- connections ---- */

/* After gb_server_close: once every handle is closed, report and free the server. */
static void on_async_closed(uv_handle_t *h)
{
    struct gb_server *s = h->data;
    if (s->close_cb != NULL)
        s->close_cb(s->close_arg);
    free(s);
}

static void on_timeout(struct cg_conn *conn)
{
    struct conn *c = conn->data;
    cg_logf(CG_LOG_INFO, "worker.timeout",
            CG_LF_STR("state", cg_http_parser_in_message(c->parser) ? "request" : "idle"));
    cg_conn_close(conn, UV_ETIMEDOUT, "timeout");
}

static void on_socket_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    cg_conn_release(&c->conn);
}

static void on_close(struct cg_conn *conn)
{
    struct conn *c = conn->data;
    uv_close(&c->h.handle, on_socket_closed);
}

static void on_free(struct cg_conn *conn)
{
    struct conn *c = conn->data;
    cg_http_parser_free(c->parser);
    pending_free(&c->cur);
    for (int i = 0; i < c->qn; i++)
        pending_free(&c->q[i]);
    end_request(c);
    free(c);
}

static void on_stopped(struct cg_conns *set)
{
    struct gb_server *s = set->data;
    if (!s->start_failed) /* else gb_server_start closes it */
        uv_close((uv_handle_t *)&s->async, on_async_closed);
}

/*
 * Sets c's deadline for its state: none while an answer is produced; a request must arrive
 * whole within request_timeout_ms of its first byte (trickling bytes do not extend it); an
 * idle connection lives idle_timeout_ms.
 */
static void arm_timer(struct conn *c)
{
    if (gone(c))
        return;
    int mode = c->busy || c->qn > 0 ? 0 : cg_http_parser_in_message(c->parser) ? 1 : 2;
    if (mode == c->timer_mode && mode != 2)
        return;
    c->timer_mode = mode;
    cg_conn_timer(&c->conn, mode == 0   ? 0
                            : mode == 1 ? c->srv->o.request_timeout_ms
                                        : c->srv->o.idle_timeout_ms);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static char slab[65536]; /* the loop is single-threaded and reads are consumed at once */
    *buf = uv_buf_init(slab, sizeof(slab));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    if (gone(c))
        return;
    if (nread < 0) {
        /* EOF or error: the client is gone (HTTP/1.1 clients do not half-close) */
        conn_close(c);
        return;
    }
    if (nread == 0 || c->input_done)
        return;
    long n = cg_http_parser_feed(c->parser, (const uint8_t *)buf->base, (size_t)nread);
    if (n < 0) {
        int status = cg_http_parser_status(c->parser);
        c->input_done = 1;
        uv_read_stop(st);
        /* the error ends the connection; requests still queued behind it are dropped */
        for (int i = 0; i < c->qn; i++)
            pending_free(&c->q[i]);
        c->qn = 0;
        if (c->busy) {
            conn_close(c);
            return;
        }
        c->busy = 1;
        c->keep_alive = 0;
        ans_begin(c, &c->cur);
        send_error(c, status ? status : 400, NULL, NULL, "%s", cg_http_parser_reason(c->parser));
        return;
    }
    if (c->qn >= MAX_PIPELINED)
        uv_read_stop(st);
    serve_next(c);
}

static void on_accept(struct cg_conns *set, uv_stream_t *l)
{
    struct gb_server *s = set->data;
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        cg_log_error("worker.accept", "err=\"out of memory\"");
        return;
    }
    cg_conn_init(&c->conn, set, c);
    c->srv = s;
    int is_pipe = l->type == UV_NAMED_PIPE;
    int rc = is_pipe ? uv_pipe_init(s->loop, &c->h.pipe, 0) : uv_tcp_init(s->loop, &c->h.tcp);
    if (rc != 0) { /* no handle to close: libuv's init does not fail on Linux */
        cg_conn_close(&c->conn, rc, "init_failed");
        return;
    }
    c->h.handle.data = c;
    cg_conn_hold(&c->conn); /* released when the socket is closed (on_close) */
    struct cg_http_limits lim = {.max_body_bytes = s->o.max_body};
    if ((rc = uv_accept(l, &c->h.stream)) != 0 ||
        (rc = cg_http_parser_new(CG_HTTP_REQUEST, &lim, &http_cb, c, &c->parser)) != 0) {
        cg_conn_close(&c->conn, rc, "accept_failed");
        return;
    }
    if (cg_conns_full(set)) {
        cg_conn_close(&c->conn, UV_EBUSY, "too_many_connections");
        return;
    }
    if (!is_pipe)
        (void)uv_tcp_nodelay(&c->h.tcp, 1);
    if ((rc = uv_read_start(&c->h.stream, on_alloc, on_read)) != 0)
        cg_conn_close(&c->conn, rc, "read_failed");
    else
        arm_timer(c);
}

/* Closing the server closes every connection at once (the worker's answers are not
 * resumable), so there is no per-connection drain step. */
static const struct cg_conn_ops conn_ops = {
    .on_accept = on_accept,
    .on_timeout = on_timeout,
    .on_close = on_close,
    .on_free = on_free,
    .on_stopped = on_stopped,
};

int gb_parse_listen(const char *s, struct sockaddr_storage *addr, char *err, size_t errlen)
{
    char host[64];
    const char *colon;
    memset(addr, 0, sizeof(*addr));
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
            goto bad;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = 0;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
            goto bad;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != 0 || colon[1] == 0 || port < 0 || port > 65535)
        goto bad;
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
    if (uv_ip4_addr(host, (int)port, a4) == 0) {
        if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127) {
            snprintf(err, errlen, "--listen %s: the worker binds to loopback only", s);
            return CG_ECONFIG;
        }
        return 0;
    }
    if (uv_ip6_addr(host, (int)port, a6) == 0) {
        if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) {
            snprintf(err, errlen, "--listen %s: the worker binds to loopback only", s);
            return CG_ECONFIG;
        }
        return 0;
    }
bad:
    snprintf(err, errlen, "--listen %s: expected 127.0.0.1:PORT, [::1]:PORT or unix:PATH", s);
    return CG_ECONFIG;
}

void gb_server_close(struct gb_server *s, void (*cb)(void *arg), void *arg)
{
    s->close_cb = cb;
    s->close_arg = arg;
    gb_engine_free(s->e); /* joins the engine thread: no more notifications */
    s->e = NULL;
    cg_conns_abort(&s->set, "shutdown");
}

int gb_server_start(uv_loop_t *loop, const struct gb_model *m, struct gb_backend *b,
                    const struct gb_engine_opts *eo, const struct gb_server_opts *o,
                    struct gb_server **out, char *bound, size_t boundlen, char *err, size_t errlen)
{
    struct gb_server *s = calloc(1, sizeof(*s));
    struct cg_addr addr;
    int rc;
    *out = NULL;
    if (s == NULL)
        return -ENOMEM;
    s->loop = loop;
    s->m = m;
    s->b = b;
    s->o = *o;
    if (s->o.request_timeout_ms == 0)
        s->o.request_timeout_ms = 30000;
    if (s->o.idle_timeout_ms == 0)
        s->o.idle_timeout_ms = 300000;
    s->n_ctx = eo->n_ctx;
    s->chat = gb_chat_detect(m);
    snprintf(s->model_id, sizeof(s->model_id), "%s", o->model_id);
    memset(&addr, 0, sizeof(addr));
    snprintf(addr.text, sizeof(addr.text), "%s", o->listen);
    if (strncmp(o->listen, "unix:", 5) == 0) {
        addr.is_unix = 1;
        if (strlen(o->listen + 5) >= sizeof(addr.path)) {
            snprintf(err, errlen, "--listen %s: the path is too long", o->listen);
            free(s);
            return CG_ECONFIG;
        }
        snprintf(addr.path, sizeof(addr.path), "%s", o->listen + 5);
    } else if ((rc = gb_parse_listen(o->listen, &addr.ss, err, errlen)) != 0) {
        free(s);
        return rc;
    }
    if ((rc = uv_async_init(loop, &s->async, on_async)) != 0) {
        free(s);
        return rc;
    }
    s->async.data = s;
    rc = cg_conns_init(&s->set, loop, &conn_ops, s);
    if (rc != 0) {
        uv_close((uv_handle_t *)&s->async, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        free(s);
        return rc;
    }
    s->set.name = "worker";
    s->set.max_conns = o->max_conns > 0 ? (unsigned)o->max_conns : 0;
    rc = cg_conns_listen(&s->set, &addr, 128);
    if (rc == 0)
        rc = gb_engine_new(m, b, eo, notify, &s->async, &s->e);
    if (rc != 0) {
        snprintf(err, errlen, "cannot serve on %s: %s", o->listen, cg_strerror(rc));
        goto fail;
    }
    if (addr.is_unix) {
        snprintf(bound, boundlen, "%s", o->listen);
    } else {
        struct sockaddr_storage sa;
        int len = sizeof(sa);
        if (uv_tcp_getsockname(&s->set.listener.tcp, (struct sockaddr *)&sa, &len) != 0 ||
            cg_addr_format((struct sockaddr *)&sa, bound, boundlen) != 0)
            snprintf(bound, boundlen, "%s", o->listen);
    }
    *out = s;
    return 0;
fail:
    /* handles are closed asynchronously; the loop must run to release them */
    s->start_failed = 1;
    cg_conns_drain(&s->set);
    uv_close((uv_handle_t *)&s->async, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* runs the close callbacks of the handles closed above */
    free(s);
    return rc;
}
