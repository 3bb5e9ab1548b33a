#ifndef CP_SELECT_H
#define CP_SELECT_H

#include <stddef.h>

/*
 * Which server of a forward gets a new attested leg, and how long an ejected server waits
 * before it is appraised again. Pure functions over a snapshot, so that the rules are tested
 * on their own (tests/unit/test_cp_select.c).
 */

/* How much a server is wanted, best first. */
enum cp_rank {
    CP_RANK_VERIFIED, /* its last appraisal passed: in rotation */
    CP_RANK_NEVER,    /* not appraised yet */
    CP_RANK_DUE,      /* ejected, its backoff over: the next appraisal may go */
    CP_RANK_BACKOFF,  /* ejected and still backing off */
    CP_RANK_EXCLUDED  /* never for this request (it failed appraisal for it) */
};

struct cp_cand {
    enum cp_rank rank;
    int tried;            /* this request already failed there (connect, reset, timeout) */
    unsigned outstanding; /* requests (TCP mode: connections) on it now */
};

/* The index of the candidate to use, or -1 when every one is excluded. The best rank wins;
 * within it an untried server beats a tried one, then the least outstanding; ties go to the
 * first at or after start (round robin). */
int cp_select(const struct cp_cand *cands, size_t n, size_t start);

/* The backoff after one more failure: first_ms after none (cur_ms 0), then doubled, never
 * above max_ms. */
unsigned cp_backoff_next(unsigned cur_ms, unsigned first_ms, unsigned max_ms);

#endif
