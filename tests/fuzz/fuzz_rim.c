/*
 * libFuzzer target: NVIDIA RIMs (SWID XML with an enveloped XML-DSig), parsed without trust
 * (cg_rim_parse) and verified to the pinned RIM root at a fixed time inside the nvtrust test
 * RIMs' validity (cg_rim_verify, libxml2 + xmlsec, no stub). Every rejection is named; an
 * accepted RIM has bounded, sane content; verify never accepts what parse rejects.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/rim.h"

#define AT 1717200000 /* 2024-06-01T00:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rim(const struct cg_rim *r)
{
    if (r->n == 0 || r->n > CG_RIM_MAX_MEASUREMENTS || r->version[sizeof(r->version) - 1] != 0)
        abort();
    for (size_t i = 0; i < r->n; i++)
        if (r->m[i].index > 255 || r->m[i].n_alts == 0 || r->m[i].n_alts > CG_RIM_MAX_ALTERNATIVES)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cg_rim r;
    struct cg_verdict v = {{0}, {0}, {0}};
    int parsed = cg_rim_parse(data, size, &r, &v);
    if (parsed == 0)
        check_rim(&r);
    else if (strncmp(v.check, "gpu.rim", 7) != 0)
        abort();
    cg_rim_clear(&r);
    memset(&v, 0, sizeof(v));
    if (cg_rim_verify(data, size, NULL, AT, &r, &v) == 0) {
        if (parsed != 0 || r.n_chain == 0)
            abort();
        check_rim(&r);
    } else if (strncmp(v.check, "gpu.rim", 7) != 0) {
        abort();
    }
    cg_rim_clear(&r);
    return 0;
}
