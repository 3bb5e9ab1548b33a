/*
 * CPU matrix kernels: every variant this CPU runs (portable C, AVX2, AVX-512 VNNI), every
 * token count of a tile, row lengths with and without an odd block or a partial vector, row
 * counts that leave a partial panel, against a double-precision product of the dequantised
 * rows with the activations the tile holds.
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

enum { MAXN = 2080, MAXR = 40, OS = MAXR + 3 };

static void fill(struct gb_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(gb_rng_uniform(r) * 2.0 - 1.0);
}

/* Token t's values as the tile holds them. */
static void tile_values(int quant, const uint8_t *tile, int nt, int t, size_t n, float *a)
{
    if (!quant) {
        for (size_t k = 0; k < n; k++)
            a[k] = ((const float *)(const void *)tile)[k * (size_t)nt + (size_t)t];
        return;
    }
    for (size_t b = 0; b < n / 32; b++) {
        const uint8_t *blk = tile + b * (size_t)nt * 44;
        const float *d = (const float *)(const void *)(blk + 32 * nt);
        for (int j = 0; j < 32; j++)
            a[b * 32 + (size_t)j] = (float)(int8_t)blk[t * 32 + j] * d[t];
    }
}

/* The value the kernels must produce: exact products of what they are given, in double. */
static double expect(uint32_t type, const uint8_t *row, const float *a, size_t n)
{
    static float w[MAXN];
    gb_dequant_row(type, row, w, n);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)w[i] * a[i];
    return s;
}

/*
 * One variant over every panel, in one call per panel or (split) in two slices of the
 * elements, the second added to the first; every output checked, nothing written outside.
 */
static void check_out(uint32_t type, gb_panel_fn fn, enum gb_isa isa, const uint8_t *packed,
                      const uint8_t *rows, size_t n_out, size_t n, const uint8_t *tile, int nt,
                      float a[][MAXN], int split)
{
    static float out[GB_KERN_NT * OS];
    int q = type != GB_F16;
    size_t rb = gb_type_row_bytes(type, n);
    size_t k0 = split ? (q ? n / 64 * 32 : n / 2) : n; /* the first slice */
    if (k0 == 0)
        return;
    size_t po = q ? k0 / 32 * GB_PANEL * gb_type_row_bytes(type, 32) : k0 * 32;
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        out[i] = -12345.0f;
    for (size_t p = 0; p * GB_PANEL < n_out; p++) {
        int nr = n_out - p * GB_PANEL < GB_PANEL ? (int)(n_out - p * GB_PANEL) : GB_PANEL;
        const uint8_t *pp = packed + p * GB_PANEL * rb;
        fn(pp, tile, nt, k0, out + p * GB_PANEL, OS, nr, 0);
        if (k0 < n)
            fn(pp + po, tile + gb_tile_bytes(q, k0, nt), nt, n - k0, out + p * GB_PANEL, OS, nr, 1);
    }
    for (int t = 0; t < GB_KERN_NT; t++)
        for (size_t r = 0; r < OS; r++) {
            float got = out[(size_t)t * OS + r];
            if (t >= nt || r >= n_out) { /* nothing written outside the product */
                assert_true(got == -12345.0f);
                continue;
            }
            double e = expect(type, rows + r * rb, a[t], n);
            /* float accumulation of n products of magnitude <= 1 */
            double tol = 1e-6 * (double)n + 1e-5 * fabs(e);
            if (fabs(got - e) > tol)
                fail_msg("%s %s n=%zu rows=%zu nt=%d token %d row %zu: %.7g, expected "
                         "%.7g (split %d)",
                         gb_kern_isa_name(isa), gb_type_name(type), n, n_out, nt, t, r, (double)got,
                         e, split);
        }
}

/* Runs every variant over every panel of the packed rows and checks every output. */
static void run_all(uint32_t type, const uint8_t *rows, size_t n_out, size_t n, const float *x,
                    size_t x_stride)
{
    size_t rb = gb_type_row_bytes(type, n);
    uint8_t *packed = malloc(gb_pack_bytes(type, n_out, n));
    uint8_t *tile = malloc(gb_tile_bytes(type != GB_F16, n, GB_KERN_NT));
    static float a[GB_KERN_NT][MAXN];
    assert_non_null(packed);
    assert_non_null(tile);
    gb_pack(type, rows, rb, n_out, n, packed);
    for (int nt = 1; nt <= GB_KERN_NT; nt++) {
        if (type == GB_F16)
            gb_tile_f32(x, x_stride, nt, n, tile);
        else
            gb_tile_q8(x, x_stride, nt, n, tile);
        for (int t = 0; t < nt; t++)
            tile_values(type != GB_F16, tile, nt, t, n, a[t]);
        for (enum gb_isa isa = GB_ISA_C; isa <= GB_ISA_AVX512; isa++) {
            gb_panel_fn fn = gb_kern_panel(isa, type);
            if (!gb_kern_isa_ok(isa)) {
                assert_null(fn);
                continue;
            }
            assert_non_null(fn);
            for (int split = 0; split < 2; split++)
                check_out(type, fn, isa, packed, rows, n_out, n, tile, nt, a, split);
        }
    }
    free(packed);
    free(tile);
}

static void check(uint32_t type, size_t n, size_t n_out)
{
    struct gb_rng r;
    gb_rng_seed(&r, 1234 + n + type + 7 * n_out);
    static float x[GB_KERN_NT][MAXN], wf[MAXN];
    static uint8_t rows[MAXR * MAXN * 2];
    size_t rb = gb_type_row_bytes(type, n);
    for (size_t i = 0; i < n_out; i++) {
        fill(&r, wf, n);
        assert_int_equal(gb_quant_row(type, wf, rows + i * rb, n), 0);
    }
    for (int t = 0; t < GB_KERN_NT; t++)
        fill(&r, x[t], n);
    run_all(type, rows, n_out, n, x[0], MAXN);
}

static const size_t row_counts[] = {1, 15, 16, 17, 40};

static void test_f16(void **state)
{
    (void)state;
    const size_t ns[] = {1, 3, 7, 16, 31, 32, 40, 64, 160, 2048, 2080};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
        for (size_t j = 0; j < sizeof(row_counts) / sizeof(row_counts[0]); j++)
            check(GB_F16, ns[i], ns[i] > 160 ? 17 : row_counts[j]);
}

static void test_q8_0(void **state)
{
    (void)state;
    const size_t ns[] = {32, 64, 96, 160, 2048, 2080};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
        for (size_t j = 0; j < sizeof(row_counts) / sizeof(row_counts[0]); j++)
            check(GB_Q8_0, ns[i], ns[i] > 160 ? 17 : row_counts[j]);
}

static void test_q4_0(void **state)
{
    (void)state;
    const size_t ns[] = {32, 64, 96, 160, 2048, 2080};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
        for (size_t j = 0; j < sizeof(row_counts) / sizeof(row_counts[0]); j++)
            check(GB_Q4_0, ns[i], ns[i] > 160 ? 17 : row_counts[j]);
}

/* Extreme values: Q8_0 weights of -128 (never written by ggml's quantiser, legal in a
 * file) and 127, Q4_0 nibbles 0 and 15, activations at +-127 after quantisation. */
static void test_extremes(void **state)
{
    (void)state;
    static uint8_t q8[17 * 34 * 3], q4[17 * 18 * 3];
    static float x[GB_KERN_NT][96];
    uint16_t h = gb_f32_to_f16(0.5f);
    for (int r = 0; r < 17; r++)
        for (int b = 0; b < 3; b++) {
            memcpy(q8 + (r * 3 + b) * 34, &h, 2);
            memset(q8 + (r * 3 + b) * 34 + 2, r % 2 ? 0x80 : 0x7f, 32);
            memcpy(q4 + (r * 3 + b) * 18, &h, 2);
            memset(q4 + (r * 3 + b) * 18 + 2, r % 2 ? 0x00 : 0xff, 16);
        }
    for (int t = 0; t < GB_KERN_NT; t++)
        for (int i = 0; i < 96; i++)
            x[t][i] = (i + t) % 2 ? 3.0f : -3.0f;
    run_all(GB_Q8_0, q8, 17, 96, x[0], 96);
    run_all(GB_Q4_0, q4, 17, 96, x[0], 96);
}

static void test_tile_q8(void **state)
{
    (void)state;
    float x[2][64];
    uint8_t q[2 * 2 * 44];
    for (int i = 0; i < 32; i++)
        x[0][i] = (float)i - 15.0f; /* max |x| 16: scale 16/127 */
    memset(x[0] + 32, 0, 32 * sizeof(float));
    for (int i = 0; i < 64; i++)
        x[1][i] = 1.0f;
    assert_int_equal(gb_tile_bytes(1, 64, 2), 2 * 2 * (32 + 12));
    assert_int_equal(gb_tile_bytes(0, 64, 2), 64 * 2 * sizeof(float));
    gb_tile_q8(x[0], 64, 2, 64, q);
    const int8_t *q0 = (const int8_t *)q;
    const float *d = (const float *)(const void *)(q + 64);
    const int32_t *c8 = (const int32_t *)(const void *)(d + 2), *c4 = c8 + 2;
    /* element j of token t at t * 32 + j */
    assert_int_equal(q0[31], 127); /* token 0, element 31 */
    assert_int_equal(q0[0], -119); /* -15 * 127 / 16 = -119.06 */
    assert_int_equal(q0[1], -111); /* -14 * 127 / 16 = -111.1 */
    assert_int_equal(q0[7], -64);  /* -8 * 127 / 16 = -63.5: half away from zero */
    assert_int_equal(q0[32], 127); /* token 1, element 0 */
    assert_true(d[0] == gb_f16_to_f32(gb_f32_to_f16(16.0f / 127.0f)));
    assert_true(d[0] != 16.0f / 127.0f); /* the F16 rounding is visible */
    int sum = 0;
    for (int j = 0; j < 32; j++)
        sum += q0[j];
    assert_int_equal(c8[0], -128 * sum);
    assert_int_equal(c4[0], -8 * sum);
    assert_int_equal(c8[1], -128 * 32 * 127);
    const uint8_t *b1 = q + 88; /* the second block: token 0 all zero */
    const float *d1 = (const float *)(const void *)(b1 + 64);
    assert_true(d1[0] == 0.0f);
    for (int j = 0; j < 32; j++)
        assert_int_equal(b1[j], 0);
}

/* The attention kernel of every variant against softmax(q . K * scale) . V in double, for
 * head sizes with and without a partial vector, positions inside and at the ends of the
 * 16-position blocks (0, 15, 16, 40), and queries of different positions together. */
static void test_att(void **state)
{
    (void)state;
    enum { P = 41, KS = 70, NQ = 6 };
    static float k[P * KS], v[P * KS], q[NQ][64], out[NQ][64];
    static float scratch[16 * 64 + 16 + NQ * 66];
    const int32_t pos[NQ] = {0, 15, 16, 40, 3, 40};
    const size_t hds[] = {64, 20, 1};
    struct gb_rng r;
    gb_rng_seed(&r, 99);
    fill(&r, k, P * KS);
    fill(&r, v, P * KS);
    for (size_t hi = 0; hi < sizeof(hds) / sizeof(hds[0]); hi++) {
        size_t hd = hds[hi];
        assert_true(gb_att_scratch(NQ, hd) <= sizeof(scratch) / sizeof(scratch[0]));
        for (int i = 0; i < NQ; i++) {
            fill(&r, q[i], hd);
            for (size_t d = 0; d < hd; d++)
                q[i][d] *= 4.0f; /* scores of a few units: a peaked softmax */
        }
        const float *qs[NQ];
        float *outs[NQ];
        for (int i = 0; i < NQ; i++)
            qs[i] = q[i], outs[i] = out[i];
        float scale = 1.0f / sqrtf((float)hd);
        for (enum gb_isa isa = GB_ISA_C; isa <= GB_ISA_AVX512; isa++) {
            gb_att_fn fn = gb_kern_att(isa);
            if (!gb_kern_isa_ok(isa)) {
                assert_null(fn);
                continue;
            }
            for (int nq = 1; nq <= NQ; nq += NQ - 1) {
                memset(out, 0, sizeof(out));
                fn(qs, pos, nq, k + 3, v + 5, KS, hd, scale, outs, scratch);
                for (int i = 0; i < nq; i++) {
                    double sc[P], mx = -1e300, sum = 0;
                    for (int p = 0; p <= pos[i]; p++) {
                        sc[p] = 0;
                        for (size_t d = 0; d < hd; d++)
                            sc[p] += (double)q[i][d] * k[p * KS + 3 + (int)d];
                        sc[p] *= scale;
                        mx = sc[p] > mx ? sc[p] : mx;
                    }
                    for (int p = 0; p <= pos[i]; p++)
                        sum += (sc[p] = exp(sc[p] - mx));
                    for (size_t d = 0; d < hd; d++) {
                        double e = 0;
                        for (int p = 0; p <= pos[i]; p++)
                            e += sc[p] / sum * v[p * KS + 5 + (int)d];
                        if (fabs(out[i][d] - e) > 1e-5)
                            fail_msg("%s hd=%zu query %d (pos %d) d=%zu: %.7g, expected %.7g",
                                     gb_kern_isa_name(isa), hd, i, pos[i], d, (double)out[i][d], e);
                    }
                    for (size_t d = hd; d < 64; d++)
                        assert_true(out[i][d] == 0.0f); /* nothing past the head */
                }
            }
        }
    }
}

static void test_isa(void **state)
{
    (void)state;
    enum gb_isa isa = gb_kern_isa();
    assert_true(gb_kern_isa_ok(isa));
    assert_true(gb_kern_isa_ok(GB_ISA_C));
    assert_null(gb_kern_panel(GB_ISA_C, GB_F32));
    assert_null(gb_kern_panel(GB_ISA_C, GB_BF16));
    assert_int_equal(gb_pack_bytes(GB_Q8_0, 17, 64), 32 * 68);
    assert_int_equal(gb_pack_bytes(GB_F16, 16, 3), 16 * 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16),     cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0),    cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_tile_q8), cmocka_unit_test(test_att),
        cmocka_unit_test(test_isa),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
