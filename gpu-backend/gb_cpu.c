#include "gb_backend.h"
#include "gb_gguf.h"
#include "gb_model.h"
#include "gb_quant.h"

#include "ccgate/err.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fixed set of workers that run one job at a time; the caller is worker 0. */
struct pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    uint64_t gen;
    int running, quit;
    void (*fn)(void *arg, int worker);
    void *arg;
};

struct worker_arg {
    struct pool *p;
    int idx;
};

static void *worker_main(void *a)
{
    struct worker_arg *wa = a;
    struct pool *p = wa->p;
    int idx = wa->idx;
    uint64_t seen = 0;
    free(wa);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->quit)
            pthread_cond_wait(&p->start, &p->mu);
        if (p->quit)
            break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        p->fn(p->arg, idx);
        pthread_mutex_lock(&p->mu);
        if (--p->running == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_run(struct pool *p, void (*fn)(void *, int), void *arg)
{
    if (p->n <= 1) {
        fn(arg, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->running = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0);
    pthread_mutex_lock(&p->mu);
    while (p->running > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void pool_stop(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->th[i], NULL);
    free(p->th);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
}

static int pool_start(struct pool *p, int n)
{
    memset(p, 0, sizeof(*p));
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    p->th = calloc((size_t)n, sizeof(pthread_t));
    if (p->th == NULL)
        return -ENOMEM;
    for (int i = 1; i < n; i++) {
        struct worker_arg *wa = malloc(sizeof(*wa));
        if (wa == NULL)
            return -ENOMEM;
        wa->p = p;
        wa->idx = i;
        if (pthread_create(&p->th[i], NULL, worker_main, wa) != 0) {
            free(wa);
            return -EAGAIN;
        }
        p->n = i + 1;
    }
    return 0;
}

struct cpu {
    struct gb_backend b;
    const struct gb_model *m;
    struct pool pool;
    float *kc, *vc; /* [slot][layer][ctx][kvd] */
    /* per-step scratch, sized for max_tokens */
    float *x, *xn, *q, *k, *v, *att, *o, *g, *u, *rope;
    float *wrow;   /* per worker: one dequantised row */
    float *scores; /* per worker: n_ctx attention scores */
    size_t wrow_len;
};

static size_t kv_index(const struct cpu *c, int slot, uint32_t layer, int pos)
{
    const struct gb_hparams *hp = &c->m->hp;
    size_t kvd = (size_t)hp->n_kv_head * hp->head_dim;
    return (((size_t)slot * hp->n_layer + layer) * (size_t)c->b.n_ctx + (size_t)pos) * kvd;
}

/* ---- y[t][r] = W[r] . x[t] for n tokens, rows split among workers ---- */

struct mm_job {
    struct cpu *c;
    const struct gb_wt *w;
    const float *x;
    int n;
    float *y;
    atomic_uint next;
};

#define MM_CHUNK 16

static void mm_work(void *arg, int worker)
{
    struct mm_job *j = arg;
    const struct gb_wt *w = j->w;
    float *tmp = j->c->wrow + (size_t)worker * j->c->wrow_len;
    size_t n_in = w->n_in;
    for (;;) {
        uint64_t r0 = (uint64_t)atomic_fetch_add(&j->next, MM_CHUNK);
        if (r0 >= w->n_out)
            break;
        uint64_t r1 = r0 + MM_CHUNK < w->n_out ? r0 + MM_CHUNK : w->n_out;
        for (uint64_t r = r0; r < r1; r++) {
            const uint8_t *row = (const uint8_t *)w->data + r * w->row_bytes;
            const float *wr = (const float *)(const void *)row;
            if (w->type != GB_F32) {
                gb_dequant_row(w->type, row, tmp, n_in);
                wr = tmp;
            }
            for (int t = 0; t < j->n; t++)
                j->y[(size_t)t * w->n_out + r] = gb_dot(wr, j->x + (size_t)t * n_in, n_in);
        }
    }
}

static void matmul(struct cpu *c, const struct gb_wt *w, const float *x, int n, float *y)
{
    struct mm_job j = {.c = c, .w = w, .x = x, .n = n, .y = y};
    atomic_init(&j.next, 0);
    pool_run(&c->pool, mm_work, &j);
}

/* ---- attention: one task per (token, head) ---- */

struct att_job {
    struct cpu *c;
    const struct gb_batch *bt;
    uint32_t layer;
    atomic_uint next;
};

static void att_work(void *arg, int worker)
{
    struct att_job *j = arg;
    struct cpu *c = j->c;
    const struct gb_hparams *hp = &c->m->hp;
    uint32_t hd = hp->head_dim, group = hp->n_head / hp->n_kv_head;
    float *sc = c->scores + (size_t)worker * (size_t)c->b.n_ctx;
    float scale = 1.0f / sqrtf((float)hd);
    unsigned total = (unsigned)j->bt->n * hp->n_head;
    for (;;) {
        unsigned task = atomic_fetch_add(&j->next, 1);
        if (task >= total)
            break;
        int t = (int)(task / hp->n_head);
        uint32_t h = task % hp->n_head, kvh = h / group;
        int pos = j->bt->pos[t], slot = j->bt->seq[t];
        const float *qv = c->q + (size_t)t * hp->dim + (size_t)h * hd;
        float mx = -INFINITY;
        for (int p = 0; p <= pos; p++) {
            const float *kv = c->kc + kv_index(c, slot, j->layer, p) + (size_t)kvh * hd;
            sc[p] = gb_dot(qv, kv, hd) * scale;
            mx = sc[p] > mx ? sc[p] : mx;
        }
        float sum = 0;
        for (int p = 0; p <= pos; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        float *out = c->att + (size_t)t * hp->dim + (size_t)h * hd;
        memset(out, 0, hd * sizeof(float));
        for (int p = 0; p <= pos; p++) {
            const float *vv = c->vc + kv_index(c, slot, j->layer, p) + (size_t)kvh * hd;
            float a = sc[p] / sum;
            for (uint32_t d = 0; d < hd; d++)
                out[d] += a * vv[d];
        }
    }
}

static void rmsnorm(const float *x, const float *w, float *out, uint32_t dim, float eps)
{
    double ss = 0;
    for (uint32_t i = 0; i < dim; i++)
        ss += (double)x[i] * x[i];
    float r = (float)(1.0 / sqrt(ss / dim + eps));
    for (uint32_t i = 0; i < dim; i++)
        out[i] = x[i] * r * w[i];
}

static void rope(const struct gb_hparams *hp, float *vec, uint32_t n_heads, const float *cs)
{
    uint32_t hd = hp->head_dim, half = hp->n_rot / 2;
    for (uint32_t h = 0; h < n_heads; h++) {
        float *x = vec + (size_t)h * hd;
        for (uint32_t i = 0; i < half; i++) {
            float co = cs[2 * i], si = cs[2 * i + 1];
            uint32_t a = hp->rope_neox ? i : 2 * i, b = hp->rope_neox ? i + half : 2 * i + 1;
            float x0 = x[a], x1 = x[b];
            x[a] = x0 * co - x1 * si;
            x[b] = x0 * si + x1 * co;
        }
    }
}

static void embed(const struct gb_wt *e, int32_t tok, float *out)
{
    gb_dequant_row(e->type, (const uint8_t *)e->data + (size_t)tok * e->row_bytes, out, e->n_in);
}

static int cpu_forward(struct gb_backend *b, const struct gb_batch *bt, float *logits)
{
    struct cpu *c = (struct cpu *)b;
    const struct gb_model *m = c->m;
    const struct gb_hparams *hp = &m->hp;
    uint32_t dim = hp->dim, kvd = hp->n_kv_head * hp->head_dim, half = hp->n_rot / 2;
    int n = bt->n;
    if (n <= 0 || n > b->max_tokens)
        return CG_ELIMIT;
    for (int t = 0; t < n; t++) {
        if (bt->tok[t] < 0 || (uint32_t)bt->tok[t] >= hp->n_vocab || bt->pos[t] < 0 ||
            bt->pos[t] >= b->n_ctx || bt->seq[t] < 0 || bt->seq[t] >= b->n_slots)
            return CG_ELIMIT;
        embed(&m->tok_embd, bt->tok[t], c->x + (size_t)t * dim);
        double p = (double)bt->pos[t] * hp->rope_scale;
        for (uint32_t i = 0; i < half; i++) {
            double theta = p * pow((double)hp->rope_base, -2.0 * i / hp->n_rot);
            c->rope[((size_t)t * half + i) * 2] = (float)cos(theta);
            c->rope[((size_t)t * half + i) * 2 + 1] = (float)sin(theta);
        }
    }
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const struct gb_layer *L = &m->layers[l];
        for (int t = 0; t < n; t++)
            rmsnorm(c->x + (size_t)t * dim, L->attn_norm, c->xn + (size_t)t * dim, dim, hp->eps);
        matmul(c, &L->wq, c->xn, n, c->q);
        matmul(c, &L->wk, c->xn, n, c->k);
        matmul(c, &L->wv, c->xn, n, c->v);
        for (int t = 0; t < n; t++) {
            float *q = c->q + (size_t)t * dim, *k = c->k + (size_t)t * kvd;
            float *v = c->v + (size_t)t * kvd;
            if (L->bq != NULL)
                for (uint32_t i = 0; i < dim; i++)
                    q[i] += L->bq[i];
            if (L->bk != NULL)
                for (uint32_t i = 0; i < kvd; i++)
                    k[i] += L->bk[i], v[i] += L->bv[i];
            rope(hp, q, hp->n_head, c->rope + (size_t)t * half * 2);
            rope(hp, k, hp->n_kv_head, c->rope + (size_t)t * half * 2);
            size_t at = kv_index(c, bt->seq[t], l, bt->pos[t]);
            memcpy(c->kc + at, k, kvd * sizeof(float));
            memcpy(c->vc + at, v, kvd * sizeof(float));
        }
        struct att_job aj = {.c = c, .bt = bt, .layer = l};
        atomic_init(&aj.next, 0);
        pool_run(&c->pool, att_work, &aj);
        matmul(c, &L->wo, c->att, n, c->o);
        for (size_t i = 0; i < (size_t)n * dim; i++)
            c->x[i] += c->o[i];
        for (int t = 0; t < n; t++)
            rmsnorm(c->x + (size_t)t * dim, L->ffn_norm, c->xn + (size_t)t * dim, dim, hp->eps);
        matmul(c, &L->w_gate, c->xn, n, c->g);
        matmul(c, &L->w_up, c->xn, n, c->u);
        for (size_t i = 0; i < (size_t)n * hp->n_ff; i++) {
            float gv = c->g[i];
            c->g[i] = gv / (1.0f + expf(-gv)) * c->u[i];
        }
        matmul(c, &L->w_down, c->g, n, c->o);
        for (size_t i = 0; i < (size_t)n * dim; i++)
            c->x[i] += c->o[i];
    }
    int nw = 0;
    for (int t = 0; t < n; t++)
        if (bt->want[t])
            rmsnorm(c->x + (size_t)t * dim, m->out_norm, c->xn + (size_t)nw++ * dim, dim, hp->eps);
    if (nw > 0)
        matmul(c, &m->output, c->xn, nw, logits);
    return 0;
}

static void cpu_free(struct gb_backend *b)
{
    struct cpu *c = (struct cpu *)b;
    if (c == NULL)
        return;
    pool_stop(&c->pool);
    float *bufs[] = {c->kc,  c->vc, c->x, c->xn, c->q,    c->k,    c->v,
                     c->att, c->o,  c->g, c->u,  c->rope, c->wrow, c->scores};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        free(bufs[i]);
    free(c);
}

int gb_cpu_new(const struct gb_model *m, int n_slots, int n_ctx, int max_tokens, int n_threads,
               struct gb_backend **out)
{
    const struct gb_hparams *hp = &m->hp;
    struct cpu *c = calloc(1, sizeof(*c));
    int rc;
    *out = NULL;
    if (c == NULL)
        return -ENOMEM;
    if (n_threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = nc > 0 ? (int)nc : 1;
    }
    if (n_threads > 256)
        n_threads = 256;
    c->m = m;
    c->b.kind = "cpu";
    snprintf(c->b.device, sizeof(c->b.device), "cpu (%d threads)", n_threads);
    c->b.n_slots = n_slots;
    c->b.n_ctx = n_ctx;
    c->b.max_tokens = max_tokens;
    c->b.forward = cpu_forward;
    c->b.free = cpu_free;
    rc = pool_start(&c->pool, n_threads);
    size_t kvd = (size_t)hp->n_kv_head * hp->head_dim;
    size_t kv = (size_t)n_slots * hp->n_layer * (size_t)n_ctx * kvd;
    size_t T = (size_t)max_tokens;
    size_t big = hp->dim > hp->n_ff ? hp->dim : hp->n_ff;
    c->wrow_len = big;
    c->kc = calloc(kv, sizeof(float));
    c->vc = calloc(kv, sizeof(float));
    c->x = malloc(T * hp->dim * sizeof(float));
    c->xn = malloc(T * hp->dim * sizeof(float));
    c->q = malloc(T * hp->dim * sizeof(float));
    c->att = malloc(T * hp->dim * sizeof(float));
    c->o = malloc(T * hp->dim * sizeof(float));
    c->k = malloc(T * kvd * sizeof(float));
    c->v = malloc(T * kvd * sizeof(float));
    c->g = malloc(T * hp->n_ff * sizeof(float));
    c->u = malloc(T * hp->n_ff * sizeof(float));
    c->rope = malloc(T * hp->n_rot * sizeof(float) + sizeof(float));
    c->wrow = malloc((size_t)n_threads * big * sizeof(float));
    c->scores = malloc((size_t)n_threads * (size_t)n_ctx * sizeof(float));
    if (rc == 0 && (!c->kc || !c->vc || !c->x || !c->xn || !c->q || !c->att || !c->o || !c->k ||
                    !c->v || !c->g || !c->u || !c->rope || !c->wrow || !c->scores))
        rc = -ENOMEM;
    if (rc != 0) {
        cpu_free(&c->b);
        return rc;
    }
    *out = &c->b;
    return 0;
}
