/* Evidence as the key broker client sends it, into ccgate's evidence structure. */
#include "kb_evidence.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/jose.h"
#include "ccgate/kbc.h"
#include "ccgate/snp.h"
#include "ccgate/trustee.h"

#define CERT_MAX (16 * 1024)

/* A quote and copies of the broker's collateral blobs. */
static int tdx_decode(const json_t *primary, const struct cg_evidence *col, struct cg_evidence *out,
                      char *err, size_t errlen)
{
    const char *quote = json_string_value(json_object_get(primary, "quote"));
    out->tag = CG_TAG_TDX;
    if (quote == NULL ||
        cg_b64_decode(quote, CG_EVIDENCE_MAX_BYTES, &out->evidence, &out->evidence_len) != 0)
        return cg_errf(err, errlen, CG_EEVIDENCE,
                       "tee-evidence.primary_evidence.quote: expected base64 of at most %d bytes",
                       CG_EVIDENCE_MAX_BYTES);
    for (size_t i = 0; i < col->n_certs; i++) {
        out->certs[i] = malloc(col->cert_lens[i]);
        if (out->certs[i] == NULL) {
            cg_evidence_clear(out);
            return -ENOMEM;
        }
        memcpy(out->certs[i], col->certs[i], col->cert_lens[i]);
        out->cert_lens[i] = col->cert_lens[i];
        out->n_certs = i + 1;
    }
    return 0;
}

int kb_evidence_decode(const char *tee, const json_t *primary, const struct cg_evidence *tdx_col,
                       struct cg_evidence *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(tee, "snp") == 0)
        return cg_trustee_snp_from_json(primary, out, err, errlen);
    if (strcmp(tee, "tdx") == 0)
        return tdx_decode(primary, tdx_col, out, err, errlen);
    if (strcmp(tee, CG_KBC_TEE_SIM) != 0) {
        snprintf(err, errlen,
                 "tee %s: this broker verifies snp, tdx and the simulated TEE's evidence "
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
