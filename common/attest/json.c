#include "ccgate/json.h"

#include <stdio.h>

#include "ccgate/err.h"
#include "ccgate/gpuev.h"

void cg_json_str(struct cg_buf *b, const char *s)
{
    (void)cg_buf_append(b, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            (void)cg_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            (void)cg_buf_printf(b, "\\u%04x", ch);
        else
            (void)cg_buf_append(b, s, 1);
    }
    (void)cg_buf_append(b, "\"", 1);
}

void cg_json_hex(struct cg_buf *b, const uint8_t *p, size_t n)
{
    char hex[2 * 128 + 1];
    size_t chunk = sizeof(hex) / 2;
    (void)cg_buf_append(b, "\"", 1);
    for (size_t o = 0; o < n; o += chunk) {
        size_t k = n - o < chunk ? n - o : chunk;
        cg_hex(hex, sizeof(hex), p + o, k);
        (void)cg_buf_append(b, hex, 2 * k);
    }
    (void)cg_buf_append(b, "\"", 1);
}

void cg_json_tcb(struct cg_buf *b, const struct cg_snp_tcb *t)
{
    (void)cg_buf_printf(b,
                        "{\"raw\": \"0x%016llx\", \"bootloader\": %u, \"tee\": %u, \"snp\": %u, "
                        "\"microcode\": %u, \"fmc\": %u}",
                        (unsigned long long)t->raw, t->bootloader, t->tee, t->snp, t->microcode,
                        t->fmc);
}

void cg_json_snp_report(struct cg_buf *b, const struct cg_snp_report *r)
{
    (void)cg_buf_printf(b,
                        "{\"version\": %u, \"guest_svn\": %u, \"policy\": \"0x%llx\", "
                        "\"debug\": %s, \"migration_agent\": %s, \"smt_allowed\": %s, "
                        "\"vmpl\": %u, \"signature_algo\": %u, \"platform_info\": \"0x%llx\", "
                        "\"signer_info\": \"0x%x\", \"signing_key\": \"%s\"",
                        r->version, r->guest_svn, (unsigned long long)r->policy,
                        (r->policy & CG_SNP_POLICY_DEBUG) ? "true" : "false",
                        (r->policy & CG_SNP_POLICY_MIGRATE_MA) ? "true" : "false",
                        (r->policy & CG_SNP_POLICY_SMT) ? "true" : "false", r->vmpl,
                        r->signature_algo, (unsigned long long)r->platform_info, r->signer_info,
                        ((r->signer_info >> 2) & 7) == 1 ? "vlek" : "vcek");
    struct {
        const char *name;
        const uint8_t *p;
        size_t n;
    } fields[] = {
        {"measurement", r->measurement, sizeof(r->measurement)},
        {"report_data", r->report_data, sizeof(r->report_data)},
        {"host_data", r->host_data, sizeof(r->host_data)},
        {"family_id", r->family_id, sizeof(r->family_id)},
        {"image_id", r->image_id, sizeof(r->image_id)},
        {"id_key_digest", r->id_key_digest, sizeof(r->id_key_digest)},
        {"author_key_digest", r->author_key_digest, sizeof(r->author_key_digest)},
        {"report_id", r->report_id, sizeof(r->report_id)},
        {"report_id_ma", r->report_id_ma, sizeof(r->report_id_ma)},
        {"chip_id", r->chip_id, sizeof(r->chip_id)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        (void)cg_buf_printf(b, ", \"%s\": ", fields[i].name);
        cg_json_hex(b, fields[i].p, fields[i].n);
    }
    (void)cg_buf_printf(b,
                        ", \"current_tcb\": \"0x%016llx\", \"reported_tcb\": \"0x%016llx\", "
                        "\"committed_tcb\": \"0x%016llx\", \"launch_tcb\": \"0x%016llx\", "
                        "\"cpuid\": {\"family\": %u, \"model\": %u, \"stepping\": %u}, "
                        "\"firmware\": {\"current\": \"%u.%u.%u\", \"committed\": \"%u.%u.%u\"}}",
                        (unsigned long long)r->current_tcb, (unsigned long long)r->reported_tcb,
                        (unsigned long long)r->committed_tcb, (unsigned long long)r->launch_tcb,
                        r->cpuid_fam_id, r->cpuid_mod_id, r->cpuid_step, r->current_major,
                        r->current_minor, r->current_build, r->committed_major,
                        r->committed_minor, r->committed_build);
}

void cg_json_tdx_quote(struct cg_buf *b, const struct cg_tdx_quote *q)
{
    (void)cg_buf_printf(b,
                        "{\"version\": %u, \"body_type\": %u, \"td_attributes\": \"0x%016llx\", "
                        "\"debug\": %s, \"xfam\": \"0x%016llx\"",
                        (unsigned)q->version, (unsigned)q->body_type,
                        (unsigned long long)q->td_attributes,
                        (q->td_attributes & CG_TDX_ATTR_DEBUG) ? "true" : "false",
                        (unsigned long long)q->xfam);
    struct {
        const char *name;
        const uint8_t *p;
        size_t n;
    } fields[] = {
        {"tee_tcb_svn", q->tee_tcb_svn, sizeof(q->tee_tcb_svn)},
        {"mrseam", q->mrseam, sizeof(q->mrseam)},
        {"mrtd", q->mrtd, sizeof(q->mrtd)},
        {"mrconfigid", q->mrconfigid, sizeof(q->mrconfigid)},
        {"mrowner", q->mrowner, sizeof(q->mrowner)},
        {"mrownerconfig", q->mrownerconfig, sizeof(q->mrownerconfig)},
        {"rtmr0", q->rtmr[0], sizeof(q->rtmr[0])},
        {"rtmr1", q->rtmr[1], sizeof(q->rtmr[1])},
        {"rtmr2", q->rtmr[2], sizeof(q->rtmr[2])},
        {"rtmr3", q->rtmr[3], sizeof(q->rtmr[3])},
        {"report_data", q->report_data, sizeof(q->report_data)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        (void)cg_buf_printf(b, ", \"%s\": ", fields[i].name);
        cg_json_hex(b, fields[i].p, fields[i].n);
    }
    (void)cg_buf_printf(b, "}");
}

void cg_json_tdx_status(struct cg_buf *b, const struct cg_tdx_status *st)
{
    (void)cg_buf_printf(b, "{\"status\": \"%s\", \"collateral\": %s",
                        cg_tdx_tcb_status_name(st->tcb_status), st->collateral ? "true" : "false");
    if (st->collateral) {
        (void)cg_buf_printf(b, ", \"platform\": \"%s\", \"tdx_module\": \"%s\", \"qe\": \"%s\", "
                               "\"tcb_date\": ",
                            cg_tdx_tcb_status_name(st->platform_status),
                            cg_tdx_tcb_status_name(st->module_status),
                            cg_tdx_tcb_status_name(st->qe_status));
        cg_json_str(b, st->tcb_date);
    }
    (void)cg_buf_printf(b, ", \"crls_checked\": %zu, \"advisory_ids\": [", st->n_crls);
    for (size_t i = 0; i < st->n_advisories; i++) {
        (void)cg_buf_printf(b, i ? ", " : "");
        cg_json_str(b, st->advisories[i]);
    }
    (void)cg_buf_printf(b, "]}");
}

void cg_json_gpu(struct cg_buf *b, const struct cg_gpuev_result *g)
{
    (void)cg_buf_printf(b, "{\"arch\": \"%s\", \"model\": ", cg_gpu_arch_name(g->dev.arch));
    cg_json_str(b, g->dev.model);
    (void)cg_buf_printf(b, ", \"driver_version\": ");
    cg_json_str(b, g->driver_version);
    (void)cg_buf_printf(b, ", \"vbios_version\": ");
    cg_json_str(b, g->vbios_version);
    (void)cg_buf_printf(b, ", \"fwid\": ");
    cg_json_hex(b, g->dev.fwid, sizeof(g->dev.fwid));
    (void)cg_buf_printf(b, ", \"measurements\": \"%s\", \"ocsp\": \"%s\", \"insecure\": %s%s}",
                        g->rims_checked ? "match the driver and VBIOS RIMs"
                                        : "not checked (no RIMs)",
                        cg_ocsp_status_name(g->ocsp), g->sim ? "true" : "false",
                        g->sim ? ", \"warning\": \"INSECURE: simulated GPU\"" : "");
}

void cg_json_model(struct cg_buf *b, const struct cg_model_claim *m)
{
    if (!m->present) {
        (void)cg_buf_printf(b, "null");
        return;
    }
    (void)cg_buf_printf(b, "{\"name\": ");
    cg_json_str(b, m->name);
    (void)cg_buf_printf(b, ", \"version\": %llu, \"sha256\": ", (unsigned long long)m->version);
    cg_json_hex(b, m->sha256, sizeof(m->sha256));
    (void)cg_buf_printf(b, "}");
}
