#include "gb_sample.h"

#include <math.h>
#include <stdlib.h>

void gb_rng_seed(struct gb_rng *r, uint64_t seed)
{
    r->s = seed ^ 0x853c49e6748fea9bull;
}

double gb_rng_uniform(struct gb_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-53;
}

static int cand_cmp(const void *a, const void *b)
{
    const struct gb_cand *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Moves the k largest candidates (by v, ties to lower id) to c[0..k), in no order. */
static void select_top(struct gb_cand *c, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        struct gb_cand pivot = c[lo + (hi - lo) / 2], t;
        /* three-way partition: [lo, lt) before the pivot, [lt, gt) equal, [gt, hi) after */
        size_t lt = lo, gt = hi, p = lo;
        while (p < gt) {
            int cmp = cand_cmp(&c[p], &pivot);
            if (cmp < 0) {
                t = c[lt], c[lt] = c[p], c[p] = t;
                lt++, p++;
            } else if (cmp > 0) {
                gt--;
                t = c[gt], c[gt] = c[p], c[p] = t;
            } else {
                p++;
            }
        }
        if (k <= lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return;
    }
}

int32_t gb_sample(const float *logits, uint32_t n, const struct gb_sample_params *p,
                  struct gb_rng *rng, struct gb_cand *c)
{
    if (p->temperature <= 0) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < n; i++)
            if (logits[i] > logits[best])
                best = i;
        return (int32_t)best;
    }
    size_t nc = n;
    for (uint32_t i = 0; i < n; i++)
        c[i] = (struct gb_cand){(int32_t)i, logits[i] / p->temperature};
    if (p->top_k > 0 && (size_t)p->top_k < nc) {
        select_top(c, nc, (size_t)p->top_k);
        nc = (size_t)p->top_k;
    }
    float mx = -INFINITY;
    for (size_t i = 0; i < nc; i++)
        mx = c[i].v > mx ? c[i].v : mx;
    double sum = 0;
    for (size_t i = 0; i < nc; i++) {
        c[i].v = expf(c[i].v - mx);
        sum += c[i].v;
    }
    if (p->top_p > 0 && p->top_p < 1) {
        /* sort a growing head until it covers top_p of the mass */
        size_t m = nc < 64 ? nc : 64;
        for (;;) {
            select_top(c, nc, m);
            qsort(c, m, sizeof(*c), cand_cmp);
            double cum = 0;
            size_t cut = 0;
            while (cut < m && cum < p->top_p * sum)
                cum += c[cut++].v;
            if (cum >= p->top_p * sum || m == nc) {
                nc = cut > 0 ? cut : 1;
                sum = cum > 0 ? cum : c[0].v;
                break;
            }
            m = m * 8 < nc ? m * 8 : nc;
        }
    }
    double u = gb_rng_uniform(rng) * sum, acc = 0;
    for (size_t i = 0; i < nc; i++) {
        acc += c[i].v;
        if (u < acc)
            return c[i].id;
    }
    return c[nc - 1].id;
}
