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

size_t gb_act_bytes(size_t n)
{
    return n + (n / 32) * sizeof(float) + 2 * (n / 4) * sizeof(int32_t);
}

void gb_act_quant(const float *x, size_t n, void *dst)
{
    int8_t *q = dst;
    float *d = (float *)(void *)(q + n);
    int32_t *corr = (int32_t *)(void *)(d + n / 32);
    float *lane = (float *)(void *)(corr + n / 4);
    for (size_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        float db = amax / 127.0f, id = db != 0 ? 1.0f / db : 0.0f;
        for (int j = 0; j < 32; j++) {
            float v = xb[j] * id;
            q[b * 32 + j] = (int8_t)(int)(v + (v >= 0 ? 0.5f : -0.5f));
        }
        d[b] = db;
        for (int g = 0; g < 8; g++) {
            const int8_t *qg = q + b * 32 + 4 * g;
            corr[b * 8 + g] = -128 * (qg[0] + qg[1] + qg[2] + qg[3]);
            lane[b * 8 + g] = db;
        }
    }
}

static float f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return gb_f16_to_f32(h);
}

/* ---- portable C ---- */

static void f16_c(const void *row, const void *act, size_t as, int nt, size_t n, float *out,
                  size_t os)
{
    const uint8_t *w = row;
    for (int t = 0; t < nt; t++) {
        const float *x = (const float *)(const void *)((const uint8_t *)act + (size_t)t * as);
        float s[8] = {0};
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++)
                s[k] += f16(w + 2 * (i + k)) * x[i + k];
        float r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
        for (; i < n; i++)
            r += f16(w + 2 * i) * x[i];
        out[(size_t)t * os] = r;
    }
}

/* Q8_0 block: f16 scale, 32 int8. Q4_0 block: f16 scale, 16 bytes of nibbles (elements
 * 0..15 in the low nibbles, 16..31 in the high ones), value (nibble - 8) * scale. */
static void q8_0_c(const void *row, const void *act, size_t as, int nt, size_t n, float *out,
                   size_t os)
{
    size_t nb = n / 32;
    for (int t = 0; t < nt; t++) {
        const int8_t *xq = (const int8_t *)act + (size_t)t * as;
        const float *xd = (const float *)(const void *)(xq + n);
        const uint8_t *w = row;
        float r = 0;
        for (size_t b = 0; b < nb; b++, w += 34) {
            const int8_t *wq = (const int8_t *)(w + 2);
            int sum = 0;
            for (int j = 0; j < 32; j++)
                sum += wq[j] * xq[b * 32 + j];
            r += f16(w) * xd[b] * (float)sum;
        }
        out[(size_t)t * os] = r;
    }
}

static void q4_0_c(const void *row, const void *act, size_t as, int nt, size_t n, float *out,
                   size_t os)
{
    size_t nb = n / 32;
    for (int t = 0; t < nt; t++) {
        const int8_t *xq = (const int8_t *)act + (size_t)t * as;
        const float *xd = (const float *)(const void *)(xq + n);
        const uint8_t *w = row;
        float r = 0;
        for (size_t b = 0; b < nb; b++, w += 18) {
            const int8_t *x = xq + b * 32;
            int sum = 0;
            for (int j = 0; j < 16; j++)
                sum += ((w[2 + j] & 0x0f) - 8) * x[j] + ((w[2 + j] >> 4) - 8) * x[j + 16];
            r += f16(w) * xd[b] * (float)sum;
        }
        out[(size_t)t * os] = r;
    }
}

#ifdef GB_X86

/* ---- AVX2 + FMA + F16C ---- */

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INL __attribute__((target("avx2,fma,f16c"), always_inline)) static inline

AVX2_INL float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_INL float h2f(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

AVX2_INL void f16_avx2_nt(const uint8_t *w, const uint8_t *act, size_t as, const int NT, size_t n,
                          float *out, size_t os)
{
    __m256 acc[GB_KERN_NT][2];
    for (int t = 0; t < NT; t++)
        acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w + 2 * i)));
        __m256 w1 =
            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w + 2 * i + 16)));
        for (int t = 0; t < NT; t++) {
            const float *x = (const float *)(const void *)(act + (size_t)t * as) + i;
            acc[t][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x), acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8), acc[t][1]);
        }
    }
    for (int t = 0; t < NT; t++) {
        const float *x = (const float *)(const void *)(act + (size_t)t * as);
        float r = hsum256(_mm256_add_ps(acc[t][0], acc[t][1]));
        for (size_t k = i; k < n; k++)
            r += h2f(w + 2 * k) * x[k];
        out[(size_t)t * os] = r;
    }
}

/* Q8_0: |w| times x with w's sign (maddubs wants one unsigned operand); no correction. */
AVX2_INL void q8_0_avx2_nt(const uint8_t *w, const uint8_t *act, size_t as, const int NT, size_t n,
                           float *out, size_t os)
{
    size_t nb = n / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[GB_KERN_NT];
    for (int t = 0; t < NT; t++)
        acc[t] = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++, w += 34) {
        __m256i wv = _mm256_loadu_si256((const __m256i *)(const void *)(w + 2));
        __m256i aw = _mm256_sign_epi8(wv, wv);
        float dw = h2f(w);
        for (int t = 0; t < NT; t++) {
            const uint8_t *xq = act + (size_t)t * as;
            const float *xd = (const float *)(const void *)(xq + n);
            __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(xq + b * 32));
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, wv)), ones);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * xd[b]), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++)
        out[(size_t)t * os] = hsum256(acc[t]);
}

/* Q4_0: nibble - 8, then as Q8_0. */
AVX2_INL void q4_0_avx2_nt(const uint8_t *w, const uint8_t *act, size_t as, const int NT, size_t n,
                           float *out, size_t os)
{
    size_t nb = n / 32;
    const __m256i ones = _mm256_set1_epi16(1), lo4 = _mm256_set1_epi8(0x0f);
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc[GB_KERN_NT];
    for (int t = 0; t < NT; t++)
        acc[t] = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++, w += 18) {
        __m128i q = _mm_loadu_si128((const __m128i *)(const void *)(w + 2));
        __m256i wv = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), lo4);
        wv = _mm256_sub_epi8(wv, eight);
        __m256i aw = _mm256_sign_epi8(wv, wv);
        float dw = h2f(w);
        for (int t = 0; t < NT; t++) {
            const uint8_t *xq = act + (size_t)t * as;
            const float *xd = (const float *)(const void *)(xq + n);
            __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(xq + b * 32));
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, wv)), ones);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * xd[b]), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++)
        out[(size_t)t * os] = hsum256(acc[t]);
}

/* ---- AVX-512 (F, BW, VL, DQ) with VNNI ---- */

#define A512 "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"
#define A512_INL __attribute__((target(A512), always_inline)) static inline

A512_INL void f16_512_nt(const uint8_t *w, const uint8_t *act, size_t as, const int NT, size_t n,
                         float *out, size_t os)
{
    __m512 acc[GB_KERN_NT][2];
    for (int t = 0; t < NT; t++)
        acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 w0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(w + 2 * i)));
        __m512 w1 =
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(w + 2 * i + 32)));
        for (int t = 0; t < NT; t++) {
            const float *x = (const float *)(const void *)(act + (size_t)t * as) + i;
            acc[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x), acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16), acc[t][1]);
        }
    }
    for (int t = 0; t < NT; t++) {
        const float *x = (const float *)(const void *)(act + (size_t)t * as);
        float r = _mm512_reduce_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]));
        for (size_t k = i; k < n; k++)
            r += h2f(w + 2 * k) * x[k];
        out[(size_t)t * os] = r;
    }
}

/* Two blocks per 512-bit register: lanes 0..7 sum block b, lanes 8..15 block b + 1. */
A512_INL __m512 pair(float a, float b)
{
    return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

/*
 * Q8_0 and Q4_0 (nibble - 8) with vpdpbusd, which multiplies unsigned by signed bytes: the
 * weights + 128 (unsigned), the sum started at -128 * the activations of each 4-byte group
 * (gb_act_quant's corr), so that every lane ends with its exact integer sum; then times the
 * weight scale and the per-lane activation scale. Q8_0 if Q8 else Q4_0.
 */
A512_INL void q_512_nt(const uint8_t *w, const uint8_t *act, size_t as, const int NT, size_t n,
                       float *out, size_t os, const int Q8)
{
    size_t nb = n / 32, bs = Q8 ? 34 : 18;
    const size_t corr_off = n + nb * sizeof(float), lane_off = corr_off + n;
    const __m512i lo4 = _mm512_set1_epi8(0x0f), x80 = _mm512_set1_epi8((char)0x80);
    const __m512i k120 = _mm512_set1_epi8(120); /* nibble - 8 + 128 */
    const __m512i sh = _mm512_set_epi64(4 * 0x0001000100010001ll, 4 * 0x0001000100010001ll, 0, 0,
                                        4 * 0x0001000100010001ll, 4 * 0x0001000100010001ll, 0, 0);
    __m512 acc[GB_KERN_NT];
    for (int t = 0; t < NT; t++)
        acc[t] = _mm512_setzero_ps();
    size_t b = 0;
    for (; b + 2 <= nb; b += 2, w += 2 * bs) {
        __m512i wv;
        if (Q8) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(w + 2));
            __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(w + 34 + 2));
            wv = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1), x80);
        } else {
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(w + 2));
            __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(w + 18 + 2));
            wv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(a)),
                                    _mm256_broadcastsi128_si256(c), 1);
            wv = _mm512_add_epi8(_mm512_and_si512(_mm512_srlv_epi16(wv, sh), lo4), k120);
        }
        __m512 dw = pair(h2f(w), h2f(w + bs));
        for (int t = 0; t < NT; t++) {
            const uint8_t *xa = act + (size_t)t * as;
            __m512i p = _mm512_loadu_si512((const void *)(xa + corr_off + b * 32));
            p = _mm512_dpbusd_epi32(p, wv, _mm512_loadu_si512((const void *)(xa + b * 32)));
            __m512 sc = _mm512_mul_ps(dw, _mm512_loadu_ps((const void *)(xa + lane_off + b * 32)));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), sc, acc[t]);
        }
    }
    float tail[GB_KERN_NT] = {0};
    if (b < nb) { /* an odd block count: the last block alone */
        __m256i wv;
        if (Q8) {
            wv = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(w + 2)),
                                  _mm256_set1_epi8((char)0x80));
        } else {
            __m128i q = _mm_loadu_si128((const __m128i *)(const void *)(w + 2));
            wv =
                _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
            wv = _mm256_add_epi8(wv, _mm256_set1_epi8(120));
        }
        float d0 = h2f(w);
        for (int t = 0; t < NT; t++) {
            const uint8_t *xa = act + (size_t)t * as;
            const float *xd = (const float *)(const void *)(xa + n);
            __m256i p = _mm256_loadu_si256((const __m256i *)(const void *)(xa + corr_off + b * 32));
            p = _mm256_dpbusd_epi32(
                p, wv, _mm256_loadu_si256((const __m256i *)(const void *)(xa + b * 32)));
            tail[t] = hsum256(_mm256_cvtepi32_ps(p)) * (d0 * xd[b]);
        }
    }
    for (int t = 0; t < NT; t++)
        out[(size_t)t * os] = _mm512_reduce_add_ps(acc[t]) + tail[t];
}

/* One entry point per (variant, type): the token count becomes a constant of the loop. */
#define DISPATCH(name, isa, body)                                                                  \
    __attribute__((target(isa))) static void name(const void *row, const void *act, size_t as,     \
                                                  int nt, size_t n, float *out, size_t os)         \
    {                                                                                              \
        const uint8_t *w = row, *a = act;                                                          \
        switch (nt) {                                                                              \
        case 1:                                                                                    \
            body(1);                                                                               \
            break;                                                                                 \
        case 2:                                                                                    \
            body(2);                                                                               \
            break;                                                                                 \
        case 3:                                                                                    \
            body(3);                                                                               \
            break;                                                                                 \
        default:                                                                                   \
            body(4);                                                                               \
            break;                                                                                 \
        }                                                                                          \
    }

#define F16_AVX2(k) f16_avx2_nt(w, a, as, k, n, out, os)
#define Q8_AVX2(k) q8_0_avx2_nt(w, a, as, k, n, out, os)
#define Q4_AVX2(k) q4_0_avx2_nt(w, a, as, k, n, out, os)
#define F16_512(k) f16_512_nt(w, a, as, k, n, out, os)
#define Q8_512(k) q_512_nt(w, a, as, k, n, out, os, 1)
#define Q4_512(k) q_512_nt(w, a, as, k, n, out, os, 0)
DISPATCH(f16_avx2, "avx2,fma,f16c", F16_AVX2)
DISPATCH(q8_0_avx2, "avx2,fma,f16c", Q8_AVX2)
DISPATCH(q4_0_avx2, "avx2,fma,f16c", Q4_AVX2)
DISPATCH(f16_512, A512, F16_512)
DISPATCH(q8_0_512, A512, Q8_512)
DISPATCH(q4_0_512, A512, Q4_512)

#endif /* GB_X86 */

gb_rowdot_fn gb_kern_rowdot(enum gb_isa isa, uint32_t type)
{
    static const gb_rowdot_fn c[3] = {f16_c, q8_0_c, q4_0_c};
#ifdef GB_X86
    static const gb_rowdot_fn avx2[3] = {f16_avx2, q8_0_avx2, q4_0_avx2};
    static const gb_rowdot_fn a512[3] = {f16_512, q8_0_512, q4_0_512};
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
