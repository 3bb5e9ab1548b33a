#ifndef GB_KERN_H
#define GB_KERN_H

#include <stddef.h>
#include <stdint.h>

/*
 * Matrix products y[t][r] = W[r] . x[t] on the CPU, straight on the weights' file formats:
 * F16 rows against F32 activations; Q8_0 and Q4_0 rows against activations quantised to 8
 * bits in blocks of 32 (as llama.cpp does), so that each block's products are an exact
 * integer sum.
 *
 * The weights are repacked once (gb_pack) into panels of GB_PANEL rows interleaved element
 * by element (4 bytes by 4 bytes for the quantised types), so that one vector holds the same
 * elements of 16 rows: a kernel computes 16 rows for up to GB_KERN_NT tokens with no
 * horizontal sums, each loaded weight vector used for every token of the tile. The
 * activations are packed once per product input into tiles of up to GB_KERN_NT tokens
 * (gb_tile_f32, gb_tile_q8) with the tokens interleaved the same way. The kernel variant is
 * chosen once at run time from what the CPU supports (AVX-512 VNNI, AVX2 + FMA + F16C,
 * portable C); nothing is compiled for one CPU only.
 */

#define GB_PANEL 16  /* rows per panel */
#define GB_KERN_NT 8 /* tokens per tile */

enum gb_isa { GB_ISA_C = 0, GB_ISA_AVX2 = 1, GB_ISA_AVX512 = 2 };

/*
 * A matrix of type (GB_F16, GB_Q8_0, GB_Q4_0) with n_out rows of n_in elements (a multiple
 * of 32 for the quantised types), repacked: ceil(n_out / 16) panels of 16 * the row size
 * each, the rows past n_out zero. Per panel:
 *   F16:  for each element k: the 16 rows' F16 values (32 bytes);
 *   Q8_0: for each block of 32: the 16 rows' F16 scales, then for each group g of 4
 *         elements (8 per block): 16 rows x 4 bytes, each value + 128 (unsigned);
 *   Q4_0: for each block: the 16 scales, then for g < 4: 16 rows x 4 bytes whose low
 *         nibbles are group g and high nibbles group g + 4 (value = nibble - 8).
 */
size_t gb_pack_bytes(uint32_t type, size_t n_out, size_t n_in);
/* Repacks n_out rows of row_bytes bytes at src into dst (gb_pack_bytes bytes). */
void gb_pack(uint32_t type, const void *src, size_t row_bytes, size_t n_out, size_t n_in,
             void *dst);

/*
 * Activation tiles of nt (1..GB_KERN_NT) tokens of n elements, token t at x + t * x_stride:
 *   gb_tile_f32: float x[n][nt] (for F16 weights);
 *   gb_tile_q8: per block of 32: int8 q[nt][32] (token, value), float d[nt],
 *               int32 c8[nt] = -128 * the block's sum of q, int32 c4[nt] = -8 * that sum.
 *               d = max|x| / 127 rounded to F16 as llama.cpp stores it, q = x / (max|x| /
 *               127) rounded half away from zero: value = q * d.
 */
size_t gb_tile_bytes(int quant, size_t n, int nt);
void gb_tile_f32(const float *x, size_t x_stride, int nt, size_t n, void *dst);
void gb_tile_q8(const float *x, size_t x_stride, int nt, size_t n, void *dst);

/*
 * out[t * out_stride + r] = row r of the panel . token t of the tile, for t < nt and
 * r < nr (1..GB_PANEL); with add, out[...] += that. n: elements per row (or of a slice of
 * the rows: elements k0.. of a panel start at k0 * 32 bytes for F16, k0 / 32 * 16 * the
 * block size for the quantised types, of a tile at gb_tile_bytes(quant, k0, nt)).
 */
typedef void (*gb_panel_fn)(const void *panel, const void *tile, int nt, size_t n, float *out,
                            size_t out_stride, int nr, int add);

/* The kernel for weight type (GB_F16, GB_Q8_0, GB_Q4_0) in variant isa; NULL for others. */
gb_panel_fn gb_kern_panel(enum gb_isa isa, uint32_t type);

/*
 * Causal attention of nq queries sharing one KV head (a block of tokens of one sequence times
 * the query heads of the head's group): out[i] = softmax(q[i] . K[p] * scale for p <=
 * pos[i]) . V, K[p] at k + p * kv_stride and V[p] at v + p * kv_stride, hd floats each.
 * Positions go in blocks of 16, each block's K transposed once for all queries (16 scores
 * per vector), the softmax kept running (maximum and sum rescaled per block), so that memory
 * does not grow with the context. scratch: gb_att_scratch(nq, hd) floats.
 */
typedef void (*gb_att_fn)(const float *const *q, const int32_t *pos, int nq, const float *k,
                          const float *v, size_t kv_stride, size_t hd, float scale,
                          float *const *out, float *scratch);
size_t gb_att_scratch(int nq, size_t hd);
/* The attention kernel in variant isa (every variant has one). */
gb_att_fn gb_kern_att(enum gb_isa isa);

/* The best variant this CPU runs, or the one CCGATE_CPU_ISA (c, avx2, avx512) names if the
 * CPU runs it. Decided once. */
enum gb_isa gb_kern_isa(void);
/* Whether this CPU runs variant isa. */
int gb_kern_isa_ok(enum gb_isa isa);
const char *gb_kern_isa_name(enum gb_isa isa);

#endif
