/*
 * libFuzzer target: the VCEK/VLEK extensions (productName, the SPLs, hwID) as cg_snp_verify
 * checks them once the chain verified (cg__snp_vcek_check). Input: a 1184-byte SEV-SNP
 * report followed by the leaf certificate's DER; the report must parse. Every rejection is
 * named.
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
    if (size < CG_SNP_REPORT_SIZE || cg_snp_report_parse(data, CG_SNP_REPORT_SIZE, &r, &v) != 0)
        return 0;
    size_t n = size - CG_SNP_REPORT_SIZE;
    uint8_t *der = malloc(n ? n : 1);
    if (der == NULL)
        return 0;
    memcpy(der, data + CG_SNP_REPORT_SIZE, n);
    memset(&v, 0, sizeof(v));
    if (cg__snp_vcek_check(der, n, &r, &v) != 0 && strncmp(v.check, "snp.", 4) != 0)
        abort();
    free(der);
    return 0;
}
