#include "cp_select.h"

/* Whether a is a better choice than b (b may be NULL). */
static int better(const struct cp_cand *a, const struct cp_cand *b)
{
    if (b == NULL)
        return 1;
    if (a->rank != b->rank)
        return a->rank < b->rank;
    if (a->tried != b->tried)
        return !a->tried;
    return a->outstanding < b->outstanding;
}

int cp_select(const struct cp_cand *cands, size_t n, size_t start)
{
    const struct cp_cand *best = NULL;
    int best_i = -1;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (cands[i].rank == CP_RANK_EXCLUDED)
            continue;
        if (better(&cands[i], best)) {
            best = &cands[i];
            best_i = (int)i;
        }
    }
    return best_i;
}

unsigned cp_backoff_next(unsigned cur_ms, unsigned first_ms, unsigned max_ms)
{
    unsigned next = cur_ms == 0 ? first_ms : cur_ms > max_ms / 2 ? max_ms : cur_ms * 2;
    return next > max_ms ? max_ms : next;
}
