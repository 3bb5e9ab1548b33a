/*
 * libFuzzer target: the policy parser (cg_policy_parse, with its "tdx" section through
 * cg_tdx_policy_parse) on arbitrary bytes. Every rejection must say why, and an accepted
 * policy must accept some evidence (a CPU TEE, or GPU evidence alone for `ccgate verify gpu
 * --policy`) and respect its list limits.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cg_policy p;
    char err[256];
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    int rc = cg_policy_parse(buf, size, &p, err, sizeof(err));
    if (rc == 0) {
        if (!p.sim.allow && !p.snp.present && !p.tdx.present && !p.gpu.present)
            abort();
        if (p.sim.allow && !p.sim.has_root)
            abort();
        if (p.snp.n_measurements > CG_POLICY_MAX_MEASUREMENTS ||
            p.tdx.mrtd.n > CG_TDX_POLICY_MAX_VALUES)
            abort();
    } else if (rc != CG_ECONFIG || err[0] == '\0') {
        abort();
    }
    free(buf);
    return 0;
}
