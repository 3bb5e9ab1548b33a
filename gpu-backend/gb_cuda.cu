// The CUDA path of ccgate-worker: weights and KV cache on the GPU, cuBLAS (tensor cores) for
// products over many tokens, own kernels for the rest. Same batch contract as the CPU path.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" {
#include "gb_backend.h"
#include "gb_gguf.h"
#include "gb_model.h"
}

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace
{

#define MATVEC_MAX 8 // up to this many tokens a step reads the weights with own kernels

// A weight matrix on the device. Quantised types are split into aligned arrays: Q8_0 as
// int8 quants [n_out][n_in] plus half scales [n_out][n_in/32]; Q4_0 as the 16 nibble bytes of
// each block [n_out][n_in/2] plus scales.
struct dwt {
    uint32_t type;
    uint32_t n_in, n_out;
    void *q;
    __half *d;
    __half *h; // F16 copy of a quantised matrix for tensor-core GEMMs, when memory allows
};

struct dlayer {
    float *attn_norm, *ffn_norm, *bq, *bk, *bv;
    dwt wq, wk, wv, wo, wg, wu, wd;
};

struct cuda_be {
    gb_backend b;
    gb_hparams hp;
    dlayer *L;
    dwt emb, out;
    float *out_norm;
    float *kc, *vc;
    float *x, *xn, *q, *k, *v, *att, *o, *g, *u, *logits;
    __half *xh, *wh;
    size_t wh_elems;
    int32_t *d_tok, *d_pos, *d_seq, *d_widx;
    int32_t *h_widx;
    cudaGraphExec_t graphs[9][9]; // [n][nw] for n <= MATVEC_MAX
    int use_graphs;
    cudaStream_t st;
    cublasHandle_t blas;
    uint64_t weight_bytes;
    uint64_t copies, copy_bytes; /* host<->device copies forward() made (gpu-check) */
    char *err;
    size_t errlen;
    void **allocs;
    size_t n_allocs, cap_allocs;
};

int fail(cuda_be *c, const char *what, const char *why)
{
    if (c->errlen > 0)
        snprintf(c->err, c->errlen, "cuda: %s: %s", what, why);
    return -EIO;
}

int ck(cuda_be *c, cudaError_t e, const char *what)
{
    return e == cudaSuccess ? 0 : fail(c, what, cudaGetErrorString(e));
}

int ckb(cuda_be *c, cublasStatus_t s, const char *what)
{
    return s == CUBLAS_STATUS_SUCCESS ? 0 : fail(c, what, cublasGetStatusString(s));
}

// Kernel launches are checked right after they are queued.
#define LAUNCH_CHECK(c, name)                                                                      \
    do {                                                                                           \
        int rc_ = ck(c, cudaGetLastError(), name);                                                 \
        if (rc_ != 0)                                                                              \
            return rc_;                                                                            \
    } while (0)

int dalloc(cuda_be *c, void **p, size_t bytes, const char *what)
{
    *p = NULL;
    if (c->n_allocs == c->cap_allocs) {
        size_t cap = c->cap_allocs ? c->cap_allocs * 2 : 256;
        void **n = (void **)realloc(c->allocs, cap * sizeof(void *));
        if (n == NULL)
            return -ENOMEM;
        c->allocs = n;
        c->cap_allocs = cap;
    }
    int rc = ck(c, cudaMalloc(p, bytes > 0 ? bytes : 1), what);
    if (rc == 0)
        c->allocs[c->n_allocs++] = *p;
    return rc;
}

// ---- device helpers ----

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float bf16f(uint16_t h)
{
    return __uint_as_float((uint32_t)h << 16);
}

// Element (row, i) of a weight matrix as float.
__device__ __forceinline__ float wload(const dwt w, size_t row, size_t i)
{
    switch (w.type) {
    case GB_F32:
        return ((const float *)w.q)[row * w.n_in + i];
    case GB_F16:
        return __half2float(((const __half *)w.q)[row * w.n_in + i]);
    case GB_BF16:
        return bf16f(((const uint16_t *)w.q)[row * w.n_in + i]);
    case GB_Q8_0:
        return __half2float(w.d[row * (w.n_in / 32) + i / 32]) *
               (float)((const int8_t *)w.q)[row * w.n_in + i];
    default: { // Q4_0
        size_t blk = i / 32, j = i % 32;
        uint8_t byte = ((const uint8_t *)w.q)[row * (w.n_in / 2) + blk * 16 + (j & 15)];
        int nib = j < 16 ? (byte & 15) : (byte >> 4);
        return __half2float(w.d[row * (w.n_in / 32) + blk]) * (float)(nib - 8);
    }
    }
}

__global__ void k_embed(const dwt w, const int32_t *tok, float *x, int dim)
{
    int t = blockIdx.x;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        x[(size_t)t * dim + i] = wload(w, (size_t)tok[t], (size_t)i);
}

// One block per row; rows listed in idx (or all when idx is NULL).
__global__ void k_rmsnorm(const float *x, const float *w, float *out, const int32_t *idx, int dim,
                          float eps)
{
    __shared__ float red[32];
    int r = blockIdx.x;
    const float *xr = x + (size_t)(idx ? idx[r] : r) * dim;
    float s = 0;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        s += xr[i] * xr[i];
    s = warp_sum(s);
    if ((threadIdx.x & 31) == 0)
        red[threadIdx.x / 32] = s;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < blockDim.x / 32 ? red[threadIdx.x] : 0;
        v = warp_sum(v);
        if (threadIdx.x == 0)
            red[0] = v;
    }
    __syncthreads();
    float scale = (float)(1.0 / sqrt((double)red[0] / dim + (double)eps));
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        out[(size_t)r * dim + i] = xr[i] * scale * w[i];
}

// Up to three matrices of one type sharing their input (Q/K/V, gate/up): one launch.
struct mvset {
    dwt w[3];
    float *y[3];
    int nblk[3]; // blocks of MV_ROWS rows per matrix; 0 for unused entries
};

#define MV_ROWS 8 // rows per block: one warp each

// y[t][row] = W[row] . x[t] for t < n <= NT: one warp per row, weights read once.
template <int TYPE, int NT>
__global__ void k_matvec(const mvset m, const float *__restrict__ x, int n)
{
    int blk = blockIdx.x, j = 0;
    while (j < 2 && blk >= m.nblk[j])
        blk -= m.nblk[j++];
    const dwt w = m.w[j];
    float *__restrict__ y = m.y[j];
    int row = blk * MV_ROWS + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= (int)w.n_out)
        return;
    const size_t n_in = w.n_in;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++)
        acc[t] = 0;
    if (TYPE == GB_F32) {
        const float4 *wr = (const float4 *)((const float *)w.q + (size_t)row * n_in);
        for (size_t i = lane; i < n_in / 4; i += 32) {
            float4 a = wr[i];
#pragma unroll
            for (int t = 0; t < NT; t++)
                if (t < n) {
                    float4 b = ((const float4 *)(x + t * n_in))[i];
                    acc[t] += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
                }
        }
    } else if (TYPE == GB_F16 || TYPE == GB_BF16) {
        const uint4 *wr = (const uint4 *)((const uint16_t *)w.q + (size_t)row * n_in);
        for (size_t i = lane; i < n_in / 8; i += 32) {
            uint4 raw = wr[i];
            const uint16_t *hv = (const uint16_t *)&raw;
            float wf[8];
#pragma unroll
            for (int j = 0; j < 8; j++)
                wf[j] = TYPE == GB_F16 ? __half2float(__ushort_as_half(hv[j])) : bf16f(hv[j]);
#pragma unroll
            for (int t = 0; t < NT; t++)
                if (t < n) {
                    const float4 *xp = (const float4 *)(x + t * n_in + i * 8);
                    float4 b0 = xp[0], b1 = xp[1];
                    acc[t] += wf[0] * b0.x + wf[1] * b0.y + wf[2] * b0.z + wf[3] * b0.w +
                              wf[4] * b1.x + wf[5] * b1.y + wf[6] * b1.z + wf[7] * b1.w;
                }
        }
    } else if (TYPE == GB_Q8_0) {
        const uint4 *wr = (const uint4 *)((const int8_t *)w.q + (size_t)row * n_in);
        const __half *dr = w.d + (size_t)row * (n_in / 32);
        for (size_t i = lane; i < n_in / 16; i += 32) {
            uint4 raw = wr[i];
            const int8_t *qv = (const int8_t *)&raw;
            float d = __half2float(dr[i / 2]);
#pragma unroll
            for (int t = 0; t < NT; t++)
                if (t < n) {
                    const float4 *xp = (const float4 *)(x + t * n_in + i * 16);
                    float s = 0;
#pragma unroll
                    for (int j = 0; j < 4; j++) {
                        float4 b = xp[j];
                        s += qv[4 * j] * b.x + qv[4 * j + 1] * b.y + qv[4 * j + 2] * b.z +
                             qv[4 * j + 3] * b.w;
                    }
                    acc[t] += d * s;
                }
        }
    } else { // Q4_0: one block of 32 per lane step
        const uint4 *wr = (const uint4 *)((const uint8_t *)w.q + (size_t)row * (n_in / 2));
        const __half *dr = w.d + (size_t)row * (n_in / 32);
        for (size_t i = lane; i < n_in / 32; i += 32) {
            uint4 raw = wr[i];
            const uint8_t *qv = (const uint8_t *)&raw;
            float d = __half2float(dr[i]);
#pragma unroll
            for (int t = 0; t < NT; t++)
                if (t < n) {
                    const float *xp = x + t * n_in + i * 32;
                    float s = 0;
#pragma unroll
                    for (int j = 0; j < 16; j++)
                        s += (float)((qv[j] & 15) - 8) * xp[j] +
                             (float)((qv[j] >> 4) - 8) * xp[j + 16];
                    acc[t] += d * s;
                }
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float v = warp_sum(acc[t]);
        if (lane == 0 && t < n)
            y[(size_t)t * w.n_out + row] = v;
    }
}

__global__ void k_dequant_half(const dwt w, __half *out)
{
    size_t total = (size_t)w.n_in * w.n_out;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2half(wload(w, i / w.n_in, i % w.n_in));
}

__global__ void k_to_half(const float *x, __half *out, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2half(x[i]);
}

__device__ __forceinline__ size_t kv_at(int slot, int layer, int pos, int n_layer, int n_ctx,
                                        int kvd)
{
    return (((size_t)slot * n_layer + layer) * (size_t)n_ctx + (size_t)pos) * kvd;
}

// After the Q/K/V products, one block per token: QKV bias (qwen2), RoPE on Q and K, then K and
// V into the cache. Same arithmetic as the CPU path: the angle in double, cos/sin in float.
__global__ void k_qkv_post(float *q, float *k, float *v, const float *bq, const float *bk,
                           const float *bv, float *kc, float *vc, const int32_t *pos,
                           const int32_t *seq, int n_head, int n_kv, int hd, int n_rot, float base,
                           float scale, int neox, int layer, int n_layer, int n_ctx)
{
    int t = blockIdx.x, half = n_rot / 2, dim = n_head * hd, kvd = n_kv * hd;
    float *qt = q + (size_t)t * dim, *kt = k + (size_t)t * kvd, *vt = v + (size_t)t * kvd;
    if (bq != NULL) {
        for (int i = threadIdx.x; i < dim; i += blockDim.x)
            qt[i] += bq[i];
        for (int i = threadIdx.x; i < kvd; i += blockDim.x)
            kt[i] += bk[i], vt[i] += bv[i];
        __syncthreads();
    }
    double p = (double)pos[t] * (double)scale;
    for (int idx = threadIdx.x; idx < (n_head + n_kv) * half; idx += blockDim.x) {
        int hh = idx / half, i = idx % half;
        float *x = hh < n_head ? qt + (size_t)hh * hd : kt + (size_t)(hh - n_head) * hd;
        double theta = p * pow((double)base, -2.0 * i / n_rot);
        float co = (float)cos(theta), si = (float)sin(theta);
        int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * co - x1 * si;
        x[b] = x0 * si + x1 * co;
    }
    __syncthreads();
    size_t at = kv_at(seq[t], layer, pos[t], n_layer, n_ctx, kvd);
    for (int i = threadIdx.x; i < kvd; i += blockDim.x) {
        kc[at + i] = kt[i];
        vc[at + i] = vt[i];
    }
}

// x += o, then out = RMSNorm(x) * w: one block per token (each thread owns the same
// elements in both passes, so no barrier is needed between the add and the sum).
__global__ void k_add_rmsnorm(float *x, const float *o, const float *w, float *out, int dim,
                              float eps)
{
    __shared__ float red[32];
    float *xr = x + (size_t)blockIdx.x * dim;
    const float *orow = o + (size_t)blockIdx.x * dim;
    float s = 0;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = xr[i] + orow[i];
        xr[i] = v;
        s += v * v;
    }
    s = warp_sum(s);
    if ((threadIdx.x & 31) == 0)
        red[threadIdx.x / 32] = s;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < blockDim.x / 32 ? red[threadIdx.x] : 0;
        v = warp_sum(v);
        if (threadIdx.x == 0)
            red[0] = v;
    }
    __syncthreads();
    float scale = (float)(1.0 / sqrt((double)red[0] / dim + (double)eps));
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        out[(size_t)blockIdx.x * dim + i] = xr[i] * scale * w[i];
}

#define ATT_THREADS 1024
#define ATT_WARPS (ATT_THREADS / 32)

// Dynamic shared memory of k_attention: the query, the scores of every position, and one
// partial weighted sum of values per warp.
static size_t att_smem_bytes(int n_ctx, int hd)
{
    return (size_t)(n_ctx + hd + ATT_WARPS * hd) * sizeof(float);
}

// One block per (token, head): scores over positions 0..pos (a thread per position), softmax,
// then the weighted sum of values, the warps splitting the positions and the lanes the
// dimensions, so that many independent loads of the KV cache are in flight at once (a decode
// step is latency-bound here, not bandwidth-bound).
__global__ void __launch_bounds__(ATT_THREADS)
    k_attention(const float *q, const float *kc, const float *vc, float *out, const int32_t *pos,
                const int32_t *seq, int n_head, int n_kv, int hd, int layer, int n_layer, int n_ctx,
                float scale)
{
    extern __shared__ float sm[];
    float *qs = sm, *sc = sm + hd, *part = sm + hd + n_ctx;
    __shared__ float red[32];
    int t = blockIdx.x, h = blockIdx.y, kvh = h / (n_head / n_kv), kvd = n_kv * hd;
    int P = pos[t], warp = threadIdx.x / 32, lane = threadIdx.x & 31, nw = blockDim.x / 32;
    size_t base = kv_at(seq[t], layer, 0, n_layer, n_ctx, kvd) + (size_t)kvh * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x)
        qs[d] = q[((size_t)t * n_head + h) * hd + d];
    __syncthreads();
    for (int p = threadIdx.x; p <= P; p += blockDim.x) {
        const float *kr = kc + base + (size_t)p * kvd;
        float s = 0;
        if ((hd & 3) == 0 && ((base + (size_t)p * kvd) & 3) == 0) {
            const float4 *k4 = (const float4 *)kr, *q4 = (const float4 *)qs;
            for (int d = 0; d < hd / 4; d++) {
                float4 a = q4[d], b = k4[d];
                s += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
            }
        } else {
            for (int d = 0; d < hd; d++)
                s += qs[d] * kr[d];
        }
        sc[p] = s * scale;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int p = threadIdx.x; p <= P; p += blockDim.x)
        mx = fmaxf(mx, sc[p]);
    for (int o = 16; o > 0; o >>= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (lane == 0)
        red[warp] = mx;
    __syncthreads();
    mx = red[0];
    for (int i = 1; i < nw; i++)
        mx = fmaxf(mx, red[i]);
    __syncthreads();
    float sum = 0;
    for (int p = threadIdx.x; p <= P; p += blockDim.x) {
        float e = expf(sc[p] - mx);
        sc[p] = e;
        sum += e;
    }
    sum = warp_sum(sum);
    if (lane == 0)
        red[warp] = sum;
    __syncthreads();
    sum = 0;
    for (int i = 0; i < nw; i++)
        sum += red[i];
    for (int d0 = 0; d0 < hd; d0 += 32) {
        int d = d0 + lane;
        if (d >= hd)
            break;
        float a = 0;
#pragma unroll 4
        for (int p = warp; p <= P; p += nw)
            a += sc[p] * vc[base + (size_t)p * kvd + d];
        part[warp * hd + d] = a;
    }
    __syncthreads();
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float a = 0;
        for (int i = 0; i < nw; i++)
            a += part[i * hd + d];
        out[((size_t)t * n_head + h) * hd + d] = a / sum;
    }
}

__global__ void k_add(float *x, const float *y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] += y[i];
}

__global__ void k_swiglu(float *g, const float *u, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float gv = g[i];
        g[i] = gv / (1.0f + expf(-gv)) * u[i];
    }
}

// Synthetic weights: a hash of the element index, uniform in [-scale, scale].
__device__ __forceinline__ float hrand(uint64_t i, uint64_t salt)
{
    uint64_t z = i * 0x9e3779b97f4a7c15ull + salt;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

__global__ void k_fill(dwt w, float scale, uint64_t salt)
{
    size_t total = (size_t)w.n_in * w.n_out;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        float r = hrand(i, salt);
        switch (w.type) {
        case GB_F32:
            ((float *)w.q)[i] = r * scale;
            break;
        case GB_F16:
            ((__half *)w.q)[i] = __float2half(r * scale);
            break;
        case GB_BF16:
            ((__nv_bfloat16 *)w.q)[i] = __float2bfloat16(r * scale);
            break;
        case GB_Q8_0:
            ((int8_t *)w.q)[i] = (int8_t)(r * 127.0f);
            if (i % 32 == 0)
                w.d[i / 32] = __float2half(scale / 127.0f);
            break;
        default:
            if (i % 2 == 0)
                ((uint8_t *)w.q)[i / 2] = (uint8_t)((uint32_t)(r * 127.0f + 128.0f));
            if (i % 32 == 0)
                w.d[i / 32] = __float2half(scale / 8.0f);
            break;
        }
    }
}

__global__ void k_fill_const(float *x, float v, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = v;
}

__global__ void k_read(const uint4 *p, size_t n, unsigned *sink)
{
    unsigned acc = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        uint4 v = p[i];
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x9e3779b9u) // practically never: keeps the loads from being optimised away
        *sink = acc;
}

unsigned grid_for(size_t n)
{
    size_t g = (n + 255) / 256;
    return (unsigned)(g > 65535 * 4 ? 65535 * 4 : (g == 0 ? 1 : g));
}

uint64_t dwt_bytes(const dwt &w)
{
    uint64_t n = (uint64_t)w.n_in * w.n_out;
    switch (w.type) {
    case GB_F32:
        return n * 4;
    case GB_F16:
    case GB_BF16:
        return n * 2;
    case GB_Q8_0:
        return n + n / 32 * 2;
    default:
        return n / 2 + n / 32 * 2;
    }
}

int alloc_dwt(cuda_be *c, dwt *w, uint32_t type, uint64_t n_in, uint64_t n_out)
{
    w->type = type;
    w->n_in = (uint32_t)n_in;
    w->n_out = (uint32_t)n_out;
    w->d = NULL;
    w->h = NULL;
    uint64_t n = n_in * n_out;
    size_t qbytes = type == GB_F32 ? n * 4 : type == GB_Q8_0 ? n : type == GB_Q4_0 ? n / 2 : n * 2;
    int rc = dalloc(c, &w->q, qbytes, "cudaMalloc(weights)");
    if (rc == 0 && (type == GB_Q8_0 || type == GB_Q4_0))
        rc = dalloc(c, (void **)&w->d, n / 32 * sizeof(__half), "cudaMalloc(scales)");
    if (rc == 0 && n_in * n_out > c->wh_elems)
        c->wh_elems = n_in * n_out;
    return rc;
}

// Copies a host matrix (GGUF layout) to the device layout.
int upload_dwt(cuda_be *c, dwt *w, const gb_wt *h)
{
    int rc = alloc_dwt(c, w, h->type, h->n_in, h->n_out);
    if (rc != 0)
        return rc;
    c->weight_bytes += dwt_bytes(*w);
    size_t rows = h->n_out, nb = h->n_in / 32;
    const uint8_t *src = (const uint8_t *)h->data;
    if (h->type != GB_Q8_0 && h->type != GB_Q4_0)
        return ck(c, cudaMemcpy(w->q, h->data, h->row_bytes * rows, cudaMemcpyHostToDevice),
                  "cudaMemcpy(weights)");
    size_t blk = h->type == GB_Q8_0 ? 34 : 18, qb = blk - 2;
    uint8_t *q = (uint8_t *)malloc(rows * nb * qb);
    uint16_t *d = (uint16_t *)malloc(rows * nb * 2);
    if (q == NULL || d == NULL) {
        free(q);
        free(d);
        return -ENOMEM;
    }
    for (size_t b = 0; b < rows * nb; b++) {
        memcpy(&d[b], src + b * blk, 2);
        memcpy(q + b * qb, src + b * blk + 2, qb);
    }
    rc = ck(c, cudaMemcpy(w->q, q, rows * nb * qb, cudaMemcpyHostToDevice), "cudaMemcpy(quants)");
    if (rc == 0)
        rc =
            ck(c, cudaMemcpy(w->d, d, rows * nb * 2, cudaMemcpyHostToDevice), "cudaMemcpy(scales)");
    free(q);
    free(d);
    return rc;
}

int upload_vec(cuda_be *c, float **dst, const float *src, size_t n)
{
    int rc = dalloc(c, (void **)dst, n * sizeof(float), "cudaMalloc(vector)");
    return rc != 0 ? rc
                   : ck(c, cudaMemcpy(*dst, src, n * sizeof(float), cudaMemcpyHostToDevice),
                        "cudaMemcpy(vector)");
}

template <int TYPE> void launch_mv(const mvset &m, const float *x, int n, cudaStream_t st)
{
    dim3 grid(m.nblk[0] + m.nblk[1] + m.nblk[2]), block(32 * MV_ROWS);
    if (n == 1)
        k_matvec<TYPE, 1><<<grid, block, 0, st>>>(m, x, n);
    else if (n == 2)
        k_matvec<TYPE, 2><<<grid, block, 0, st>>>(m, x, n);
    else if (n <= 4)
        k_matvec<TYPE, 4><<<grid, block, 0, st>>>(m, x, n);
    else
        k_matvec<TYPE, 8><<<grid, block, 0, st>>>(m, x, n);
}

int matmul(cuda_be *c, const dwt &w, const float *x, int n, float *y);

// ys[i][n][n_out_i] = x[n][n_in] . W_i^T for count (<= 3) matrices with the same input.
int matmul_multi(cuda_be *c, const dwt *const *ws, const float *x, int n, float *const *ys,
                 int count)
{
    int same = 1;
    for (int i = 1; i < count; i++)
        same &= ws[i]->type == ws[0]->type && ws[i]->n_in == ws[0]->n_in;
    if (n > MATVEC_MAX || !same) {
        for (int i = 0; i < count; i++) {
            int rc = matmul(c, *ws[i], x, n, ys[i]);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    mvset m;
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < count; i++) {
        m.w[i] = *ws[i];
        m.y[i] = ys[i];
        m.nblk[i] = (int)((ws[i]->n_out + MV_ROWS - 1) / MV_ROWS);
    }
    switch (ws[0]->type) {
    case GB_F32:
        launch_mv<GB_F32>(m, x, n, c->st);
        break;
    case GB_F16:
        launch_mv<GB_F16>(m, x, n, c->st);
        break;
    case GB_BF16:
        launch_mv<GB_BF16>(m, x, n, c->st);
        break;
    case GB_Q8_0:
        launch_mv<GB_Q8_0>(m, x, n, c->st);
        break;
    default:
        launch_mv<GB_Q4_0>(m, x, n, c->st);
        break;
    }
    LAUNCH_CHECK(c, "matvec kernel");
    return 0;
}

// y[n][n_out] = x[n][n_in] . W^T
int matmul(cuda_be *c, const dwt &w, const float *x, int n, float *y)
{
    if (n <= MATVEC_MAX) {
        const dwt *ws[1] = {&w};
        float *ys[1] = {y};
        return matmul_multi(c, ws, x, n, ys, 1);
    }
    const float one = 1.0f, zero = 0.0f;
    if (w.type == GB_F32) // exact products for F32 models (the tiny model's CPU/GPU check)
        return ckb(c,
                   cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, w.n_out, n, w.n_in, &one,
                               (const float *)w.q, w.n_in, x, w.n_in, &zero, y, w.n_out),
                   "cublasSgemm");
    const __half *wh = w.type == GB_F16 ? (const __half *)w.q : w.h;
    if (wh == NULL) {
        k_dequant_half<<<grid_for((size_t)w.n_in * w.n_out), 256, 0, c->st>>>(w, c->wh);
        LAUNCH_CHECK(c, "dequant kernel");
        wh = c->wh;
    }
    k_to_half<<<grid_for((size_t)n * w.n_in), 256, 0, c->st>>>(x, c->xh, (size_t)n * w.n_in);
    LAUNCH_CHECK(c, "to_half kernel");
    return ckb(c,
               cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, w.n_out, n, w.n_in, &one, wh,
                            CUDA_R_16F, w.n_in, c->xh, CUDA_R_16F, w.n_in, &zero, y, CUDA_R_32F,
                            w.n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

// Queues every kernel of one step for n tokens, nw of them wanting logits (device inputs
// already copied). Pure kernel and cuBLAS work, so it can be captured into a CUDA graph.
int enqueue(cuda_be *c, int n, int nw)
{
    const gb_hparams *hp = &c->hp;
    gb_backend *b = &c->b;
    int dim = (int)hp->dim;
    int rc;
    k_embed<<<n, 256, 0, c->st>>>(c->emb, c->d_tok, c->x, dim);
    LAUNCH_CHECK(c, "embed kernel");
    size_t att_smem = att_smem_bytes(b->n_ctx, (int)hp->head_dim);
    k_rmsnorm<<<n, 256, 0, c->st>>>(c->x, c->L[0].attn_norm, c->xn, NULL, dim, hp->eps);
    LAUNCH_CHECK(c, "rmsnorm kernel");
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const dlayer *L = &c->L[l];
        const dwt *qkv[3] = {&L->wq, &L->wk, &L->wv};
        float *qkv_out[3] = {c->q, c->k, c->v};
        if ((rc = matmul_multi(c, qkv, c->xn, n, qkv_out, 3)))
            return rc;
        k_qkv_post<<<n, 128, 0, c->st>>>(c->q, c->k, c->v, L->bq, L->bk, L->bv, c->kc, c->vc,
                                         c->d_pos, c->d_seq, hp->n_head, hp->n_kv_head,
                                         hp->head_dim, hp->n_rot, hp->rope_base, hp->rope_scale,
                                         hp->rope_neox, l, hp->n_layer, b->n_ctx);
        LAUNCH_CHECK(c, "qkv kernel");
        k_attention<<<dim3(n, hp->n_head), ATT_THREADS, att_smem, c->st>>>(
            c->q, c->kc, c->vc, c->att, c->d_pos, c->d_seq, hp->n_head, hp->n_kv_head, hp->head_dim,
            l, hp->n_layer, b->n_ctx, 1.0f / sqrtf((float)hp->head_dim));
        LAUNCH_CHECK(c, "attention kernel");
        if ((rc = matmul(c, L->wo, c->att, n, c->o)))
            return rc;
        k_add_rmsnorm<<<n, 256, 0, c->st>>>(c->x, c->o, L->ffn_norm, c->xn, dim, hp->eps);
        LAUNCH_CHECK(c, "add+rmsnorm kernel");
        const dwt *gu[2] = {&L->wg, &L->wu};
        float *gu_out[2] = {c->g, c->u};
        if ((rc = matmul_multi(c, gu, c->xn, n, gu_out, 2)))
            return rc;
        size_t nf = (size_t)n * hp->n_ff;
        k_swiglu<<<grid_for(nf), 256, 0, c->st>>>(c->g, c->u, nf);
        LAUNCH_CHECK(c, "swiglu kernel");
        if ((rc = matmul(c, L->wd, c->g, n, c->o)))
            return rc;
        if (l + 1 < hp->n_layer) { /* the residual add fused with the next layer's norm */
            k_add_rmsnorm<<<n, 256, 0, c->st>>>(c->x, c->o, c->L[l + 1].attn_norm, c->xn, dim,
                                                hp->eps);
            LAUNCH_CHECK(c, "add+rmsnorm kernel");
        } else {
            k_add<<<grid_for((size_t)n * dim), 256, 0, c->st>>>(c->x, c->o, (size_t)n * dim);
            LAUNCH_CHECK(c, "add kernel");
        }
    }
    if (nw > 0) {
        k_rmsnorm<<<nw, 256, 0, c->st>>>(c->x, c->out_norm, c->xn, c->d_widx, dim, hp->eps);
        LAUNCH_CHECK(c, "rmsnorm kernel");
        if ((rc = matmul(c, c->out, c->xn, nw, c->logits)))
            return rc;
    }
    return 0;
}

// Decode steps (n <= MATVEC_MAX) replay a CUDA graph per (n, nw): hundreds of small launches
// per token would otherwise cost as much as reading the weights of a small model.
int run_graph(cuda_be *c, int n, int nw)
{
    cudaGraphExec_t *ge = &c->graphs[n][nw];
    if (*ge == NULL) {
        cudaGraph_t g = NULL;
        int rc = ck(c, cudaStreamBeginCapture(c->st, cudaStreamCaptureModeThreadLocal),
                    "cudaStreamBeginCapture");
        if (rc != 0)
            return rc;
        int erc = enqueue(c, n, nw);
        rc = ck(c, cudaStreamEndCapture(c->st, &g), "cudaStreamEndCapture");
        if (erc != 0 || rc != 0) {
            if (g != NULL)
                (void)cudaGraphDestroy(g);
            return erc != 0 ? erc : rc;
        }
        rc = ck(c, cudaGraphInstantiateWithFlags(ge, g, 0), "cudaGraphInstantiate");
        (void)cudaGraphDestroy(g);
        if (rc != 0) {
            *ge = NULL;
            return rc;
        }
    }
    return ck(c, cudaGraphLaunch(*ge, c->st), "cudaGraphLaunch");
}

int forward(gb_backend *b, const gb_batch *bt, float *logits)
{
    cuda_be *c = (cuda_be *)b;
    const gb_hparams *hp = &c->hp;
    int n = bt->n, rc;
    if (n <= 0 || n > b->max_tokens)
        return -E2BIG;
    int nw = 0;
    for (int t = 0; t < n; t++) {
        if (bt->tok[t] < 0 || (uint32_t)bt->tok[t] >= hp->n_vocab || bt->pos[t] < 0 ||
            bt->pos[t] >= b->n_ctx || bt->seq[t] < 0 || bt->seq[t] >= b->n_slots)
            return -ERANGE;
        if (bt->want[t])
            c->h_widx[nw++] = t;
    }
    c->copies += 4;
    c->copy_bytes += (uint64_t)(3 * n + (nw ? nw : 1)) * 4;
    if ((rc = ck(c, cudaMemcpyAsync(c->d_tok, bt->tok, n * 4, cudaMemcpyHostToDevice, c->st),
                 "copy tokens")) ||
        (rc = ck(c, cudaMemcpyAsync(c->d_pos, bt->pos, n * 4, cudaMemcpyHostToDevice, c->st),
                 "copy positions")) ||
        (rc = ck(c, cudaMemcpyAsync(c->d_seq, bt->seq, n * 4, cudaMemcpyHostToDevice, c->st),
                 "copy sequences")) ||
        (rc = ck(c,
                 cudaMemcpyAsync(c->d_widx, c->h_widx, (nw ? nw : 1) * 4, cudaMemcpyHostToDevice,
                                 c->st),
                 "copy wanted")))
        return rc;
    if (n <= MATVEC_MAX && c->use_graphs) {
        /* the host arrays must not change before the copies above are done */
        if ((rc = ck(c, cudaStreamSynchronize(c->st), "copy batch")) != 0)
            return rc;
        rc = run_graph(c, n, nw);
    } else {
        rc = enqueue(c, n, nw);
    }
    if (rc != 0)
        return rc;
    if (nw > 0 && logits != NULL) {
        c->copies++;
        c->copy_bytes += (uint64_t)nw * hp->n_vocab * 4;
    }
    if (nw > 0 && logits != NULL &&
        (rc = ck(c,
                 cudaMemcpyAsync(logits, c->logits, (size_t)nw * hp->n_vocab * 4,
                                 cudaMemcpyDeviceToHost, c->st),
                 "copy logits")))
        return rc;
    return ck(c, cudaStreamSynchronize(c->st), "forward");
}

void destroy(gb_backend *b)
{
    cuda_be *c = (cuda_be *)b;
    if (c == NULL)
        return;
    if (c->st != NULL)
        (void)cudaStreamSynchronize(c->st);
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < 9; j++)
            if (c->graphs[i][j] != NULL)
                (void)cudaGraphExecDestroy(c->graphs[i][j]);
    for (size_t i = 0; i < c->n_allocs; i++)
        (void)cudaFree(c->allocs[i]);
    if (c->blas != NULL)
        (void)cublasDestroy(c->blas);
    if (c->st != NULL)
        (void)cudaStreamDestroy(c->st);
    free(c->allocs);
    free(c->L);
    free(c->h_widx);
    free(c);
}

// Device, handles and every buffer that does not hold weights.
int setup(cuda_be *c, const gb_hparams *hp, int n_slots, int n_ctx, int max_tokens)
{
    int count = 0, rc;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        fail(c, "no usable GPU", e != cudaSuccess ? cudaGetErrorString(e) : "no device");
        return -ENODEV;
    }
    cudaDeviceProp prop;
    if ((rc = ck(c, cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties")))
        return rc;
    if (prop.major < 8) {
        fail(c, "unsupported GPU", "compute capability 8.0 or newer is needed (sm_80, sm_90)");
        return -ENODEV;
    }
    if ((rc = ck(c, cudaSetDevice(0), "cudaSetDevice")) ||
        (rc =
             ck(c, cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking), "cudaStreamCreate")) ||
        (rc = ckb(c, cublasCreate(&c->blas), "cublasCreate")) ||
        (rc = ckb(c, cublasSetStream(c->blas, c->st), "cublasSetStream")))
        return rc;
    snprintf(c->b.device, sizeof(c->b.device), "cuda: %.100s (sm_%d%d, %.0f GiB)", prop.name,
             prop.major, prop.minor, (double)prop.totalGlobalMem / (1 << 30));
    c->hp = *hp;
    const char *g = getenv("GB_CUDA_GRAPHS");
    c->use_graphs = g == NULL || strcmp(g, "0") != 0;
    c->b.kind = "cuda";
    c->b.n_slots = n_slots;
    c->b.n_ctx = n_ctx;
    c->b.max_tokens = max_tokens;
    c->b.forward = forward;
    c->b.free = destroy;
    size_t T = (size_t)max_tokens, kvd = (size_t)hp->n_kv_head * hp->head_dim;
    size_t kv = (size_t)n_slots * hp->n_layer * (size_t)n_ctx * kvd * sizeof(float);
    size_t att_smem = att_smem_bytes(n_ctx, (int)hp->head_dim);
    if (att_smem > 48 * 1024 &&
        (rc = ck(c,
                 cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      (int)att_smem),
                 "attention shared memory (lower --ctx)")))
        return rc;
    c->h_widx = (int32_t *)malloc(T * sizeof(int32_t));
    if (c->h_widx == NULL)
        return -ENOMEM;
    size_t big = hp->dim > hp->n_ff ? hp->dim : hp->n_ff;
    if ((rc = dalloc(c, (void **)&c->kc, kv, "cudaMalloc(KV cache)")) ||
        (rc = dalloc(c, (void **)&c->vc, kv, "cudaMalloc(KV cache)")) ||
        (rc = dalloc(c, (void **)&c->x, T * hp->dim * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->xn, T * hp->dim * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->q, T * hp->dim * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->att, T * hp->dim * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->o, T * hp->dim * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->k, T * kvd * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->v, T * kvd * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->g, T * hp->n_ff * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->u, T * hp->n_ff * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->xh, T * big * 2, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->logits, T * hp->n_vocab * 4, "cudaMalloc(logits)")) ||
        (rc = dalloc(c, (void **)&c->d_tok, T * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->d_pos, T * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->d_seq, T * 4, "cudaMalloc")) ||
        (rc = dalloc(c, (void **)&c->d_widx, T * 4, "cudaMalloc")))
        return rc;
    c->L = (dlayer *)calloc(hp->n_layer, sizeof(dlayer));
    return c->L == NULL ? -ENOMEM : 0;
}

// Products over many tokens (prefill, large batches) run on tensor cores in F16. Quantised
// matrices get an F16 copy made once here when the GPU has room for all of them (then a
// step reads 2 bytes per weight instead of dequantising 1 byte into 2 and reading those
// again); otherwise one scratch as large as the largest matrix is dequantised per product.
int finish_setup(cuda_be *c)
{
    dwt *ws[7 * 1024 + 1];
    size_t nws = 0, need = 0, free_b = 0, total_b = 0;
    if (c->hp.n_layer > 1024)
        return -E2BIG;
    for (uint32_t l = 0; l < c->hp.n_layer; l++) {
        dlayer *L = &c->L[l];
        dwt *m[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
        for (int i = 0; i < 7; i++)
            ws[nws++] = m[i];
    }
    ws[nws++] = &c->out;
    for (size_t i = 0; i < nws; i++)
        if (ws[i]->type != GB_F16 && ws[i]->type != GB_F32)
            need += (size_t)ws[i]->n_in * ws[i]->n_out * sizeof(__half);
    int rc = ck(c, cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    if (rc != 0)
        return rc;
    const char *env = getenv("GB_CUDA_F16_COPIES");
    int want = env == NULL || strcmp(env, "0") != 0;
    if (need == 0 || !want || free_b < need + ((size_t)2 << 30))
        return need == 0 ? 0
                         : dalloc(c, (void **)&c->wh, c->wh_elems * sizeof(__half),
                                  "cudaMalloc(dequant scratch)");
    for (size_t i = 0; i < nws; i++) {
        dwt *w = ws[i];
        if (w->type == GB_F16 || w->type == GB_F32)
            continue;
        if ((rc = dalloc(c, (void **)&w->h, (size_t)w->n_in * w->n_out * sizeof(__half),
                         "cudaMalloc(F16 copy)")) != 0)
            return rc;
        k_dequant_half<<<grid_for((size_t)w->n_in * w->n_out), 256, 0, c->st>>>(*w, w->h);
        LAUNCH_CHECK(c, "dequant kernel");
    }
    return ck(c, cudaStreamSynchronize(c->st), "F16 copies");
}

} // namespace

extern "C" int gb_cuda_new(const struct gb_model *m, int n_slots, int n_ctx, int max_tokens,
                           struct gb_backend **out, char *err, size_t errlen)
{
    cuda_be *c = (cuda_be *)calloc(1, sizeof(cuda_be));
    const gb_hparams *hp = &m->hp;
    int rc;
    *out = NULL;
    if (c == NULL)
        return -ENOMEM;
    c->err = err;
    c->errlen = errlen;
    if ((rc = setup(c, hp, n_slots, n_ctx, max_tokens)) != 0)
        goto out;
    if ((rc = upload_dwt(c, &c->emb, &m->tok_embd)) ||
        (rc = upload_vec(c, &c->out_norm, m->out_norm, hp->dim)))
        goto out;
    c->weight_bytes -= dwt_bytes(c->emb); /* a decode step reads only a row of it */
    if (m->output.data == m->tok_embd.data) {
        c->out = c->emb;
        c->weight_bytes += dwt_bytes(c->out);
    } else if ((rc = upload_dwt(c, &c->out, &m->output)) != 0) {
        goto out;
    }
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const gb_layer *H = &m->layers[l];
        dlayer *L = &c->L[l];
        size_t kvd = (size_t)hp->n_kv_head * hp->head_dim;
        if ((rc = upload_vec(c, &L->attn_norm, H->attn_norm, hp->dim)) ||
            (rc = upload_vec(c, &L->ffn_norm, H->ffn_norm, hp->dim)) ||
            (rc = upload_dwt(c, &L->wq, &H->wq)) || (rc = upload_dwt(c, &L->wk, &H->wk)) ||
            (rc = upload_dwt(c, &L->wv, &H->wv)) || (rc = upload_dwt(c, &L->wo, &H->wo)) ||
            (rc = upload_dwt(c, &L->wg, &H->w_gate)) || (rc = upload_dwt(c, &L->wu, &H->w_up)) ||
            (rc = upload_dwt(c, &L->wd, &H->w_down)))
            goto out;
        if (H->bq != NULL &&
            ((rc = upload_vec(c, &L->bq, H->bq, hp->dim)) ||
             (rc = upload_vec(c, &L->bk, H->bk, kvd)) || (rc = upload_vec(c, &L->bv, H->bv, kvd))))
            goto out;
    }
    if ((rc = finish_setup(c)) != 0)
        goto out;
    *out = &c->b;
    return 0;
out:
    destroy(&c->b);
    return rc;
}

extern "C" int gb_cuda_new_synthetic(const struct gb_hparams *hp, uint32_t wtype, int n_slots,
                                     int n_ctx, int max_tokens, struct gb_backend **out, char *err,
                                     size_t errlen)
{
    cuda_be *c = (cuda_be *)calloc(1, sizeof(cuda_be));
    uint64_t salt = 1;
    int rc;
    *out = NULL;
    if (c == NULL)
        return -ENOMEM;
    c->err = err;
    c->errlen = errlen;
    if ((rc = setup(c, hp, n_slots, n_ctx, max_tokens)) != 0)
        goto out;
    {
        size_t kvd = (size_t)hp->n_kv_head * hp->head_dim;
        struct mat {
            dwt *w;
            uint64_t n_in, n_out;
        };
        float *ones = NULL;
        if ((rc = dalloc(c, (void **)&ones, hp->dim * 4, "cudaMalloc")) != 0)
            goto out;
        k_fill_const<<<grid_for(hp->dim), 256, 0, c->st>>>(ones, 1.0f, hp->dim);
        if ((rc = ck(c, cudaGetLastError(), "fill kernel")) != 0)
            goto out;
        c->out_norm = ones;
        for (uint32_t l = 0; l <= hp->n_layer; l++) {
            mat ms[7];
            int nm = 0;
            if (l == hp->n_layer) {
                ms[nm++] = {&c->emb, hp->dim, hp->n_vocab};
                ms[nm++] = {&c->out, hp->dim, hp->n_vocab};
            } else {
                dlayer *L = &c->L[l];
                L->attn_norm = L->ffn_norm = ones;
                ms[nm++] = {&L->wq, hp->dim, hp->dim};
                ms[nm++] = {&L->wk, hp->dim, kvd};
                ms[nm++] = {&L->wv, hp->dim, kvd};
                ms[nm++] = {&L->wo, hp->dim, hp->dim};
                ms[nm++] = {&L->wg, hp->dim, hp->n_ff};
                ms[nm++] = {&L->wu, hp->dim, hp->n_ff};
                ms[nm++] = {&L->wd, hp->n_ff, hp->dim};
            }
            for (int i = 0; i < nm; i++) {
                if ((rc = alloc_dwt(c, ms[i].w, wtype, ms[i].n_in, ms[i].n_out)) != 0)
                    goto out;
                float scale = ms[i].w == &c->emb ? 1.0f : 1.0f / sqrtf((float)ms[i].n_in);
                k_fill<<<grid_for(ms[i].n_in * ms[i].n_out), 256, 0, c->st>>>(*ms[i].w, scale,
                                                                              salt++);
                if ((rc = ck(c, cudaGetLastError(), "fill kernel")) != 0)
                    goto out;
                if (ms[i].w != &c->emb)
                    c->weight_bytes += dwt_bytes(*ms[i].w);
            }
        }
    }
    if ((rc = finish_setup(c)) != 0 ||
        (rc = ck(c, cudaStreamSynchronize(c->st), "synthetic weights")) != 0)
        goto out;
    *out = &c->b;
    return 0;
out:
    destroy(&c->b);
    return rc;
}

extern "C" uint64_t gb_cuda_weight_bytes(const struct gb_backend *b)
{
    return b != NULL && strcmp(b->kind, "cuda") == 0 ? ((const cuda_be *)b)->weight_bytes : 0;
}

extern "C" uint64_t gb_cuda_copies(const struct gb_backend *b, uint64_t *bytes)
{
    const cuda_be *c = b != NULL && strcmp(b->kind, "cuda") == 0 ? (const cuda_be *)b : NULL;
    *bytes = c != NULL ? c->copy_bytes : 0;
    return c != NULL ? c->copies : 0;
}

extern "C" double gb_cuda_read_bandwidth(char *err, size_t errlen)
{
    cuda_be c = {};
    size_t bytes = (size_t)4 << 30;
    void *buf = NULL;
    unsigned *sink = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    float ms = 0;
    double gbs = -1;
    int sms = 0;
    c.err = err;
    c.errlen = errlen;
    if (ck(&c, cudaMalloc(&buf, bytes), "cudaMalloc(bandwidth buffer)") ||
        ck(&c, cudaMalloc((void **)&sink, 4), "cudaMalloc") ||
        ck(&c, cudaMemset(buf, 1, bytes), "cudaMemset") ||
        ck(&c, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "attributes") ||
        ck(&c, cudaEventCreate(&e0), "cudaEventCreate") ||
        ck(&c, cudaEventCreate(&e1), "cudaEventCreate"))
        goto out;
    for (int rep = 0; rep < 6; rep++) { // the first run warms up
        if (ck(&c, cudaEventRecord(e0), "cudaEventRecord"))
            goto out;
        k_read<<<sms * 8, 512>>>((const uint4 *)buf, bytes / 16, sink);
        if (ck(&c, cudaGetLastError(), "read kernel") || ck(&c, cudaEventRecord(e1), "record") ||
            ck(&c, cudaEventSynchronize(e1), "sync") ||
            ck(&c, cudaEventElapsedTime(&ms, e0, e1), "elapsed"))
            goto out;
        double v = (double)bytes / (ms * 1e-3) / 1e9;
        if (rep > 0 && v > gbs)
            gbs = v;
    }
out:
    if (e0 != NULL)
        (void)cudaEventDestroy(e0);
    if (e1 != NULL)
        (void)cudaEventDestroy(e1);
    (void)cudaFree(buf);
    (void)cudaFree(sink);
    return gbs;
}
