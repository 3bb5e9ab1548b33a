/*
 * libFuzzer target: the PCS collateral readers on arbitrary bytes, before any signature:
 * sorting endorsement blobs (cg_tdx_collateral_from_blobs) and applying TCB info and QE
 * identity JSON to a quote (cg__tdx_apply_collateral). The input is the TCB info text, a
 * 0xFF byte, then the QE identity text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/tdx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cg_tdx_collateral col;
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
    struct cg_verdict v = {{0}, {0}, {0}};
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    const uint8_t *blobs[1] = {buf};
    (void)cg_tdx_collateral_from_blobs(blobs, &size, 1, &col, &v);

    const uint8_t *sep = memchr(buf, 0xFF, size);
    size_t tcb_len = sep ? (size_t)(sep - buf) : size;
    const char *qe = sep ? (const char *)sep + 1 : "";
    size_t qe_len = sep ? size - tcb_len - 1 : 0;
    memset(&q, 0, sizeof(q));
    q.tee_tcb_svn[0] = 5;
    q.tee_tcb_svn[1] = 3;
    q.pck.pcesvn = 11;
    (void)cg__tdx_apply_collateral((const char *)buf, tcb_len, qe, qe_len, &q, 1761955200, &st, &v);
    free(buf);
    return 0;
}
