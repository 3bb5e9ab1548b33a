#ifndef GB_SAMPLE_H
#define GB_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* Per-request random numbers: a fixed seed gives the same choices on any machine. */
struct gb_rng {
    uint64_t s;
};

void gb_rng_seed(struct gb_rng *r, uint64_t seed);
/* Uniform in [0, 1). */
double gb_rng_uniform(struct gb_rng *r);

struct gb_sample_params {
    float temperature; /* <= 0: greedy */
    float top_p;       /* (0, 1]; 1 disables */
    int top_k;         /* 0 disables */
};

struct gb_cand {
    int32_t id;
    float v;
};

/*
 * Picks a token from n logits: temperature, then top-k, then top-p (nucleus), then a draw
 * from rng. scratch holds n candidates. Greedy picks the lowest index among equal maxima.
 */
int32_t gb_sample(const float *logits, uint32_t n, const struct gb_sample_params *p,
                  struct gb_rng *rng, struct gb_cand *scratch);

#endif
