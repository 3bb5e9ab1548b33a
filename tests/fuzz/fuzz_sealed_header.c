/*
 * libFuzzer target: the sealed-file header parser (cg_seal_header_parse) and, for a header
 * that parses, the keyed checks (cg_unseal_begin) with a fixed key: no input may crash,
 * and a parsed header's sizes must add up.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/sealed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[CG_SEAL_KEY_LEN] = {7};
    struct cg_seal_header h;
    struct cg_verdict v;
    if (cg_seal_header_parse(data, size, &h, &v) != 0) {
        if (v.check[0] == '\0')
            abort(); /* every rejection names its field */
        return 0;
    }
    if (h.header_len > size || h.header_len > CG_SEAL_HEADER_MAX || h.n_chunks == 0 ||
        h.sealed_len < h.plain_len + h.header_len)
        abort();
    if (size >= h.header_len + CG_SEAL_TAG_LEN) {
        struct cg_unseal *u = NULL;
        if (cg_unseal_begin(&h, data, key, 0, &u, &v) == 0)
            cg_unseal_free(u);
    }
    return 0;
}
