#include "gb_quant.h"

#include "ccgate/err.h"
#include "gb_gguf.h"

#include <math.h>
#include <string.h>

float gb_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    float f;
    if (exp == 0) {
        /* zero or subnormal: value = man * 2^-24 */
        f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (man << 13);
    else
        bits = sign | ((exp + 112) << 23) | (man << 13);
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t gb_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0);
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow */
        return sign | 0x7c00;
    if (ax < 0x38800000u) {
        /* subnormal half: scale into the integer mantissa and round to nearest even */
        float a;
        memcpy(&a, &ax, 4);
        float m = a * 0x1p24f;
        return sign | (uint16_t)nearbyintf(m);
    }
    uint32_t man = ax & 0x7fffff;
    uint32_t exp = (ax >> 23) - 112;
    uint32_t h = (exp << 10) | (man >> 13);
    uint32_t rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++; /* may carry into the exponent, which is correct */
    return sign | (uint16_t)h;
}

float gb_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t gb_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

void gb_dequant_row(uint32_t type, const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    uint16_t h;
    switch (type) {
    case GB_F32:
        memcpy(dst, src, n * 4);
        break;
    case GB_F16:
        for (size_t i = 0; i < n; i++) {
            memcpy(&h, p + 2 * i, 2);
            dst[i] = gb_f16_to_f32(h);
        }
        break;
    case GB_BF16:
        for (size_t i = 0; i < n; i++) {
            memcpy(&h, p + 2 * i, 2);
            dst[i] = gb_bf16_to_f32(h);
        }
        break;
    case GB_Q8_0:
        for (size_t b = 0; b < n / 32; b++, p += 34) {
            memcpy(&h, p, 2);
            float d = gb_f16_to_f32(h);
            const int8_t *q = (const int8_t *)(p + 2);
            for (int j = 0; j < 32; j++)
                dst[b * 32 + j] = d * (float)q[j];
        }
        break;
    case GB_Q4_0:
        for (size_t b = 0; b < n / 32; b++, p += 18) {
            memcpy(&h, p, 2);
            float d = gb_f16_to_f32(h);
            for (int j = 0; j < 16; j++) {
                dst[b * 32 + j] = d * (float)((p[2 + j] & 0x0f) - 8);
                dst[b * 32 + j + 16] = d * (float)((p[2 + j] >> 4) - 8);
            }
        }
        break;
    default:
        memset(dst, 0, n * 4);
        break;
    }
}

int gb_quant_row(uint32_t type, const float *src, void *dst, size_t n)
{
    uint8_t *p = dst;
    uint16_t h;
    switch (type) {
    case GB_F32:
        memcpy(dst, src, n * 4);
        return 0;
    case GB_F16:
        for (size_t i = 0; i < n; i++) {
            h = gb_f32_to_f16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return 0;
    case GB_BF16:
        for (size_t i = 0; i < n; i++) {
            h = gb_f32_to_bf16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return 0;
    case GB_Q8_0:
        if (n % 32 != 0)
            return CG_ECONFIG;
        for (size_t b = 0; b < n / 32; b++, p += 34) {
            const float *x = src + b * 32;
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fmaxf(amax, fabsf(x[j]));
            float d = amax / 127.0f;
            float id = d != 0 ? 1.0f / d : 0.0f;
            h = gb_f32_to_f16(d);
            memcpy(p, &h, 2);
            for (int j = 0; j < 32; j++)
                p[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
        }
        return 0;
    case GB_Q4_0:
        if (n % 32 != 0)
            return CG_ECONFIG;
        for (size_t b = 0; b < n / 32; b++, p += 18) {
            const float *x = src + b * 32;
            float amax = 0, max = 0;
            for (int j = 0; j < 32; j++)
                if (fabsf(x[j]) > amax) {
                    amax = fabsf(x[j]);
                    max = x[j];
                }
            float d = max / -8.0f;
            float id = d != 0 ? 1.0f / d : 0.0f;
            h = gb_f32_to_f16(d);
            memcpy(p, &h, 2);
            for (int j = 0; j < 16; j++) {
                int q0 = (int)(x[j] * id + 8.5f);
                int q1 = (int)(x[j + 16] * id + 8.5f);
                q0 = q0 > 15 ? 15 : q0;
                q1 = q1 > 15 ? 15 : q1;
                p[2 + j] = (uint8_t)(q0 | (q1 << 4));
            }
        }
        return 0;
    default:
        return CG_ECONFIG;
    }
}

float gb_dot(const float *a, const float *b, size_t n)
{
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += a[i + k] * b[i + k];
    float t = 0;
    for (; i < n; i++)
        t += a[i] * b[i];
    return t + ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}
