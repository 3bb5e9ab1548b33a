#include "ccgate/evidence.h"

#include <stdlib.h>
#include <string.h>

void cg_evidence_clear(struct cg_evidence *e)
{
    free(e->evidence);
    for (size_t i = 0; i < CG_EVIDENCE_MAX_CERTS; i++)
        free(e->certs[i]);
    memset(e, 0, sizeof(*e));
}
