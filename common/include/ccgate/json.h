#ifndef CG_JSON_H
#define CG_JSON_H

#include "ccgate/buf.h"
#include "ccgate/snp.h"
#include "ccgate/tdx.h"

/* Appends s as a JSON string (quoted, escaped). */
void cg_json_str(struct cg_buf *b, const char *s);

/* Appends n bytes as a quoted lower-case hex string. */
void cg_json_hex(struct cg_buf *b, const uint8_t *p, size_t n);

/* Appends a decoded TCB as a JSON object. */
void cg_json_tcb(struct cg_buf *b, const struct cg_snp_tcb *t);

/* Appends the claims of an SNP report as a JSON object (every field, hex for bytes). */
void cg_json_snp_report(struct cg_buf *b, const struct cg_snp_report *r);

/* Appends the claims of a TDX quote (measurements, attributes, TCB SVNs) as a JSON object. */
void cg_json_tdx_quote(struct cg_buf *b, const struct cg_tdx_quote *q);

/* Appends what a TDX quote's collateral said: TCB statuses, date, advisories, CRLs. */
void cg_json_tdx_status(struct cg_buf *b, const struct cg_tdx_status *st);

/* Appends a model claim as {"name", "version", "sha256"}, or null when not present. */
struct cg_model_claim;
void cg_json_model(struct cg_buf *b, const struct cg_model_claim *m);

/* Appends one appraised GPU (model, versions, measurement and OCSP status) as a JSON object. */
struct cg_gpuev_result;
void cg_json_gpu(struct cg_buf *b, const struct cg_gpuev_result *g);

#endif
