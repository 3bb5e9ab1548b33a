/*
 * libFuzzer target: the GPU evidence bundle of the RA-TLS claims (JSON CMW collection,
 * cg_gpuev_decode) and its appraisal (cg_gpuev_verify) at a fixed time under a policy that
 * admits the pinned NVIDIA root only, RIMs and OCSP checked when present. Decoding either
 * fails naming the check or yields bounded content; appraisal never crashes or leaks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/gpuev.h"

#define AT 1717200000 /* 2024-06-01T00:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cg_gpuev e;
    static struct cg_gpuev_result res[CG_GPUEV_MAX_GPUS];
    struct cg_verdict v = {{0}, {0}, {0}};
    if (cg_gpuev_decode(data, size, &e, &v) != 0) {
        if (strncmp(v.check, "gpu.", 4) != 0)
            abort();
        return 0;
    }
    if (e.n_gpus == 0 || e.n_gpus > CG_GPUEV_MAX_GPUS || e.n_rims > CG_GPUEV_MAX_RIMS ||
        e.n_ocsp > CG_OCSP_MAX_RESPONSES)
        abort();
    struct cg_gpu_policy p;
    memset(&p, 0, sizeof(p));
    p.present = p.required = 1;
    p.allow_cc_off = p.allow_devtools = 1;
    uint8_t nonce[32];
    if (e.gpus[0].report_len >= 36)
        memcpy(nonce, e.gpus[0].report + 4, 32);
    else
        memset(nonce, 0, 32);
    size_t n = 0;
    memset(&v, 0, sizeof(v));
    if (cg_gpuev_verify(&e, &p, nonce, AT, res, &n, &v) != 0 && v.check[0] == '\0')
        abort();
    cg_gpuev_clear(&e);
    return 0;
}
