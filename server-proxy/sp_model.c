#include "sp_model.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ccgate/err.h"
#include "ccgate/httpc.h"
#include "ccgate/log.h"

#define QUERY_TIMEOUT_MS 2000
#define QUERY_MAX_BODY (64 * 1024)
#define FIRST_RETRY_MS 1000

struct sp_model_query {
    uv_loop_t *loop;
    struct cg_addr upstream;
    unsigned interval_ms;
    struct sp_attester *a;
    uv_timer_t timer;
    uv_work_t work;
    int inflight, closing, timer_closed, answered;
    /* the query's result, written on the pool thread, read in after_work */
    int rc;
    char err[256];
    struct cg_model_claim model;
    /* what was last logged */
    int logged_rc;
    struct cg_model_claim last;
};

int sp_model_parse_health(const char *body, size_t len, struct cg_model_claim *m, char *err,
                          size_t errlen)
{
    memset(m, 0, sizeof(*m));
    json_t *h = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *s = json_is_object(h) ? json_object_get(h, "sealed") : NULL;
    int rc = 0;
    if (s == NULL || json_is_null(s))
        goto out;
    json_t *name = json_object_get(s, "name"), *ver = json_object_get(s, "version"),
           *sha = json_object_get(s, "sha256");
    const char *n = json_string_value(name), *hex = json_string_value(sha);
    size_t nl = n != NULL ? json_string_length(name) : 0;
    if (!json_is_object(s))
        rc = cg_errf(err, errlen, CG_EEVIDENCE, "sealed: expected an object");
    else if (n == NULL || !cg_model_name_ok(n, nl))
        rc = cg_errf(err, errlen, CG_EEVIDENCE,
                     "sealed.name: expected 1 to %d printable ASCII characters", CG_MODEL_NAME_MAX);
    else if (!json_is_integer(ver) || json_integer_value(ver) < 0)
        rc = cg_errf(err, errlen, CG_EEVIDENCE, "sealed.version: expected an integer >= 0");
    else if (hex == NULL || strlen(hex) != 64 || cg_unhex(m->sha256, 32, hex) != 0)
        rc = cg_errf(err, errlen, CG_EEVIDENCE, "sealed.sha256: expected 64 hex digits");
    if (rc == 0) {
        memcpy(m->name, n, nl);
        m->version = (uint64_t)json_integer_value(ver);
        m->present = 1;
    } else {
        memset(m, 0, sizeof(*m));
    }
out:
    json_decref(h);
    return rc;
}

static void work_cb(uv_work_t *w)
{
    struct sp_model_query *q = w->data;
    struct cg_httpc_resp r;
    const struct cg_httpc_req req = {.addr = &q->upstream,
                                     .method = "GET",
                                     .path = "/health",
                                     .timeout_ms = QUERY_TIMEOUT_MS,
                                     .max_body = QUERY_MAX_BODY};
    memset(&q->model, 0, sizeof(q->model));
    q->err[0] = '\0';
    q->rc = cg_httpc_do(&req, &r, q->err, sizeof(q->err));
    if (q->rc == 0 && r.status != 200)
        q->rc = cg_errf(q->err, sizeof(q->err), CG_EHTTP, "GET /health: status %d", r.status);
    if (q->rc == 0)
        q->rc = sp_model_parse_health((const char *)r.body.data, r.body.len, &q->model, q->err,
                                      sizeof(q->err));
    cg_buf_free(&r.body);
}

static void on_timer(uv_timer_t *t);

static void after_work_cb(uv_work_t *w, int status)
{
    struct sp_model_query *q = w->data;
    q->inflight = 0;
    if (q->closing) {
        if (q->timer_closed)
            free(q);
        return;
    }
    int rc = status < 0 ? status : q->rc;
    if (rc == 0 || rc == CG_EEVIDENCE) {
        /* An answer: what it names is what the claims say (a malformed one names nothing). */
        q->answered = 1;
        sp_attester_set_model(q->a, &q->model);
        const struct cg_model_claim *m = &q->model;
        if (rc != q->logged_rc || m->present != q->last.present ||
            strcmp(m->name, q->last.name) != 0 || m->version != q->last.version ||
            memcmp(m->sha256, q->last.sha256, 32) != 0) {
            char hex[65];
            cg_hex(hex, sizeof(hex), m->sha256, 32);
            if (rc != 0)
                cg_logf(CG_LOG_ERROR, "model.claim", CG_LF_STR("upstream", q->upstream.text),
                        CG_LF_STR("err", q->err), CG_LF_STR("claim", "none"));
            else if (m->present)
                cg_logf(CG_LOG_INFO, "model.claim", CG_LF_STR("name", m->name),
                        CG_LF_UINT("version", m->version), CG_LF_STR("sha256", hex));
            else
                cg_logf(CG_LOG_INFO, "model.claim", CG_LF_STR("upstream", q->upstream.text),
                        CG_LF_STR("claim", "none"),
                        CG_LF_STR("why", "the upstream's /health names no sealed model"));
            q->last = *m;
            q->logged_rc = rc;
        }
    } else if (rc != q->logged_rc) {
        /* No answer (the upstream is down or starting): the last claim stays. */
        cg_logf(CG_LOG_DEBUG, "model.query", CG_LF_STR("upstream", q->upstream.text),
                CG_LF_STR("err", q->err[0] ? q->err : cg_strerror(rc)));
        q->logged_rc = rc;
    }
    (void)uv_timer_start(&q->timer, on_timer, q->answered ? q->interval_ms : FIRST_RETRY_MS, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct sp_model_query *q = t->data;
    if (q->inflight || q->closing)
        return;
    q->work.data = q;
    if (uv_queue_work(q->loop, &q->work, work_cb, after_work_cb) == 0)
        q->inflight = 1;
    else
        (void)uv_timer_start(&q->timer, on_timer, FIRST_RETRY_MS, 0);
}

int sp_model_query_start(uv_loop_t *loop, const struct cg_addr *upstream, unsigned interval_s,
                         struct sp_attester *a, struct sp_model_query **out)
{
    struct sp_model_query *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return UV_ENOMEM;
    q->loop = loop;
    q->upstream = *upstream;
    q->interval_ms = interval_s * 1000;
    q->a = a;
    q->logged_rc = 1; /* nothing logged yet */
    (void)uv_timer_init(loop, &q->timer);
    q->timer.data = q;
    uv_unref((uv_handle_t *)&q->timer);
    on_timer(&q->timer);
    *out = q;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct sp_model_query *q = h->data;
    q->timer_closed = 1;
    if (!q->inflight)
        free(q);
}

void sp_model_query_close(struct sp_model_query *q)
{
    if (q == NULL)
        return;
    q->closing = 1;
    uv_close((uv_handle_t *)&q->timer, on_timer_closed);
}
