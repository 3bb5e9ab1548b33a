#include "sp_attester.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccgate/gpuev.h"
#include "ccgate/gpusim.h"
#include "ccgate/log.h"
#include "ccgate/nvml.h"

#define MAX_QUEUED_BATCHES 64
#define CERT_SLACK_S 3600 /* the certificate outlives its refresh by this much */

struct batch {
    struct batch *next;
    struct sp_attester *a;
    uv_work_t work;
    int periodic;
    size_t n_nonces;
    uint8_t nonces[CG_MAX_NONCES][CG_NONCE_LEN];
    struct sp_waiter waiters; /* list head */
    int64_t iat;
    uint8_t *claims;
    size_t claims_len;
    uint8_t report_data[CG_REPORT_DATA_LEN];
    struct cg_model_claim model; /* the attester's at prepare time (the loop's copy) */
    struct cg_evidence ev;
    int rc;
};

struct sp_attester {
    uv_loop_t *loop;
    struct cg_provider *provider;
    struct cg_gpu_provider *gpu; /* owned; NULL: no GPU evidence */
    struct cg_ratls_key *key;
    unsigned refresh_s, window_ms, batch_max;
    unsigned delay_ms; /* test only: added to each evidence request on the pool thread */
    uint8_t *cert; /* periodic certificate */
    size_t cert_len;
    uv_timer_t refresh_timer;
    uv_timer_t window_timer;
    struct batch *open;    /* collecting nonces */
    struct batch *pending; /* closed, waiting for the provider (FIFO) */
    size_t n_pending;
    int inflight;
    int closed;
    struct cg_model_claim model; /* the loaded model the claims name (present 0: none) */
    struct sp_attester_stats stats;
};

static struct batch *batch_new(struct sp_attester *a, int periodic)
{
    struct batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->a = a;
    b->periodic = periodic;
    b->waiters.next = b->waiters.prev = &b->waiters;
    b->work.data = b;
    return b;
}

static void batch_free(struct batch *b)
{
    free(b->claims);
    cg_evidence_clear(&b->ev);
    free(b);
}

/*
 * Builds claims and report_data for the batch: on the loop thread before the work, or with
 * a GPU provider on the worker thread (gpu_claims), since the GPU evidence goes in the claims.
 */
static int batch_prepare(struct batch *b)
{
    b->iat = (int64_t)time(NULL);
    b->model = b->a->model;
    if (b->a->gpu != NULL)
        return 0;
    return cg_ratls_claims_ext(b->a->key, (const uint8_t(*)[CG_NONCE_LEN])b->nonces, b->n_nonces,
                               b->iat, NULL, 0, &b->model, &b->claims, &b->claims_len,
                               b->report_data);
}

/*
 * Each GPU signs a report over the nonce derived from this batch's key, iat and nonces; the
 * bundle goes into the claims, whose hash the CPU report then carries. Blocking.
 */
static int gpu_claims(struct batch *b)
{
    struct sp_attester *a = b->a;
    const uint8_t(*nonces)[CG_NONCE_LEN] = (const uint8_t(*)[CG_NONCE_LEN])b->nonces;
    uint8_t nonce[CG_NONCE_LEN], *gpu = NULL;
    size_t gpu_len = 0;
    struct cg_gpuev *ev = calloc(1, sizeof(*ev));
    if (ev == NULL)
        return UV_ENOMEM;
    cg_ratls_gpu_nonce(a->key, nonces, b->n_nonces, b->iat, nonce);
    int rc = a->gpu->get(a->gpu, nonce, ev);
    if (rc == 0)
        rc = cg_gpuev_encode(ev, &gpu, &gpu_len);
    cg_gpuev_clear(ev);
    free(ev);
    if (rc == 0)
        rc = cg_ratls_claims_ext(a->key, nonces, b->n_nonces, b->iat, gpu, gpu_len, &b->model,
                                 &b->claims, &b->claims_len, b->report_data);
    free(gpu);
    return rc;
}

/* The evidence for a prepared batch: GPU evidence first (when any), then the CPU's. */
static int batch_evidence(struct batch *b)
{
    int rc = b->a->gpu != NULL ? gpu_claims(b) : 0;
    return rc != 0 ? rc : b->a->provider->get(b->a->provider, b->report_data, &b->ev);
}

static void work_cb(uv_work_t *req)
{
    struct batch *b = req->data;
    if (b->a->delay_ms > 0)
        uv_sleep(b->a->delay_ms);
    b->rc = batch_evidence(b);
}

static void launch_next(struct sp_attester *a);

static void after_work_cb(uv_work_t *req, int status)
{
    struct batch *b = req->data;
    struct sp_attester *a = b->a;
    a->inflight = 0;
    a->stats.evidence_requests++;
    uint8_t *der = NULL;
    size_t der_len = 0;
    int rc = status < 0 ? status : b->rc;
    if (rc == 0)
        rc = cg_ratls_cert_new(a->key, b->claims, b->claims_len, &b->ev, b->iat,
                               a->refresh_s + CERT_SLACK_S, &der, &der_len);
    if (rc < 0) {
        a->stats.evidence_failures++;
        cg_logf(CG_LOG_ERROR, "evidence.failed", CG_LF_STR("provider", a->provider->name),
                CG_LF_UINT("nonces", b->n_nonces), CG_LF_STR("err", cg_strerror(rc)));
    } else if (b->periodic) {
        free(a->cert);
        a->cert = der;
        a->cert_len = der_len;
        der = NULL;
        a->stats.refreshes++;
        a->stats.cert_iat = b->iat;
        cg_logf(CG_LOG_INFO, "evidence.refreshed", CG_LF_STR("provider", a->provider->name),
                CG_LF_INT("iat", b->iat));
    } else {
        cg_logf(CG_LOG_DEBUG, "evidence.batch", CG_LF_UINT("nonces", b->n_nonces));
    }
    while (b->waiters.next != &b->waiters) {
        struct sp_waiter *w = b->waiters.next;
        sp_attester_cancel(w);
        int wrc = rc;
        if (wrc == 0)
            wrc = cg_tls_use_cert(w->tls, der, der_len, a->key);
        w->ready(w, wrc);
    }
    free(der);
    batch_free(b);
    launch_next(a);
}

static void launch_next(struct sp_attester *a)
{
    while (!a->inflight && a->pending != NULL && !a->closed) {
        struct batch *b = a->pending;
        a->pending = b->next;
        a->n_pending--;
        int rc = batch_prepare(b);
        if (rc == 0)
            rc = uv_queue_work(a->loop, &b->work, work_cb, after_work_cb);
        if (rc == 0) {
            a->inflight = 1;
            return;
        }
        b->rc = rc;
        after_work_cb(&b->work, rc);
    }
}

static void enqueue(struct sp_attester *a, struct batch *b)
{
    struct batch **pp = &a->pending;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = b;
    a->n_pending++;
    launch_next(a);
}

static void close_open_batch(struct sp_attester *a)
{
    if (a->open == NULL)
        return;
    struct batch *b = a->open;
    a->open = NULL;
    (void)uv_timer_stop(&a->window_timer);
    enqueue(a, b);
}

static void on_window(uv_timer_t *t)
{
    close_open_batch(t->data);
}

static void refresh_now(struct sp_attester *a)
{
    struct batch *b = batch_new(a, 1);
    if (b == NULL) {
        cg_logf(CG_LOG_ERROR, "evidence.refresh", CG_LF_STR("err", "out of memory"));
        return;
    }
    enqueue(a, b);
}

static void on_refresh(uv_timer_t *t)
{
    refresh_now(t->data);
}

void sp_attester_set_model(struct sp_attester *a, const struct cg_model_claim *m)
{
    const struct cg_model_claim *cur = &a->model;
    int present = m != NULL && m->present;
    if (a->closed || (present == cur->present &&
                      (!present || (strcmp(m->name, cur->name) == 0 && m->version == cur->version &&
                                    memcmp(m->sha256, cur->sha256, sizeof(m->sha256)) == 0))))
        return;
    memset(&a->model, 0, sizeof(a->model));
    if (present)
        a->model = *m;
    /* Batches prepared from now on carry it; the periodic certificate is made again now. */
    refresh_now(a);
}

int sp_attester_cert_cb(void *arg, struct cg_tls *t, const uint8_t *nonce)
{
    struct sp_attester *a = arg;
    if (nonce == NULL)
        return cg_tls_use_cert(t, a->cert, a->cert_len, a->key);
    if (a->closed)
        return CG_ETLS;
    struct sp_waiter *w = cg_tls_get_data(t);
    if (a->open == NULL) {
        if (a->n_pending >= MAX_QUEUED_BATCHES) {
            cg_logf(CG_LOG_WARN, "evidence.overload", CG_LF_UINT("queued_batches", a->n_pending));
            return CG_ELIMIT;
        }
        a->open = batch_new(a, 0);
        if (a->open == NULL)
            return UV_ENOMEM;
        (void)uv_timer_start(&a->window_timer, on_window, a->window_ms, 0);
    }
    struct batch *b = a->open;
    memcpy(b->nonces[b->n_nonces++], nonce, CG_NONCE_LEN);
    memcpy(w->nonce, nonce, CG_NONCE_LEN);
    w->tls = t;
    w->batch = b;
    w->next = &b->waiters;
    w->prev = b->waiters.prev;
    b->waiters.prev->next = w;
    b->waiters.prev = w;
    a->stats.nonce_handshakes++;
    if (b->n_nonces >= a->batch_max)
        close_open_batch(a);
    return CG_TLS_PENDING;
}

void sp_attester_cancel(struct sp_waiter *w)
{
    if (w->batch == NULL)
        return;
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->next = w->prev = NULL;
    w->batch = NULL;
}

int sp_attester_gpu_provider(const char *mode, const char *tee, const char *state_dir,
                             const char *collateral_dir, struct cg_gpu_provider **out, char *err,
                             size_t errlen)
{
    *out = NULL;
    if (strcmp(mode, "none") == 0)
        return 0;
    if (strcmp(mode, "sim") == 0) {
        if (strcmp(tee, "sim") != 0) {
            snprintf(err, errlen, "the simulated GPU needs the simulated TEE (--tee sim)");
            return CG_ECONFIG;
        }
        int rc = state_dir != NULL ? cg_gpusim_provider_new(state_dir, out) : CG_ECONFIG;
        if (rc != 0)
            snprintf(err, errlen,
                     "cannot load the simulated GPU from --state-dir (run `ccgate sim-init "
                     "--state-dir DIR --gpu`): %s",
                     cg_strerror(rc));
        return rc;
    }
    if (strcmp(mode, "nvml") != 0 && strcmp(mode, "auto") != 0) {
        snprintf(err, errlen, "expected none, sim, nvml or auto");
        return CG_ECONFIG;
    }
    int rc = cg_nvml_provider_new(collateral_dir, out, err, errlen);
    if (rc == CG_ENOTEE && strcmp(mode, "auto") == 0) {
        /* No NVIDIA GPU with CC support here: no GPU evidence, never the simulated GPU. */
        cg_log_info("gpu.auto", "picked=none why=\"%s\"", err);
        return 0;
    }
    return rc;
}

int sp_attester_new(uv_loop_t *loop, struct cg_provider *provider, struct cg_gpu_provider *gpu,
                    unsigned refresh_s, unsigned window_ms, unsigned batch_max,
                    struct sp_attester **out)
{
    struct batch *b = NULL;
    struct sp_attester *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        if (gpu != NULL)
            gpu->free(gpu);
        return UV_ENOMEM;
    }
    a->loop = loop;
    a->provider = provider;
    a->gpu = gpu;
    a->refresh_s = refresh_s;
    a->window_ms = window_ms;
    a->batch_max = batch_max > CG_MAX_NONCES ? CG_MAX_NONCES : batch_max;
    int rc = cg_ratls_key_new(&a->key);
    if (rc < 0)
        goto out;

    b = batch_new(a, 1);
    if (b == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    rc = batch_prepare(b);
    if (rc == 0)
        rc = batch_evidence(b);
    if (rc == 0)
        rc = cg_ratls_cert_new(a->key, b->claims, b->claims_len, &b->ev, b->iat,
                               refresh_s + CERT_SLACK_S, &a->cert, &a->cert_len);
    if (rc < 0)
        goto out;
    a->stats.evidence_requests = 1;
    a->stats.cert_iat = b->iat;

    (void)uv_timer_init(loop, &a->refresh_timer);
    (void)uv_timer_init(loop, &a->window_timer);
    a->refresh_timer.data = a->window_timer.data = a;
    (void)uv_timer_start(&a->refresh_timer, on_refresh, (uint64_t)refresh_s * 1000,
                         (uint64_t)refresh_s * 1000);
    uv_unref((uv_handle_t *)&a->refresh_timer);
out:
    if (b != NULL)
        batch_free(b);
    if (rc < 0) {
        sp_attester_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void sp_attester_set_evidence_delay(struct sp_attester *a, unsigned ms)
{
    a->delay_ms = ms;
}

void sp_attester_close(struct sp_attester *a)
{
    a->closed = 1;
    uv_close((uv_handle_t *)&a->refresh_timer, NULL);
    uv_close((uv_handle_t *)&a->window_timer, NULL);
    struct batch *lists[] = {a->open, a->pending};
    a->open = NULL;
    a->pending = NULL;
    for (size_t i = 0; i < 2; i++) {
        for (struct batch *b = lists[i]; b != NULL;) {
            struct batch *next = b->next;
            while (b->waiters.next != &b->waiters) {
                struct sp_waiter *w = b->waiters.next;
                sp_attester_cancel(w);
                w->ready(w, CG_ETLS);
            }
            batch_free(b);
            b = next;
        }
    }
}

void sp_attester_free(struct sp_attester *a)
{
    if (a == NULL)
        return;
    cg_ratls_key_free(a->key);
    if (a->gpu != NULL)
        a->gpu->free(a->gpu);
    free(a->cert);
    free(a);
}

const struct sp_attester_stats *sp_attester_stats(const struct sp_attester *a)
{
    return &a->stats;
}
