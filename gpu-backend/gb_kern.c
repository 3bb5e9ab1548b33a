#include "gb_kern.h"

#include "gb_gguf.h"
#include "gb_quant.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define GB_X86 1
#endif

/* ---- layouts ---- */

size_t gb_pack_bytes(uint32_t type, size_t n_out, size_t n_in)
{
    return (n_out + GB_PANEL - 1) / GB_PANEL * GB_PANEL * gb_type_row_bytes(type, n_in);
}

void gb_pack(uint32_t type, const void *src, size_t row_bytes, size_t n_out, size_t n_in, void *dst)
{
    const uint8_t *s = src;
    size_t np = (n_out + GB_PANEL - 1) / GB_PANEL, nb = n_in / 32;
    size_t pb = GB_PANEL * gb_type_row_bytes(type, n_in), bs = type == GB_Q8_0 ? 34 : 18;
    for (size_t p = 0; p < np; p++) {
        uint8_t *pd = (uint8_t *)dst + p * pb;
        size_t nr = n_out - p * GB_PANEL < GB_PANEL ? n_out - p * GB_PANEL : GB_PANEL;
        const uint8_t *rows = s + p * GB_PANEL * row_bytes;
        memset(pd, 0, pb); /* rows past n_out */
        if (type == GB_F16) {
            for (size_t k = 0; k < n_in; k++)
                for (size_t r = 0; r < nr; r++)
                    memcpy(pd + (k * GB_PANEL + r) * 2, rows + r * row_bytes + 2 * k, 2);
            continue;
        }
        for (size_t r = 0; r < nr; r++) {
            for (size_t b = 0; b < nb; b++) {
                const uint8_t *blk = rows + r * row_bytes + b * bs;
                uint8_t *pq = pd + b * GB_PANEL * bs;
                memcpy(pq + 2 * r, blk, 2);
                /* Q4_0: the file's byte e holds elements e and e + 16, which is what group
                 * e / 4's byte holds in a panel: the bytes move 4 at a time unchanged */
                for (int g = 0; g < (type == GB_Q8_0 ? 8 : 4); g++) {
                    uint32_t v;
                    memcpy(&v, blk + 2 + 4 * g, 4);
                    if (type == GB_Q8_0)
                        v ^= 0x80808080u; /* value + 128 */
                    memcpy(pq + 32 + g * 64 + r * 4, &v, 4);
                }
            }
        }
    }
}

size_t gb_tile_bytes(int quant, size_t n, int nt)
{
    return quant ? (n / 32) * (size_t)nt * (32 + 3 * 4) : n * (size_t)nt * sizeof(float);
}

void gb_tile_f32(const float *x, size_t x_stride, int nt, size_t n, void *dst)
{
    float *d = dst;
    for (int t = 0; t < nt; t++)
        for (size_t k = 0; k < n; k++)
            d[k * (size_t)nt + (size_t)t] = x[(size_t)t * x_stride + k];
}

void gb_tile_q8(const float *x, size_t x_stride, int nt, size_t n, void *dst)
{
    size_t bb = (size_t)nt * (32 + 3 * 4); /* bytes per block */
    for (int t = 0; t < nt; t++) {
        for (size_t b = 0; b < n / 32; b++) {
            const float *xb = x + (size_t)t * x_stride + b * 32;
            int8_t *q = (int8_t *)dst + b * bb, qb[32];
            float *d = (float *)(void *)(q + 32 * nt);
            int32_t *c8 = (int32_t *)(void *)(d + nt), *c4 = c8 + nt;
            /* max |x| as the largest magnitude bits (same order as the values; the loops
             * below are written so that compilers vectorise them) */
            uint32_t amax_bits = 0;
            for (int j = 0; j < 32; j++) {
                uint32_t u;
                memcpy(&u, xb + j, 4);
                u &= 0x7fffffffu;
                amax_bits = u > amax_bits ? u : amax_bits;
            }
            float amax;
            memcpy(&amax, &amax_bits, 4);
            float db = amax / 127.0f, id = db != 0 ? 1.0f / db : 0.0f;
            int sum = 0;
            for (int j = 0; j < 32; j++) {
                float v = xb[j] * id;
                int qv = (int)(v + (v >= 0 ? 0.5f : -0.5f));
                qb[j] = (int8_t)qv;
                sum += qv;
            }
            memcpy(q + t * 32, qb, 32);
            d[t] = gb_f16_to_f32(gb_f32_to_f16(db));
            c8[t] = -128 * sum;
            c4[t] = -8 * sum;
        }
    }
}

/* ---- portable C ---- */

static float f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return gb_f16_to_f32(h);
}

static void store(const float *acc, int nt, float *out, size_t os, int nr, int add)
{
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            out[(size_t)t * os + (size_t)r] =
                (add ? out[(size_t)t * os + (size_t)r] : 0.0f) + acc[t * GB_PANEL + r];
}

static void f16_c(const void *panel, const void *tile, int nt, size_t n, float *out, size_t os,
                  int nr, int add)
{
    const uint8_t *w = panel;
    const float *x = tile;
    float acc[GB_KERN_NT * GB_PANEL] = {0}, wk[GB_PANEL];
    for (size_t k = 0; k < n; k++) {
        for (int r = 0; r < GB_PANEL; r++)
            wk[r] = f16(w + (k * GB_PANEL + (size_t)r) * 2);
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < GB_PANEL; r++)
                acc[t * GB_PANEL + r] += wk[r] * x[k * (size_t)nt + (size_t)t];
    }
    store(acc, nt, out, os, nr, add);
}

/* One kernel for Q8_0 (unsigned values, correction c8) and Q4_0 (nibbles, correction c4). */
static void q_c(const void *panel, const void *tile, int nt, size_t n, float *out, size_t os,
                int nr, int add, int q8)
{
    const uint8_t *w = panel, *a = tile;
    size_t bs = GB_PANEL * (q8 ? 34 : 18), bb = (size_t)nt * 44;
    float acc[GB_KERN_NT * GB_PANEL] = {0};
    for (size_t b = 0; b < n / 32; b++, w += bs, a += bb) {
        const int8_t *q = (const int8_t *)a;
        const float *d = (const float *)(const void *)(a + 32 * nt);
        const int32_t *c = (const int32_t *)(const void *)(d + nt) + (q8 ? 0 : nt);
        for (int t = 0; t < nt; t++) {
            for (int r = 0; r < GB_PANEL; r++) {
                int32_t s = c[t];
                for (int g = 0; g < 8; g++)
                    for (int j = 0; j < 4; j++) {
                        int wv = q8 ? w[32 + g * 64 + r * 4 + j]
                                    : (w[32 + (g % 4) * 64 + r * 4 + j] >> (g / 4 * 4)) & 0x0f;
                        s += wv * q[t * 32 + g * 4 + j];
                    }
                acc[t * GB_PANEL + r] += f16(w + 2 * r) * d[t] * (float)s;
            }
        }
    }
    store(acc, nt, out, os, nr, add);
}

static void q8_0_c(const void *panel, const void *tile, int nt, size_t n, float *out, size_t os,
                   int nr, int add)
{
    q_c(panel, tile, nt, n, out, os, nr, add, 1);
}

static void q4_0_c(const void *panel, const void *tile, int nt, size_t n, float *out, size_t os,
                   int nr, int add)
{
    q_c(panel, tile, nt, n, out, os, nr, add, 0);
}

/* ---- attention (gb_kern.h): one portable body, compiled once per variant ---- */

#define ATT_B 16 /* positions per block */

size_t gb_att_scratch(int nq, size_t hd)
{
    return hd * ATT_B + ATT_B + (size_t)nq * (hd + 2);
}

__attribute__((always_inline)) static inline void
att_body(const float *const *q, const int32_t *pos, int nq, const float *k, const float *v,
         size_t ks, size_t hd, float scale, float *const *out, float *scratch)
{
    float *kt = scratch, *e = kt + hd * ATT_B, *m = e + ATT_B, *l = m + nq, *o = l + nq;
    int32_t pmax = 0;
    for (int i = 0; i < nq; i++) {
        pmax = pos[i] > pmax ? pos[i] : pmax;
        m[i] = -INFINITY;
        l[i] = 0;
        memset(o + (size_t)i * hd, 0, hd * sizeof(float));
    }
    for (int32_t p0 = 0; p0 <= pmax; p0 += ATT_B) {
        int np = pmax + 1 - p0 < ATT_B ? (int)(pmax + 1 - p0) : ATT_B;
        for (size_t d = 0; d < hd; d++)
            for (int j = 0; j < ATT_B; j++)
                kt[d * ATT_B + (size_t)j] = j < np ? k[(size_t)(p0 + j) * ks + d] : 0.0f;
        for (int i = 0; i < nq; i++) {
            if (pos[i] < p0)
                continue;
            int nv = pos[i] + 1 - p0 < np ? (int)(pos[i] + 1 - p0) : np; /* causal */
            /* 16 scores per vector; four sums over alternate elements hide the latency */
            float s[ATT_B], s1[ATT_B] = {0}, s2[ATT_B] = {0}, s3[ATT_B] = {0};
            const float *qi = q[i];
            size_t d = 0;
            for (int j = 0; j < ATT_B; j++)
                s[j] = 0;
            for (; d + 4 <= hd; d += 4)
                for (int j = 0; j < ATT_B; j++) {
                    s[j] += qi[d] * kt[d * ATT_B + (size_t)j];
                    s1[j] += qi[d + 1] * kt[(d + 1) * ATT_B + (size_t)j];
                    s2[j] += qi[d + 2] * kt[(d + 2) * ATT_B + (size_t)j];
                    s3[j] += qi[d + 3] * kt[(d + 3) * ATT_B + (size_t)j];
                }
            for (; d < hd; d++)
                for (int j = 0; j < ATT_B; j++)
                    s[j] += qi[d] * kt[d * ATT_B + (size_t)j];
            for (int j = 0; j < ATT_B; j++)
                s[j] = ((s[j] + s1[j]) + (s2[j] + s3[j])) * scale;
            float mb = -INFINITY;
            for (int j = 0; j < nv; j++)
                mb = s[j] > mb ? s[j] : mb;
            float mn = mb > m[i] ? mb : m[i];
            float corr = expf(m[i] - mn); /* 0 for the first block (m = -inf) */
            float sum = 0;
            for (int j = 0; j < ATT_B; j++) {
                e[j] = j < nv ? expf(s[j] - mn) : 0.0f;
                sum += e[j];
            }
            /* out = out * corr + e . V, 16 elements of the head at a time kept in registers
             * over the block's positions (two sums over alternate positions) */
            float *oi = o + (size_t)i * hd;
            for (d = 0; d + ATT_B <= hd; d += ATT_B) {
                float a0[ATT_B], a1[ATT_B] = {0};
                for (int u = 0; u < ATT_B; u++)
                    a0[u] = oi[d + (size_t)u] * corr;
                int j = 0;
                for (; j + 2 <= nv; j += 2) {
                    const float *v0 = v + (size_t)(p0 + j) * ks + d, *v1 = v0 + ks;
                    for (int u = 0; u < ATT_B; u++) {
                        a0[u] += e[j] * v0[u];
                        a1[u] += e[j + 1] * v1[u];
                    }
                }
                for (; j < nv; j++)
                    for (int u = 0; u < ATT_B; u++)
                        a0[u] += e[j] * v[(size_t)(p0 + j) * ks + d + (size_t)u];
                for (int u = 0; u < ATT_B; u++)
                    oi[d + (size_t)u] = a0[u] + a1[u];
            }
            for (; d < hd; d++) {
                float a = oi[d] * corr;
                for (int j = 0; j < nv; j++)
                    a += e[j] * v[(size_t)(p0 + j) * ks + d];
                oi[d] = a;
            }
            l[i] = l[i] * corr + sum;
            m[i] = mn;
        }
    }
    for (int i = 0; i < nq; i++)
        for (size_t d = 0; d < hd; d++)
            out[i][d] = o[(size_t)i * hd + d] / l[i];
}

static void att_c(const float *const *q, const int32_t *pos, int nq, const float *k, const float *v,
                  size_t ks, size_t hd, float scale, float *const *out, float *scratch)
{
    att_body(q, pos, nq, k, v, ks, hd, scale, out, scratch);
}

#ifdef GB_X86

static int32_t ld32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- AVX2 + FMA + F16C: a panel is two vectors of 8 rows ---- */

#define AVX2_INL __attribute__((target("avx2,fma,f16c"), always_inline)) static inline

AVX2_INL void f16_avx2_nt(const uint8_t *w, const float *x, const int NT, size_t n, float *out,
                          size_t os, int nr, int add)
{
    __m256 acc[GB_KERN_NT][2];
    for (int t = 0; t < NT; t++)
        acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    for (size_t k = 0; k < n; k++, w += 32, x += NT) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)w));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w + 16)));
        for (int t = 0; t < NT; t++) {
            __m256 xv = _mm256_broadcast_ss(x + t);
            acc[t][0] = _mm256_fmadd_ps(w0, xv, acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(w1, xv, acc[t][1]);
        }
    }
    float tmp[GB_KERN_NT * GB_PANEL];
    for (int t = 0; t < NT; t++) {
        _mm256_storeu_ps(tmp + t * GB_PANEL, acc[t][0]);
        _mm256_storeu_ps(tmp + t * GB_PANEL + 8, acc[t][1]);
    }
    store(tmp, NT, out, os, nr, add);
}

/*
 * Q8_0 and Q4_0: per group of 4 elements, signed weights (value + 128 back to signed, or
 * nibble - 8) times the token's 4 activations: maddubs takes |w| and x with w's sign (no
 * 16-bit overflow: 2 * 128 * 127 < 32768), madd sums pairs to 32 bits.
 */
AVX2_INL void q_avx2_nt(const uint8_t *w, const uint8_t *a, const int NT, size_t n, float *out,
                        size_t os, int nr, int add, const int Q8)
{
    const __m256i ones = _mm256_set1_epi16(1), lo4 = _mm256_set1_epi8(0x0f);
    const __m256i x80 = _mm256_set1_epi8((char)0x80), eight = _mm256_set1_epi8(8);
    size_t bs = GB_PANEL * (Q8 ? 34 : 18), bb = (size_t)NT * 44;
    __m256 acc[GB_KERN_NT][2];
    for (int t = 0; t < NT; t++)
        acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    for (size_t b = 0; b < n / 32; b++, w += bs, a += bb) {
        __m256i s[GB_KERN_NT][2];
        for (int t = 0; t < NT; t++)
            s[t][0] = s[t][1] = _mm256_setzero_si256();
        for (int g = 0; g < 8; g++) {
            __m256i wv[2];
            for (int h = 0; h < 2; h++) {
                if (Q8) {
                    wv[h] = _mm256_xor_si256(
                        _mm256_loadu_si256(
                            (const __m256i *)(const void *)(w + 32 + g * 64 + h * 32)),
                        x80);
                } else {
                    __m256i v = _mm256_loadu_si256(
                        (const __m256i *)(const void *)(w + 32 + (g % 4) * 64 + h * 32));
                    if (g >= 4)
                        v = _mm256_srli_epi16(v, 4);
                    wv[h] = _mm256_sub_epi8(_mm256_and_si256(v, lo4), eight);
                }
            }
            __m256i aw0 = _mm256_sign_epi8(wv[0], wv[0]), aw1 = _mm256_sign_epi8(wv[1], wv[1]);
            for (int t = 0; t < NT; t++) {
                __m256i xv = _mm256_set1_epi32(ld32(a + (size_t)(t * 32 + g * 4)));
                __m256i p0 = _mm256_maddubs_epi16(aw0, _mm256_sign_epi8(xv, wv[0]));
                __m256i p1 = _mm256_maddubs_epi16(aw1, _mm256_sign_epi8(xv, wv[1]));
                s[t][0] = _mm256_add_epi32(s[t][0], _mm256_madd_epi16(p0, ones));
                s[t][1] = _mm256_add_epi32(s[t][1], _mm256_madd_epi16(p1, ones));
            }
        }
        const float *d = (const float *)(const void *)(a + 32 * NT);
        __m256 dw0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)w));
        __m256 dw1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w + 16)));
        for (int t = 0; t < NT; t++) {
            __m256 dx = _mm256_broadcast_ss(d + t);
            acc[t][0] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t][0]), _mm256_mul_ps(dw0, dx), acc[t][0]);
            acc[t][1] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t][1]), _mm256_mul_ps(dw1, dx), acc[t][1]);
        }
    }
    float tmp[GB_KERN_NT * GB_PANEL];
    for (int t = 0; t < NT; t++) {
        _mm256_storeu_ps(tmp + t * GB_PANEL, acc[t][0]);
        _mm256_storeu_ps(tmp + t * GB_PANEL + 8, acc[t][1]);
    }
    store(tmp, NT, out, os, nr, add);
}

/* ---- AVX-512 (F, BW, VL, DQ) with VNNI: a panel is one vector ---- */

#define A512 "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"
#define A512_INL __attribute__((target(A512), always_inline)) static inline

A512_INL void store512(const __m512 *acc, const int NT, float *out, size_t os, int nr, int add)
{
    __mmask16 m = (__mmask16)((1u << nr) - 1);
    for (int t = 0; t < NT; t++) {
        float *o = out + (size_t)t * os;
        _mm512_mask_storeu_ps(o, m,
                              add ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), acc[t]) : acc[t]);
    }
}

/* min(4, 16 / NT) sets of accumulators over alternate elements, so that enough FMAs are
 * independent to hide their latency (two per cycle, four cycles each), also in decode. */
A512_INL void f16_512_nt(const uint8_t *w, const float *x, const int NT, size_t n, float *out,
                         size_t os, int nr, int add)
{
    enum { SETS = 4 };
    const int ns = 16 / NT < SETS ? 16 / NT : SETS;
    __m512 acc[SETS][GB_KERN_NT];
    for (int s = 0; s < ns; s++)
        for (int t = 0; t < NT; t++)
            acc[s][t] = _mm512_setzero_ps();
    size_t k = 0;
    for (; k + (size_t)ns <= n; k += (size_t)ns) {
        for (int s = 0; s < ns; s++) {
            __m512 wv = _mm512_cvtph_ps(
                _mm256_loadu_si256((const __m256i *)(const void *)(w + (k + (size_t)s) * 32)));
            for (int t = 0; t < NT; t++)
                acc[s][t] = _mm512_fmadd_ps(
                    wv, _mm512_set1_ps(x[(k + (size_t)s) * (size_t)NT + (size_t)t]), acc[s][t]);
        }
    }
    for (; k < n; k++) {
        __m512 wv =
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(w + k * 32)));
        for (int t = 0; t < NT; t++)
            acc[0][t] =
                _mm512_fmadd_ps(wv, _mm512_set1_ps(x[k * (size_t)NT + (size_t)t]), acc[0][t]);
    }
    for (int s = 1; s < ns; s++)
        for (int t = 0; t < NT; t++)
            acc[0][t] = _mm512_add_ps(acc[0][t], acc[s][t]);
    store512(acc[0], NT, out, os, nr, add);
}

/*
 * Q8_0 and Q4_0 with vpdpbusd (unsigned weights times signed activations, 4 products per
 * lane): each lane is one row, so 8 instructions give 16 rows' exact block sums, started at
 * the tile's correction (-128 or -8 times the activations' sum); then times the weight
 * scales and the token's scale. Below 4 tokens the groups alternate between two sums, so
 * that the dpbusd latency does not bound a decode step.
 */
A512_INL void q_512_nt(const uint8_t *w, const uint8_t *a, const int NT, size_t n, float *out,
                       size_t os, int nr, int add, const int Q8)
{
    const int ch = NT < 4 ? 2 : 1;
    const __m512i lo4 = _mm512_set1_epi8(0x0f);
    size_t bs = GB_PANEL * (Q8 ? 34 : 18), bb = (size_t)NT * 44;
    __m512 acc[GB_KERN_NT];
    for (int t = 0; t < NT; t++)
        acc[t] = _mm512_setzero_ps();
    for (size_t b = 0; b < n / 32; b++, w += bs, a += bb) {
        const float *d = (const float *)(const void *)(a + 32 * NT);
        const int32_t *c = (const int32_t *)(const void *)(d + NT) + (Q8 ? 0 : NT);
        __m512i s[2][GB_KERN_NT];
        for (int t = 0; t < NT; t++) {
            s[0][t] = _mm512_set1_epi32(c[t]);
            s[1][t] = _mm512_setzero_si512();
        }
        for (int g = 0; g < 8; g++) {
            __m512i wv;
            if (Q8) {
                wv = _mm512_loadu_si512((const void *)(w + 32 + g * 64));
            } else {
                wv = _mm512_loadu_si512((const void *)(w + 32 + (g % 4) * 64));
                if (g >= 4)
                    wv = _mm512_srli_epi16(wv, 4);
                wv = _mm512_and_si512(wv, lo4);
            }
            for (int t = 0; t < NT; t++)
                s[g % ch][t] = _mm512_dpbusd_epi32(
                    s[g % ch][t], wv, _mm512_set1_epi32(ld32(a + (size_t)(t * 32 + g * 4))));
        }
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)w));
        for (int t = 0; t < NT; t++) {
            __m512i st = ch == 2 ? _mm512_add_epi32(s[0][t], s[1][t]) : s[0][t];
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(st),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(d[t])), acc[t]);
        }
    }
    store512(acc, NT, out, os, nr, add);
}

/* One entry point per (variant, type): the token count becomes a constant of the loop. */
#define NT_CASE(body, k)                                                                           \
    case k:                                                                                        \
        body(k);                                                                                   \
        break;
#define DISPATCH(name, isa, body)                                                                  \
    __attribute__((target(isa))) static void name(const void *panel, const void *tile, int nt,     \
                                                  size_t n, float *out, size_t os, int nr,         \
                                                  int add)                                         \
    {                                                                                              \
        const uint8_t *w = panel;                                                                  \
        switch (nt) {                                                                              \
            NT_CASE(body, 1)                                                                       \
            NT_CASE(body, 2)                                                                       \
            NT_CASE(body, 3)                                                                       \
            NT_CASE(body, 4)                                                                       \
            NT_CASE(body, 5)                                                                       \
            NT_CASE(body, 6)                                                                       \
            NT_CASE(body, 7)                                                                       \
        default:                                                                                   \
            body(8);                                                                               \
            break;                                                                                 \
        }                                                                                          \
    }

#define F16_AVX2(k) f16_avx2_nt(w, tile, k, n, out, os, nr, add)
#define Q8_AVX2(k) q_avx2_nt(w, tile, k, n, out, os, nr, add, 1)
#define Q4_AVX2(k) q_avx2_nt(w, tile, k, n, out, os, nr, add, 0)
#define F16_512(k) f16_512_nt(w, tile, k, n, out, os, nr, add)
#define Q8_512(k) q_512_nt(w, tile, k, n, out, os, nr, add, 1)
#define Q4_512(k) q_512_nt(w, tile, k, n, out, os, nr, add, 0)
DISPATCH(f16_avx2, "avx2,fma,f16c", F16_AVX2)
DISPATCH(q8_0_avx2, "avx2,fma,f16c", Q8_AVX2)
DISPATCH(q4_0_avx2, "avx2,fma,f16c", Q4_AVX2)
DISPATCH(f16_512, A512, F16_512)
DISPATCH(q8_0_512, A512, Q8_512)
DISPATCH(q4_0_512, A512, Q4_512)

__attribute__((target("avx2,fma,f16c"))) static void
att_avx2(const float *const *q, const int32_t *pos, int nq, const float *k, const float *v,
         size_t ks, size_t hd, float scale, float *const *out, float *scratch)
{
    att_body(q, pos, nq, k, v, ks, hd, scale, out, scratch);
}

__attribute__((target(A512))) static void att_512(const float *const *q, const int32_t *pos, int nq,
                                                  const float *k, const float *v, size_t ks,
                                                  size_t hd, float scale, float *const *out,
                                                  float *scratch)
{
    att_body(q, pos, nq, k, v, ks, hd, scale, out, scratch);
}

#endif /* GB_X86 */

gb_att_fn gb_kern_att(enum gb_isa isa)
{
#ifdef GB_X86
    if (isa == GB_ISA_AVX512 && gb_kern_isa_ok(isa))
        return att_512;
    if (isa == GB_ISA_AVX2 && gb_kern_isa_ok(isa))
        return att_avx2;
#endif
    return gb_kern_isa_ok(isa) ? att_c : NULL;
}

gb_panel_fn gb_kern_panel(enum gb_isa isa, uint32_t type)
{
    static const gb_panel_fn c[3] = {f16_c, q8_0_c, q4_0_c};
#ifdef GB_X86
    static const gb_panel_fn avx2[3] = {f16_avx2, q8_0_avx2, q4_0_avx2};
    static const gb_panel_fn a512[3] = {f16_512, q8_0_512, q4_0_512};
#endif
    int k = type == GB_F16 ? 0 : type == GB_Q8_0 ? 1 : type == GB_Q4_0 ? 2 : -1;
    if (k < 0 || !gb_kern_isa_ok(isa))
        return NULL;
#ifdef GB_X86
    if (isa == GB_ISA_AVX512)
        return a512[k];
    if (isa == GB_ISA_AVX2)
        return avx2[k];
#endif
    return c[k];
}
#ifdef GB_X86
/* F16C (CPUID.1:ECX bit 29): not every compiler's __builtin_cpu_supports knows it. */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

/* Asks the CPU (CPUID, which traps to the hypervisor in a VM: slow, so only once). */
static int probe(enum gb_isa isa)
{
    switch (isa) {
    case GB_ISA_C:
        return 1;
#ifdef GB_X86
    case GB_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case GB_ISA_AVX512:
        return probe(GB_ISA_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
#endif
    default:
        return 0;
    }
}

const char *gb_kern_isa_name(enum gb_isa isa)
{
    return isa == GB_ISA_AVX512 ? "avx512" : isa == GB_ISA_AVX2 ? "avx2" : "c";
}

static enum gb_isa chosen;
static int runs[GB_ISA_AVX512 + 1];
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    const char *want = getenv("CCGATE_CPU_ISA");
    for (enum gb_isa i = GB_ISA_C; i <= GB_ISA_AVX512; i++)
        if ((runs[i] = probe(i)) != 0)
            chosen = i;
    for (enum gb_isa i = GB_ISA_C; want != NULL && i <= GB_ISA_AVX512; i++)
        if (strcmp(want, gb_kern_isa_name(i)) == 0 && runs[i])
            chosen = i;
}

enum gb_isa gb_kern_isa(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}

int gb_kern_isa_ok(enum gb_isa isa)
{
    pthread_once(&chosen_once, choose);
    return isa >= GB_ISA_C && isa <= GB_ISA_AVX512 && runs[isa];
}
