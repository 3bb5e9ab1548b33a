/* Evidence as the key broker client sends it, into ccgate's evidence structure. */
#include "kb_evidence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/jose.h"
#include "ccgate/kbc.h"
#include "ccgate/snp.h"
#include "ccgate/trustee.h"

#define CERT_MAX (16 * 1024)

int kb_evidence_decode(const char *tee, const json_t *primary, struct cg_evidence *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(tee, "snp") == 0)
        return cg_trustee_snp_from_json(primary, out, err, errlen);
    if (strcmp(tee, CG_KBC_TEE_SIM) != 0) {
        snprintf(err, errlen,
                 "tee %s: this broker verifies snp and the simulated TEE's evidence "
                 "(docs/model-protection.md)",
                 tee);
        return CG_ENOTEE;
    }
    const char *report = json_string_value(json_object_get(primary, "report"));
    const json_t *certs = json_object_get(primary, "certs");
    if (!json_is_object(primary) || report == NULL) {
        snprintf(err, errlen, "tee-evidence.primary_evidence.report: expected base64");
        return CG_EEVIDENCE;
    }
    if (!json_is_array(certs) || json_array_size(certs) == 0 ||
        json_array_size(certs) > CG_EVIDENCE_MAX_CERTS) {
        snprintf(err, errlen,
                 "tee-evidence.primary_evidence.certs: expected 1 to %d base64 "
                 "certificates",
                 CG_EVIDENCE_MAX_CERTS);
        return CG_EEVIDENCE;
    }
    out->tag = CG_TAG_SIM;
    if (cg_b64_decode(report, CG_SNP_REPORT_SIZE, &out->evidence, &out->evidence_len) != 0 ||
        out->evidence_len != CG_SNP_REPORT_SIZE) {
        cg_evidence_clear(out);
        snprintf(err, errlen, "tee-evidence.primary_evidence.report: expected base64 of %d bytes",
                 CG_SNP_REPORT_SIZE);
        return CG_EEVIDENCE;
    }
    for (size_t i = 0; i < json_array_size(certs); i++) {
        const char *c = json_string_value(json_array_get(certs, i));
        if (c == NULL || cg_b64_decode(c, CERT_MAX, &out->certs[i], &out->cert_lens[i]) != 0) {
            cg_evidence_clear(out);
            snprintf(err, errlen,
                     "tee-evidence.primary_evidence.certs[%zu]: expected base64 DER of at most "
                     "16 KiB",
                     i);
            return CG_EEVIDENCE;
        }
        out->n_certs = i + 1;
    }
    return 0;
}
