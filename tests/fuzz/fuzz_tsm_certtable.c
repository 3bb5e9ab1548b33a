/*
 * libFuzzer target: the SEV-SNP certificate table parser (cg_snp_certtable_parse), which
 * reads what the host hands the guest in auxblob or SNP_GET_EXT_REPORT. Whatever it accepts
 * must lie inside the blob, after the table, without overlaps; every rejection is named.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/tsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cg_snp_certtable t;
    struct cg_verdict v = {{0}, {0}, {0}};
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    if (cg_snp_certtable_parse(buf, size, &t, &v) == 0) {
        size_t table_end = (t.n_entries + 1) * 24;
        if (t.n_entries > CG_SNP_CERTTABLE_MAX_ENTRIES || table_end > size)
            abort();
        for (int i = 0; i < CG_SNP_CERT_KINDS; i++) {
            if (!t.present[i])
                continue;
            if (t.len[i] == 0 || t.off[i] < table_end || t.off[i] > size ||
                t.len[i] > size - t.off[i])
                abort();
            for (int j = 0; j < i; j++)
                if (t.present[j] && t.off[i] < t.off[j] + t.len[j] &&
                    t.off[j] < t.off[i] + t.len[i])
                    abort();
            volatile uint8_t sink = 0;
            for (size_t k = 0; k < t.len[i]; k++)
                sink ^= buf[t.off[i] + k];
            (void)sink;
        }
    } else if (v.check[0] == '\0') {
        abort();
    }
    free(buf);
    return 0;
}
