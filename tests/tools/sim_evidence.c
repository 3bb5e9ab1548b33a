/*
 * sim-evidence: evidence of the simulated TEE for chosen report data, in the key broker
 * client's encoding (cg_kbc_evidence_json), so that an independent RCAR client written in
 * Python (tests/integration/rcar_client.py) can attest to ccgate-kbs. The measurement is
 * SHA-384 of MEASURED_FILE. Never part of a deployment.
 *
 *   sim-evidence STATE_DIR MEASURED_FILE REPORT_DATA_HEX(128 digits)
 */
#include <stdio.h>

#include "ccgate/err.h"
#include "ccgate/kbc.h"
#include "ccgate/sim.h"

int main(int argc, char **argv)
{
    uint8_t rd[CG_REPORT_DATA_LEN];
    struct cg_provider *p;
    struct cg_evidence ev = {0};
    const char *tee;
    if (argc != 4 || cg_unhex(rd, sizeof(rd), argv[3]) != 0) {
        fprintf(stderr, "usage: sim-evidence STATE_DIR MEASURED_FILE REPORT_DATA_HEX\n");
        return 2;
    }
    if (cg_sim_provider_new(argv[1], argv[2], &p) != 0 || p->get(p, rd, &ev) != 0) {
        fprintf(stderr, "sim-evidence: cannot use the sim TEE in %s\n", argv[1]);
        return 1;
    }
    json_t *j = cg_kbc_evidence_json(&ev, &tee);
    int rc = j != NULL && json_dumpf(j, stdout, JSON_COMPACT) == 0 ? 0 : 1;
    json_decref(j);
    cg_evidence_clear(&ev);
    p->free(p);
    return rc;
}
