/*
 * libFuzzer target: the NVIDIA SPDM GET_MEASUREMENTS request || response parser
 * (cg_spdm_parse). It must never read outside the input, name every rejection, and what it
 * accepts must be consistent: the signature lies inside the input right after the signed
 * part, only zero padding follows, and every block index is unique and found again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/spdm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cg_spdm_report r;
    struct cg_verdict v = {{0}, {0}, {0}};
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    if (cg_spdm_parse(buf, size, &r, &v) == 0) {
        if (r.signed_len + CG_SPDM_SIG_LEN > size ||
            size - r.signed_len - CG_SPDM_SIG_LEN > CG_SPDM_MAX_PADDING ||
            memcmp(r.signature, buf + r.signed_len, CG_SPDM_SIG_LEN) != 0 ||
            memcmp(r.nonce, buf + 4, CG_SPDM_NONCE_LEN) != 0)
            abort();
        for (size_t i = r.signed_len + CG_SPDM_SIG_LEN; i < size; i++)
            if (buf[i] != 0)
                abort();
        for (size_t i = 0; i < r.n_blocks; i++)
            if (cg_spdm_block(&r, r.blocks[i].index) != &r.blocks[i] ||
                r.blocks[i].len > CG_SPDM_VALUE_MAX)
                abort();
    } else if (v.check[0] == '\0' || strncmp(v.check, "gpu.spdm.", 9) != 0) {
        abort(); /* every rejection names its field */
    }
    free(buf);
    return 0;
}
