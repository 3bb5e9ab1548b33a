/*
 * libFuzzer target: the TDX quote parser (cg_tdx_quote_parse) on arbitrary bytes. It must
 * never read outside the input, and the spans it returns must lie inside it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/tdx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cg_tdx_quote q;
    struct cg_verdict v = {{0}, {0}, {0}};
    /* A private copy of exactly size bytes, so that any overread is caught. */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    if (cg_tdx_quote_parse(buf, size, &q, &v) == 0) {
        const uint8_t *end = buf + size;
        if (q.qe_auth < buf || q.qe_auth + q.qe_auth_len > end ||
            (const uint8_t *)q.pck_chain < buf ||
            (const uint8_t *)q.pck_chain + q.pck_chain_len > end || q.signed_len > size)
            abort();
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < q.qe_auth_len; i++)
            sink ^= q.qe_auth[i];
        for (size_t i = 0; i < q.pck_chain_len; i++)
            sink ^= (uint8_t)q.pck_chain[i];
        (void)sink;
    } else if (v.check[0] == '\0') {
        abort(); /* every rejection names its check */
    }
    free(buf);
    return 0;
}
