/*
 * CPU dot-product kernels: every variant this CPU runs (portable C, AVX2, AVX-512 VNNI),
 * every token count, row lengths with and without an odd block or a partial vector, against
 * a double-precision product of the dequantised row with the (quantised) activations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gb_gguf.h"
#include "gb_kern.h"
#include "gb_quant.h"
#include "gb_sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAXN = 2080 };

static void fill(struct gb_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(gb_rng_uniform(r) * 2.0 - 1.0);
}

/* The value the kernels must produce: exact products of what they are given, in double. */
static double expect(uint32_t type, const uint8_t *row, const float *x, const uint8_t *xq, size_t n)
{
    static float w[MAXN], a[MAXN];
    gb_dequant_row(type, row, w, n);
    if (type == GB_F16) {
        memcpy(a, x, n * sizeof(float));
    } else {
        const float *d = (const float *)(const void *)(xq + n);
        for (size_t i = 0; i < n; i++)
            a[i] = (float)(int8_t)xq[i] * d[i / 32];
    }
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)w[i] * a[i];
    return s;
}

static void check(uint32_t type, size_t n)
{
    struct gb_rng r;
    gb_rng_seed(&r, 1234 + n + type);
    static float x[GB_KERN_NT][MAXN], wf[MAXN];
    static uint8_t row[MAXN * 4], xq[GB_KERN_NT][MAXN * 4];
    fill(&r, wf, n);
    assert_int_equal(gb_quant_row(type, wf, row, n), 0);
    for (int t = 0; t < GB_KERN_NT; t++) {
        fill(&r, x[t], n);
        if (type != GB_F16)
            gb_act_quant(x[t], n, xq[t]);
    }
    for (enum gb_isa isa = GB_ISA_C; isa <= GB_ISA_AVX512; isa++) {
        gb_rowdot_fn fn = gb_kern_rowdot(isa, type);
        if (!gb_kern_isa_ok(isa)) {
            assert_null(fn);
            continue;
        }
        assert_non_null(fn);
        for (int nt = 1; nt <= GB_KERN_NT; nt++) {
            float out[GB_KERN_NT * 3];
            memset(out, 0, sizeof(out));
            if (type == GB_F16)
                fn(row, x[0], sizeof(x[0]), nt, n, out, 3);
            else
                fn(row, xq[0], sizeof(xq[0]), nt, n, out, 3);
            for (int t = 0; t < nt; t++) {
                double e = expect(type, row, x[t], xq[t], n);
                /* float accumulation of n products of magnitude <= 1 */
                double tol = 1e-6 * (double)n + 1e-5 * fabs(e);
                if (fabs(out[t * 3] - e) > tol)
                    fail_msg("%s %s n=%zu nt=%d token %d: %.7g, expected %.7g",
                             gb_kern_isa_name(isa), gb_type_name(type), n, nt, t,
                             (double)out[t * 3], e);
            }
            assert_true(out[1] == 0 && out[2] == 0); /* only every out_stride-th written */
        }
    }
}

static void test_f16(void **state)
{
    (void)state;
    const size_t ns[] = {1, 7, 16, 31, 32, 40, 64, 160, 2048, 2080};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
        check(GB_F16, ns[i]);
}

static void test_q8_0(void **state)
{
    (void)state;
    const size_t ns[] = {32, 64, 96, 160, 2048, 2080};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
        check(GB_Q8_0, ns[i]);
}

static void test_q4_0(void **state)
{
    (void)state;
    const size_t ns[] = {32, 64, 96, 160, 2048, 2080};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
        check(GB_Q4_0, ns[i]);
}

/* Q8_0 weights of -128 (never written by ggml's quantiser, legal in a file). */
static void test_q8_0_min(void **state)
{
    (void)state;
    static uint8_t row[34 * 3], xq[GB_KERN_NT][96 + 12 + 192];
    float x[96];
    for (int b = 0; b < 3; b++) {
        uint16_t h = gb_f32_to_f16(0.5f);
        memcpy(row + 34 * b, &h, 2);
        memset(row + 34 * b + 2, 0x80, 32);
    }
    for (int i = 0; i < 96; i++)
        x[i] = (float)(i % 7) - 3.0f;
    gb_act_quant(x, 96, xq[0]);
    double e = expect(GB_Q8_0, row, x, xq[0], 96);
    for (enum gb_isa isa = GB_ISA_C; isa <= GB_ISA_AVX512; isa++) {
        gb_rowdot_fn fn = gb_kern_rowdot(isa, GB_Q8_0);
        float out = 0;
        if (fn == NULL)
            continue;
        fn(row, xq[0], sizeof(xq[0]), 1, 96, &out, 1);
        assert_float_equal(out, e, 1e-3);
    }
}

static void test_act_quant(void **state)
{
    (void)state;
    float x[64];
    uint8_t q[64 + 8 + 128];
    for (int i = 0; i < 32; i++)
        x[i] = (float)i - 15.0f; /* max |x| 16: scale 16/127 */
    memset(x + 32, 0, 32 * sizeof(float));
    assert_int_equal(gb_act_bytes(64), 64 + 2 * sizeof(float) + 2 * 16 * sizeof(int32_t));
    gb_act_quant(x, 64, q);
    const float *d = (const float *)(const void *)(q + 64);
    const int32_t *corr = (const int32_t *)(const void *)(d + 2);
    const float *lane = (const float *)(const void *)(corr + 16);
    for (int g = 0; g < 16; g++) {
        const int8_t *qg = (const int8_t *)q + 4 * g;
        assert_int_equal(corr[g], -128 * (qg[0] + qg[1] + qg[2] + qg[3]));
        assert_true(lane[g] == d[g / 8]);
    }
    assert_float_equal(d[0], 16.0f / 127.0f, 1e-7);
    assert_int_equal((int8_t)q[31], 127);
    assert_int_equal((int8_t)q[0], -119); /* -15 * 127 / 16 = -119.06 */
    assert_int_equal((int8_t)q[1], -111); /* -14 * 127 / 16 = -111.1 */
    assert_int_equal((int8_t)q[7], -64);  /* -8 * 127 / 16 = -63.5: half away from zero */
    assert_true(d[1] == 0.0f);
    for (int i = 32; i < 64; i++)
        assert_int_equal(q[i], 0);
}

static void test_isa(void **state)
{
    (void)state;
    enum gb_isa isa = gb_kern_isa();
    assert_true(gb_kern_isa_ok(isa));
    assert_true(gb_kern_isa_ok(GB_ISA_C));
    assert_null(gb_kern_rowdot(GB_ISA_C, GB_F32));
    assert_null(gb_kern_rowdot(GB_ISA_C, GB_BF16));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16),       cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0),      cmocka_unit_test(test_q8_0_min),
        cmocka_unit_test(test_act_quant), cmocka_unit_test(test_isa),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
