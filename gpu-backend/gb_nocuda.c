/* gb_cuda_new when the CUDA path is not built in (no nvcc, or a sanitizer build). */
#include "gb_backend.h"

#include <errno.h>
#include <stdio.h>

#ifndef GB_HAVE_CUDA
int gb_cuda_new(const struct gb_model *m, int n_slots, int n_ctx, int max_tokens,
                struct gb_backend **out, char *err, size_t errlen)
{
    (void)m, (void)n_slots, (void)n_ctx, (void)max_tokens;
    *out = NULL;
    snprintf(err, errlen, "this build has no CUDA support");
    return -ENODEV;
}

int gb_cuda_new_synthetic(const struct gb_hparams *hp, uint32_t wtype, int n_slots, int n_ctx,
                          int max_tokens, struct gb_backend **out, char *err, size_t errlen)
{
    (void)hp, (void)wtype, (void)n_slots, (void)n_ctx, (void)max_tokens;
    *out = NULL;
    snprintf(err, errlen, "this build has no CUDA support");
    return -ENODEV;
}

uint64_t gb_cuda_weight_bytes(const struct gb_backend *b)
{
    (void)b;
    return 0;
}

uint64_t gb_cuda_copies(const struct gb_backend *b, uint64_t *bytes)
{
    (void)b;
    *bytes = 0;
    return 0;
}

double gb_cuda_read_bandwidth(char *err, size_t errlen)
{
    snprintf(err, errlen, "this build has no CUDA support");
    return -1;
}
#else
typedef int gb_nocuda_unused; /* the CUDA path is in gb_cuda.cu */
#endif
