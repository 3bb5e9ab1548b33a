/*
 * libFuzzer target: the SEV-SNP report parser (cg_snp_report_parse) on arbitrary bytes. It
 * must never read outside the input, accept only CG_SNP_REPORT_SIZE bytes, name every
 * rejection, and what it accepts must be every byte of the input: writing the parsed report
 * gives the input back (each byte is a field or a reserved byte checked to be zero).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/snp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cg_snp_report r;
    struct cg_verdict v = {{0}, {0}, {0}};
    /* A private copy of exactly size bytes, so that any overread is caught. */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    if (cg_snp_report_parse(buf, size, &r, &v) == 0) {
        uint8_t out[CG_SNP_REPORT_SIZE];
        if (size != CG_SNP_REPORT_SIZE)
            abort();
        cg_snp_report_write(&r, out);
        if (memcmp(out, buf, CG_SNP_REPORT_SIZE) != 0)
            abort();
    } else if (v.check[0] == '\0') {
        abort(); /* every rejection names its check */
    }
    free(buf);
    return 0;
}
