#ifndef GB_KERN_H
#define GB_KERN_H

#include <stddef.h>
#include <stdint.h>

/*
 * Dot products of one weight row with up to GB_KERN_NT tokens' activations, straight on the
 * row's file format: F16 rows against F32 activations; Q8_0 and Q4_0 rows against
 * activations quantised to 8 bits in blocks of 32 (as llama.cpp does), so that the products
 * are exact integer sums per block. The variant is chosen once at run time from what the
 * CPU supports (AVX-512 VNNI, AVX2 + FMA + F16C, portable C); nothing is compiled for one
 * CPU only.
 */

#define GB_KERN_NT 4 /* tokens per call: the row is read once for all of them */

enum gb_isa { GB_ISA_C = 0, GB_ISA_AVX2 = 1, GB_ISA_AVX512 = 2 };

/*
 * Activations of n elements (a multiple of 32) quantised to 8 bits: gb_act_bytes(n) bytes
 * per token, laid out as q[n] (int8), then d[n/32] (float scales), then for the VNNI
 * kernels corr[n/4] (int32: -128 * the sum of each 4 values) and lane[n/4] (float: the scale
 * of each 4 values' block). Value i is q[i] * d[i/32].
 */
size_t gb_act_bytes(size_t n);
/* Quantises x[0..n) into dst (gb_act_bytes(n) bytes): d = max|x| / 127, round half away. */
void gb_act_quant(const float *x, size_t n, void *dst);

/*
 * out[t * out_stride] = row . act_t for t < nt (1..GB_KERN_NT), act_t at act + t *
 * act_stride bytes: F32 values for F16 rows, gb_act_quant blocks for Q8_0 and Q4_0 rows.
 * n: elements of the row (a multiple of 32 for the quantised types).
 */
typedef void (*gb_rowdot_fn)(const void *row, const void *act, size_t act_stride, int nt, size_t n,
                             float *out, size_t out_stride);

/* The kernel for weight type (GB_F16, GB_Q8_0, GB_Q4_0) in variant isa; NULL for others. */
gb_rowdot_fn gb_kern_rowdot(enum gb_isa isa, uint32_t type);

/* The best variant this CPU runs, or the one CCGATE_CPU_ISA (c, avx2, avx512) names if the
 * CPU runs it. Decided once. */
enum gb_isa gb_kern_isa(void);
/* Whether this CPU runs variant isa. */
int gb_kern_isa_ok(enum gb_isa isa);
const char *gb_kern_isa_name(enum gb_isa isa);

#endif
