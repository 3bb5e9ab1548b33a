#include "gb_backend.h"
#include "gb_gguf.h"
#include "gb_kern.h"
#include "gb_model.h"
#include "gb_quant.h"

#include "ccgate/err.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * A fixed set of workers that run one job at a time; the caller is worker 0. Jobs hand out
 * their work in small tasks from an atomic counter, so a worker may join late or not at
 * all: the caller never waits for a worker that has not started (on a busy machine it may
 * be descheduled for milliseconds), only for those inside the job. Workers spin briefly
 * between jobs (a decode step runs a few hundred jobs of tens of microseconds), then sleep
 * on the condition variable so that an idle worker costs no CPU.
 */
#define POOL_SPIN 2000 /* polls before sleeping or yielding: tens of microseconds */
#define POOL_CLOSED (1ull << 31)
#define POOL_COUNT 0x7fffffffull

struct pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t start;
    atomic_uint gen;        /* the current job's number */
    _Atomic uint64_t state; /* job number << 32 | POOL_CLOSED | workers inside the job */
    atomic_int sleepers;    /* workers waiting on start */
    atomic_int quit;
    void (*fn)(void *arg, int worker);
    void *arg;
};

struct worker_arg {
    struct pool *p;
    int idx;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Enters job g unless the caller has closed it (or moved on); then fn and arg are g's. */
static int pool_enter(struct pool *p, unsigned g)
{
    uint64_t s = atomic_load(&p->state);
    while ((unsigned)(s >> 32) == g && !(s & POOL_CLOSED))
        if (atomic_compare_exchange_weak(&p->state, &s, s + 1))
            return 1;
    return 0;
}

static void *worker_main(void *a)
{
    struct worker_arg *wa = a;
    struct pool *p = wa->p;
    int idx = wa->idx;
    unsigned seen = 0;
    free(wa);
    for (;;) {
        for (int i = 0; i < POOL_SPIN && atomic_load(&p->gen) == seen && !atomic_load(&p->quit);
             i++)
            cpu_relax();
        if (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->start, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit))
            break;
        seen = atomic_load(&p->gen);
        if (pool_enter(p, seen)) {
            p->fn(p->arg, idx);
            atomic_fetch_sub(&p->state, 1);
        }
    }
    return NULL;
}

static void pool_run(struct pool *p, void (*fn)(void *, int), void *arg)
{
    if (p->n <= 1) {
        fn(arg, 0);
        return;
    }
    unsigned g = atomic_load(&p->gen) + 1;
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->state, (uint64_t)g << 32);
    atomic_store(&p->gen, g); /* publishes fn, arg and state (sequentially consistent) */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0);
    atomic_fetch_or(&p->state, POOL_CLOSED);
    for (unsigned i = 0; atomic_load(&p->state) & POOL_COUNT; i++) {
        if (i < POOL_SPIN)
            cpu_relax();
        else
            sched_yield(); /* a worker inside the job was descheduled: let it run */
    }
}

/* Jobs smaller than this (multiply-adds) run on the caller alone: waking a worker costs more. */
#define POOL_MIN_WORK (1u << 17)

static void pool_run_sized(struct pool *p, void (*fn)(void *, int), void *arg, uint64_t work)
{
    if (work < POOL_MIN_WORK)
        fn(arg, 0);
    else
        pool_run(p, fn, arg);
}

static void pool_stop(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->th[i], NULL);
    free(p->th);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
}

static int pool_start(struct pool *p, int n)
{
    memset(p, 0, sizeof(*p));
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->state, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->quit, 0);
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

/* A weight matrix: repacked in panels (gb_kern.h) when there is a kernel for its type. */
struct mat {
    const struct gb_wt *w;
    uint8_t *pk;    /* gb_pack; NULL: no kernel, the file's rows are used */
    gb_panel_fn fn; /* NULL: dequantise each row, F32 dot products */
};

#define MATS_PER_LAYER 7 /* wq, wk, wv, wo, w_gate, w_up, w_down */

struct cpu {
    struct gb_backend b;
    const struct gb_model *m;
    struct pool pool;
    struct mat *mats; /* n_layer * MATS_PER_LAYER, then the output matrix */
    uint8_t *packed;  /* every repacked matrix, one after the other */
    float *kc, *vc;   /* [slot][layer][ctx][kvd] */
    /* per-step scratch, sized for max_tokens */
    float *x, *xn, *q, *k, *v, *att, *o, *g, *u, *rope;
    float *wrow;   /* per worker: one dequantised row (types without a kernel) */
    float *scores; /* per worker: the attention kernel's scratch */
    const float **att_q;
    float **att_out;
    int32_t *att_pos; /* per worker: the attention kernel's queries */
    size_t wrow_len;
    uint8_t *tf, *tq; /* the step's activations in tiles: F32 (for F16 matrices) and 8-bit */
    int need_tf, need_tq;
    enum gb_isa isa;
};

static size_t kv_index(const struct cpu *c, int slot, uint32_t layer, int pos)
{
    const struct gb_hparams *hp = &c->m->hp;
    size_t kvd = (size_t)hp->n_kv_head * hp->head_dim;
    return (((size_t)slot * hp->n_layer + layer) * (size_t)c->b.n_ctx + (size_t)pos) * kvd;
}

/* ---- y[t][r] = W[r] . x[t] for n tokens, rows split among workers ---- */

/*
 * The input of a product: n tokens of F32, and the same in tiles of GB_KERN_NT tokens for
 * the kernels (tile i at i * the size of a full tile): F32 for F16 matrices, quantised to 8
 * bits for Q8_0 and Q4_0 ones, each only if the model has such matrices.
 */
struct act {
    const float *f;
    const uint8_t *tf, *tq;
    size_t tf_stride, tq_stride;
};

/*
 * Rows per task: 2 panels for a step of one tile (decode), 8 for a longer one (prefill), whose
 * tasks also go over the elements in slices of MM_SLICE: one slice of a tile (16 KB of F32)
 * stays in L1 for the 8 panels, one slice of the 8 panels (128 KB of F16) in L2 for all tiles,
 * so that each tile comes from farther away once per task instead of once per panel.
 */
#define MM_CHUNK (2 * GB_PANEL)
#define MM_CHUNK_BIG (8 * GB_PANEL)
#define MM_SLICE 512
#define MM_MAX 3 /* matrices per job (Q, K, V share their input) */

struct mm_job {
    struct cpu *c;
    const struct act *a;
    int n, n_mat;
    const struct mat *w[MM_MAX];
    float *y[MM_MAX];
    unsigned chunk;              /* rows per task */
    unsigned chunks[MM_MAX + 1]; /* prefix sums of each matrix's task count */
    atomic_uint next;
};

static void mm_rows(struct mm_job *j, int k, uint64_t r0, uint64_t r1, float *tmp)
{
    const struct gb_wt *w = j->w[k]->w;
    float *y = j->y[k];
    size_t n_in = w->n_in;
    gb_panel_fn fn = j->w[k]->fn;
    const uint8_t *base = w->data;
    if (fn != NULL) {
        const uint8_t *x = w->type == GB_F16 ? j->a->tf : j->a->tq;
        size_t xs = w->type == GB_F16 ? j->a->tf_stride : j->a->tq_stride;
        size_t pb = GB_PANEL * w->row_bytes, slice = j->n > GB_KERN_NT ? MM_SLICE : n_in;
        int q = w->type != GB_F16;
        for (size_t k0 = 0; k0 < n_in; k0 += slice) {
            size_t nk = n_in - k0 < slice ? n_in - k0 : slice;
            /* where the slice starts in a panel (gb_kern.h) */
            size_t po = q ? k0 / 32 * GB_PANEL * gb_type_row_bytes(w->type, 32) : k0 * 32;
            for (int t0 = 0, i = 0; t0 < j->n; t0 += GB_KERN_NT, i++) {
                int nt = j->n - t0 < GB_KERN_NT ? j->n - t0 : GB_KERN_NT;
                const uint8_t *tile = x + (size_t)i * xs + gb_tile_bytes(q, k0, nt);
                for (uint64_t r = r0; r < r1; r += GB_PANEL)
                    fn(j->w[k]->pk + r / GB_PANEL * pb + po, tile, nt, nk,
                       y + (size_t)t0 * w->n_out + r, w->n_out,
                       r1 - r < GB_PANEL ? (int)(r1 - r) : GB_PANEL, k0 > 0);
            }
        }
        return;
    }
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = base + r * w->row_bytes;
        const float *wr = (const float *)(const void *)row;
        if (w->type != GB_F32) {
            gb_dequant_row(w->type, row, tmp, n_in);
            wr = tmp;
        }
        for (int t = 0; t < j->n; t++)
            y[(size_t)t * w->n_out + r] = gb_dot(wr, j->a->f + (size_t)t * n_in, n_in);
    }
}

static void mm_work(void *arg, int worker)
{
    struct mm_job *j = arg;
    float *tmp = j->c->wrow + (size_t)worker * j->c->wrow_len;
    for (;;) {
        unsigned task = atomic_fetch_add(&j->next, 1);
        if (task >= j->chunks[j->n_mat])
            break;
        int k = 0;
        while (task >= j->chunks[k + 1])
            k++;
        uint64_t r0 = (uint64_t)(task - j->chunks[k]) * j->chunk;
        uint64_t r1 = r0 + j->chunk < j->w[k]->w->n_out ? r0 + j->chunk : j->w[k]->w->n_out;
        mm_rows(j, k, r0, r1, tmp);
    }
}

/* y_k = W_k x for up to MM_MAX matrices of the same input, in one job. */
static void matmul(struct cpu *c, const struct act *a, int n, int n_mat, const struct mat *w,
                   float *const *y)
{
    struct mm_job j = {
        .c = c, .a = a, .n = n, .n_mat = n_mat, .chunk = n > GB_KERN_NT ? MM_CHUNK_BIG : MM_CHUNK};
    uint64_t work = 0;
    for (int k = 0; k < n_mat; k++) {
        const struct gb_wt *wt = w[k].w;
        work += wt->n_in * wt->n_out * (uint64_t)n;
        j.w[k] = &w[k];
        j.y[k] = y[k];
        j.chunks[k + 1] = j.chunks[k] + (unsigned)((wt->n_out + j.chunk - 1) / j.chunk);
    }
    atomic_init(&j.next, 0);
    pool_run_sized(&c->pool, mm_work, &j, work);
}

static void matmul1(struct cpu *c, const struct act *a, int n, const struct mat *w, float *y)
{
    matmul(c, a, n, 1, w, &y);
}

/*
 * ---- attention: one task per (tile of tokens, KV head); the tile's tokens of one sequence
 * and the query heads of the KV head's group go to the kernel together, so that each K and V
 * row is read once for all of them ----
 */

struct att_job {
    struct cpu *c;
    const struct gb_batch *bt;
    uint32_t layer;
    gb_att_fn fn;
    atomic_uint next;
};

static void att_work(void *arg, int worker)
{
    struct att_job *j = arg;
    struct cpu *c = j->c;
    const struct gb_hparams *hp = &c->m->hp;
    const struct gb_batch *bt = j->bt;
    uint32_t hd = hp->head_dim, group = hp->n_head / hp->n_kv_head;
    size_t kvd = (size_t)hp->n_kv_head * hd, nq_max = (size_t)GB_KERN_NT * group;
    float *scratch = c->scores + (size_t)worker * gb_att_scratch((int)nq_max, hd);
    const float **qs = c->att_q + (size_t)worker * nq_max;
    float **outs = c->att_out + (size_t)worker * nq_max;
    int32_t *pos = c->att_pos + (size_t)worker * nq_max;
    float scale = 1.0f / sqrtf((float)hd);
    unsigned tiles = (unsigned)(bt->n + GB_KERN_NT - 1) / GB_KERN_NT;
    for (;;) {
        unsigned task = atomic_fetch_add(&j->next, 1);
        if (task >= tiles * hp->n_kv_head)
            break;
        int t0 = (int)(task / hp->n_kv_head) * GB_KERN_NT;
        uint32_t kvh = task % hp->n_kv_head;
        int t1 = bt->n - t0 < GB_KERN_NT ? bt->n : t0 + GB_KERN_NT;
        for (int ta = t0, tb; ta < t1; ta = tb) { /* runs of tokens of one sequence */
            for (tb = ta + 1; tb < t1 && bt->seq[tb] == bt->seq[ta];)
                tb++;
            int nq = 0;
            for (int t = ta; t < tb; t++)
                for (uint32_t g = 0; g < group; g++, nq++) {
                    size_t off = (size_t)t * hp->dim + (size_t)(kvh * group + g) * hd;
                    qs[nq] = c->q + off;
                    outs[nq] = c->att + off;
                    pos[nq] = bt->pos[t];
                }
            size_t base = kv_index(c, bt->seq[ta], j->layer, 0) + (size_t)kvh * hd;
            j->fn(qs, pos, nq, c->kc + base, c->vc + base, kvd, hd, scale, outs, scratch);
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

/*
 * The per-token work before a product, done on all threads one tile of tokens at a time:
 * x += add (the residual), x = silu(x) * mul (SwiGLU), xn = rmsnorm(x) * norm, each when
 * given; then the result (xn with a norm, else x) packed into the kernels' tiles once for all
 * the products that read it (Q, K and V; gate and up).
 */
struct stage_job {
    struct cpu *c;
    int n;
    size_t n_in;
    float *x, *xn;
    const float *add, *mul, *norm;
    struct act a;
    atomic_uint next;
};

static void stage_work(void *arg, int worker)
{
    struct stage_job *j = arg;
    struct cpu *c = j->c;
    size_t d = j->n_in;
    (void)worker;
    for (;;) {
        unsigned i = atomic_fetch_add(&j->next, 1);
        int t0 = (int)i * GB_KERN_NT;
        if (t0 >= j->n)
            break;
        int nt = j->n - t0 < GB_KERN_NT ? j->n - t0 : GB_KERN_NT;
        for (int t = t0; t < t0 + nt; t++) {
            float *x = j->x + (size_t)t * d;
            if (j->add != NULL)
                for (size_t e = 0; e < d; e++)
                    x[e] += j->add[(size_t)t * d + e];
            if (j->mul != NULL)
                for (size_t e = 0; e < d; e++)
                    x[e] = x[e] / (1.0f + expf(-x[e])) * j->mul[(size_t)t * d + e];
            if (j->norm != NULL)
                rmsnorm(x, j->norm, j->xn + (size_t)t * d, (uint32_t)d, c->m->hp.eps);
        }
        const float *src = (j->norm != NULL ? j->xn : j->x) + (size_t)t0 * d;
        if (c->need_tf)
            gb_tile_f32(src, d, nt, d, c->tf + (size_t)i * j->a.tf_stride);
        if (c->need_tq)
            gb_tile_q8(src, d, nt, d, c->tq + (size_t)i * j->a.tq_stride);
    }
}

static struct act stage(struct cpu *c, int n, size_t n_in, float *x, const float *add,
                        const float *mul, const float *norm)
{
    struct stage_job j = {
        .c = c, .n = n, .n_in = n_in, .x = x, .xn = c->xn, .add = add, .mul = mul, .norm = norm};
    j.a.f = norm != NULL ? c->xn : x;
    if (c->need_tf) {
        j.a.tf = c->tf;
        j.a.tf_stride = gb_tile_bytes(0, n_in, GB_KERN_NT);
    }
    if (c->need_tq) {
        j.a.tq = c->tq;
        j.a.tq_stride = gb_tile_bytes(1, n_in, GB_KERN_NT);
    }
    atomic_init(&j.next, 0);
    pool_run_sized(&c->pool, stage_work, &j, (uint64_t)n * n_in * 16);
    return j.a;
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
        const struct mat *M = c->mats + (size_t)l * MATS_PER_LAYER;
        /* the residual of the previous layer's FFN, then this layer's attention norm */
        struct act a = stage(c, n, dim, c->x, l > 0 ? c->o : NULL, NULL, L->attn_norm);
        float *qkv_out[3] = {c->q, c->k, c->v};
        matmul(c, &a, n, 3, M, qkv_out);
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
        struct att_job aj = {.c = c, .bt = bt, .layer = l, .fn = gb_kern_att(c->isa)};
        atomic_init(&aj.next, 0);
        uint64_t att = 0;
        for (int t = 0; t < n; t++)
            att += (uint64_t)(bt->pos[t] + 1) * hp->n_head * hp->head_dim * 2;
        pool_run_sized(&c->pool, att_work, &aj, att);
        a = stage(c, n, dim, c->att, NULL, NULL, NULL);
        matmul1(c, &a, n, &M[3], c->o);
        a = stage(c, n, dim, c->x, c->o, NULL, L->ffn_norm);
        float *gu_out[2] = {c->g, c->u};
        matmul(c, &a, n, 2, &M[4], gu_out);
        a = stage(c, n, hp->n_ff, c->g, NULL, c->u, NULL);
        matmul1(c, &a, n, &M[6], c->o);
    }
    for (size_t i = 0; hp->n_layer > 0 && i < (size_t)n * dim; i++)
        c->x[i] += c->o[i];
    int nw = 0;
    for (int t = 0; t < n; t++)
        if (bt->want[t])
            rmsnorm(c->x + (size_t)t * dim, m->out_norm, c->xn + (size_t)nw++ * dim, dim, hp->eps);
    if (nw > 0) {
        struct act a = stage(c, nw, dim, c->xn, NULL, NULL, NULL);
        matmul1(c, &a, nw, &c->mats[(size_t)hp->n_layer * MATS_PER_LAYER], logits);
    }
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
    free(c->tf);
    free(c->tq);
    free(c->att_q);
    free(c->att_out);
    free(c->att_pos);
    free(c->packed);
    free(c->mats);
    free(c);
}

struct pack_job {
    struct cpu *c;
    size_t n;
    atomic_size_t next;
};

static void pack_work(void *arg, int worker)
{
    struct pack_job *j = arg;
    (void)worker;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n)
            break;
        struct mat *mt = &j->c->mats[j->n - 1 - i]; /* the output matrix, the largest, first */
        const struct gb_wt *w = mt->w;
        if (mt->pk != NULL)
            gb_pack(w->type, w->data, w->row_bytes, w->n_out, w->n_in, mt->pk);
    }
}

/* Repacks every matrix with a kernel (the file's rows are not read again), on all threads. */
static int pack_mats(struct cpu *c)
{
    const struct gb_model *m = c->m;
    size_t nm = (size_t)m->hp.n_layer * MATS_PER_LAYER + 1;
    c->mats = calloc(nm, sizeof(*c->mats));
    if (c->mats == NULL)
        return -ENOMEM;
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const struct gb_layer *L = &m->layers[l];
        const struct gb_wt *w[MATS_PER_LAYER] = {&L->wq,     &L->wk,   &L->wv,    &L->wo,
                                                 &L->w_gate, &L->w_up, &L->w_down};
        for (int k = 0; k < MATS_PER_LAYER; k++)
            c->mats[(size_t)l * MATS_PER_LAYER + (size_t)k].w = w[k];
    }
    c->mats[nm - 1].w = &m->output;
    /* one allocation in 2 MiB pages where the kernel gives them: the decode reads all of it
     * for every token, and 4 KiB pages would cost a TLB miss every 4 KiB */
    size_t total = 0, huge = (size_t)2 << 20;
    for (size_t i = 0; i < nm; i++)
        if (gb_kern_panel(c->isa, c->mats[i].w->type) != NULL)
            total +=
                (gb_pack_bytes(c->mats[i].w->type, c->mats[i].w->n_out, c->mats[i].w->n_in) + 63) /
                64 * 64;
    if (total == 0)
        return 0;
    total = (total + huge - 1) / huge * huge; /* aligned_alloc wants a multiple */
    c->packed = aligned_alloc(huge, total);
    if (c->packed == NULL)
        return -ENOMEM;
#ifdef MADV_HUGEPAGE
    (void)madvise(c->packed, total, MADV_HUGEPAGE); /* only advice: 4 KiB pages work too */
#endif
    size_t off = 0;
    for (size_t i = 0; i < nm; i++) {
        struct mat *mt = &c->mats[i];
        const struct gb_wt *w = mt->w;
        gb_panel_fn fn = gb_kern_panel(c->isa, w->type);
        if (fn == NULL)
            continue;
        mt->pk = c->packed + off;
        off += (gb_pack_bytes(w->type, w->n_out, w->n_in) + 63) / 64 * 64;
        mt->fn = fn;
        c->need_tf |= w->type == GB_F16;
        c->need_tq |= w->type != GB_F16;
    }
    struct pack_job j = {.c = c, .n = nm};
    atomic_init(&j.next, 0);
    pool_run(&c->pool, pack_work, &j);
    return 0;
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
    snprintf(c->b.device, sizeof(c->b.device), "cpu (%d threads, %s)", n_threads,
             gb_kern_isa_name(gb_kern_isa()));
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
    size_t nq_max = (size_t)GB_KERN_NT * (hp->n_head / hp->n_kv_head);
    c->scores =
        malloc((size_t)n_threads * gb_att_scratch((int)nq_max, hp->head_dim) * sizeof(float));
    c->att_q = malloc((size_t)n_threads * nq_max * sizeof(*c->att_q));
    c->att_out = malloc((size_t)n_threads * nq_max * sizeof(*c->att_out));
    c->att_pos = malloc((size_t)n_threads * nq_max * sizeof(*c->att_pos));
    c->isa = gb_kern_isa();
    if (rc == 0)
        rc = pack_mats(c);
    size_t tiles = (T + GB_KERN_NT - 1) / GB_KERN_NT;
    if (c->need_tf)
        c->tf = malloc(tiles * gb_tile_bytes(0, big, GB_KERN_NT));
    if (c->need_tq)
        c->tq = malloc(tiles * gb_tile_bytes(1, big, GB_KERN_NT));
    if (rc == 0 && (!c->kc || !c->vc || !c->x || !c->xn || !c->q || !c->att || !c->o || !c->k ||
                    !c->v || !c->g || !c->u || !c->rope || !c->wrow || !c->scores || !c->att_q ||
                    !c->att_out || !c->att_pos || (c->need_tf && !c->tf) || (c->need_tq && !c->tq)))
        rc = -ENOMEM;
    if (rc != 0) {
        cpu_free(&c->b);
        return rc;
    }
    *out = &c->b;
    return 0;
}
