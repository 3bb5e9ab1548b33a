/* Sampling: greedy, fixed seeds, top-k, top-p and the distribution of draws. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gb_sample.h"

#include <math.h>
#include <stdlib.h>

#define NV 1000

static void make_logits(float *l, uint64_t seed)
{
    struct gb_rng r;
    gb_rng_seed(&r, seed);
    for (int i = 0; i < NV; i++)
        l[i] = (float)(gb_rng_uniform(&r) * 8.0);
}

static void test_greedy(void **state)
{
    (void)state;
    float l[NV];
    struct gb_cand c[NV];
    struct gb_rng r;
    make_logits(l, 1);
    l[417] = 100;
    gb_rng_seed(&r, 0);
    struct gb_sample_params p = {0, 1, 0};
    assert_int_equal(gb_sample(l, NV, &p, &r, c), 417);
    p = (struct gb_sample_params){1.0f, 1.0f, 1}; /* top_k 1 is greedy */
    assert_int_equal(gb_sample(l, NV, &p, &r, c), 417);
    l[3] = 100; /* tie: lowest index */
    p.temperature = 0;
    assert_int_equal(gb_sample(l, NV, &p, &r, c), 3);
}

static void draw(uint64_t seed, const struct gb_sample_params *p, int32_t *out, int n)
{
    float l[NV];
    struct gb_cand c[NV];
    struct gb_rng r;
    make_logits(l, 7);
    gb_rng_seed(&r, seed);
    for (int i = 0; i < n; i++)
        out[i] = gb_sample(l, NV, p, &r, c);
}

static void test_fixed_seed(void **state)
{
    (void)state;
    struct gb_sample_params p = {0.8f, 0.95f, 50};
    int32_t a[64], b[64], c[64];
    draw(42, &p, a, 64);
    draw(42, &p, b, 64);
    draw(43, &p, c, 64);
    assert_memory_equal(a, b, sizeof(a));
    int differ = 0;
    for (int i = 0; i < 64; i++)
        differ += a[i] != c[i];
    assert_true(differ > 32);
}

static void test_top_k_top_p(void **state)
{
    (void)state;
    float l[NV];
    struct gb_cand c[NV];
    struct gb_rng r;
    make_logits(l, 9);
    /* three clear winners, far above the rest */
    l[10] = 30, l[20] = 30, l[30] = 30;
    gb_rng_seed(&r, 5);
    struct gb_sample_params p = {1.0f, 1.0f, 3};
    int seen[3] = {0};
    for (int i = 0; i < 300; i++) {
        int32_t t = gb_sample(l, NV, &p, &r, c);
        assert_true(t == 10 || t == 20 || t == 30);
        seen[t / 10 - 1]++;
    }
    assert_true(seen[0] > 50 && seen[1] > 50 && seen[2] > 50);
    /* top_p: a token with 90 % of the mass and top_p 0.5 leaves only it */
    make_logits(l, 9);
    l[99] = 40;
    p = (struct gb_sample_params){1.0f, 0.5f, 0};
    for (int i = 0; i < 50; i++)
        assert_int_equal(gb_sample(l, NV, &p, &r, c), 99);
}

static void test_distribution(void **state)
{
    (void)state;
    float l[2] = {0.0f, logf(3.0f)};
    struct gb_cand c[2];
    struct gb_rng r;
    struct gb_sample_params p = {1.0f, 1.0f, 0};
    int ones = 0, n = 20000;
    gb_rng_seed(&r, 11);
    for (int i = 0; i < n; i++)
        ones += gb_sample(l, 2, &p, &r, c) == 1;
    assert_true(fabs((double)ones / n - 0.75) < 0.02);
    /* temperature 0.5 squares the odds: 9:1 */
    p.temperature = 0.5f;
    ones = 0;
    for (int i = 0; i < n; i++)
        ones += gb_sample(l, 2, &p, &r, c) == 1;
    assert_true(fabs((double)ones / n - 0.9) < 0.02);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_fixed_seed),
        cmocka_unit_test(test_top_k_top_p),
        cmocka_unit_test(test_distribution),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
