#ifndef GB_BACKEND_H
#define GB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct gb_model;

/*
 * One forward step over a batch of tokens from several sequences (continuous batching).
 * Token i of sequence slot seq[i] sits at position pos[i]; a sequence's tokens in a batch
 * are in increasing, consecutive positions, and its KV cache rows below pos[first] are
 * those the earlier steps wrote. Logits are produced, in batch order, for the tokens
 * with want[i] set.
 */
struct gb_batch {
    int n;
    const int32_t *tok;
    const int32_t *pos;
    const int32_t *seq;
    const uint8_t *want;
};

struct gb_backend {
    const char *kind;               /* "cpu" or "cuda" */
    char device[160];               /* human-readable device description */
    int n_slots, n_ctx, max_tokens; /* sequences, positions per sequence, tokens per step */
    /* Runs the batch; logits: one row of n_vocab floats per wanted token. 0 or an error. */
    int (*forward)(struct gb_backend *b, const struct gb_batch *batch, float *logits);
    void (*free)(struct gb_backend *b);
};

/*
 * The portable CPU path: n_threads workers (0: all cores), F32 KV cache for n_slots
 * sequences of n_ctx positions, at most max_tokens tokens per step. Borrows m.
 */
int gb_cpu_new(const struct gb_model *m, int n_slots, int n_ctx, int max_tokens, int n_threads,
               struct gb_backend **out);

/*
 * The CUDA path (weights and KV cache on the GPU, cuBLAS for large products). Returns
 * -ENODEV with a reason in err when CUDA is not built in or no usable GPU is present.
 */
int gb_cuda_new(const struct gb_model *m, int n_slots, int n_ctx, int max_tokens,
                struct gb_backend **out, char *err, size_t errlen);

struct gb_hparams;

/*
 * The CUDA path for a model of shape hp whose weight matrices (type wtype) are random
 * numbers generated on the GPU: benchmarks of real model shapes without their files.
 */
int gb_cuda_new_synthetic(const struct gb_hparams *hp, uint32_t wtype, int n_slots, int n_ctx,
                          int max_tokens, struct gb_backend **out, char *err, size_t errlen);

/* Bytes of weight matrices a CUDA backend holds (what one decode step reads); 0 for others. */
uint64_t gb_cuda_weight_bytes(const struct gb_backend *b);

/*
 * Host<->device copies a CUDA backend's forward() has made so far (each one a crossing that
 * confidential computing makes expensive), their bytes in *bytes; 0 for others.
 */
uint64_t gb_cuda_copies(const struct gb_backend *b, uint64_t *bytes);

/* Measured read bandwidth of GPU memory in GB/s (a streaming read kernel); < 0 on error. */
double gb_cuda_read_bandwidth(char *err, size_t errlen);

static inline void gb_backend_free(struct gb_backend *b)
{
    if (b != NULL)
        b->free(b);
}

#endif
