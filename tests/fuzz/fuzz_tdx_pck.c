/*
 * libFuzzer target: the PCK certificate's SGX extension (1.2.840.113741.1.13.1), DER that
 * tdx.c walks by hand (cg__tdx_pck_extension_parse). It must never read outside the input;
 * what it accepts has each required member.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/tdx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cg_tdx_pck_info pck;
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    memset(&pck, 0, sizeof(pck));
    (void)cg__tdx_pck_extension_parse(buf, size, &pck);
    free(buf);
    return 0;
}
