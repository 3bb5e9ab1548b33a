/* `ccgate verify tdx`: the offline TDX verifier on the command line. */
#include "tl_verify_tdx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ccgate/policy.h"
#include "ccgate/tdx.h"
#include "tl_cli.h"

#define EXIT_VERIFIED 0
#define EXIT_REJECTED 1
#define EXIT_USAGE 2

static const char usage[] =
    "usage: ccgate verify tdx QUOTE [--tcb-info F --qe-identity F --tcb-chain F] [--crl F ...]\n"
    "                             [--at YYYY-MM-DDTHH:MM:SSZ] [--policy FILE]\n";

/* The claims of a verified quote: measurements in hex as they appear in the quote. */
static json_t *claims(const struct cg_tdx_quote *q, const struct cg_tdx_status *st, time_t at,
                      int policy)
{
    char num[32];
    uint8_t xfam[8];
    json_t *o = json_object();
    json_object_set_new(o, "verified", json_true());
    json_object_set_new(o, "tee", json_string("tdx"));
    json_object_set_new(o, "quote_version", json_integer(q->version));
    json_object_set_new(o, "body_type", json_integer(q->body_type));
    tl_cli_put_time(o, "verified_at", at);
    json_object_set_new(o, "policy_applied", json_boolean(policy));
    tl_cli_put_hex(o, "tee_tcb_svn", q->tee_tcb_svn, 16);
    tl_cli_put_hex(o, "mrseam", q->mrseam, 48);
    tl_cli_put_hex(o, "mrsignerseam", q->mrsignerseam, 48);
    snprintf(num, sizeof(num), "0x%016llx", (unsigned long long)q->td_attributes);
    json_object_set_new(o, "td_attributes", json_string(num));
    json_object_set_new(o, "debug", json_boolean(q->td_attributes & CG_TDX_ATTR_DEBUG));
    json_object_set_new(o, "sept_ve_disable",
                        json_boolean(q->td_attributes & CG_TDX_ATTR_SEPT_VE_DISABLE));
    for (int i = 0; i < 8; i++)
        xfam[i] = (uint8_t)(q->xfam >> (8 * i));
    tl_cli_put_hex(o, "xfam", xfam, 8);
    tl_cli_put_hex(o, "mrtd", q->mrtd, 48);
    tl_cli_put_hex(o, "mrconfigid", q->mrconfigid, 48);
    tl_cli_put_hex(o, "mrowner", q->mrowner, 48);
    tl_cli_put_hex(o, "mrownerconfig", q->mrownerconfig, 48);
    tl_cli_put_hex(o, "rtmr0", q->rtmr[0], 48);
    tl_cli_put_hex(o, "rtmr1", q->rtmr[1], 48);
    tl_cli_put_hex(o, "rtmr2", q->rtmr[2], 48);
    tl_cli_put_hex(o, "rtmr3", q->rtmr[3], 48);
    tl_cli_put_hex(o, "report_data", q->report_data, 64);
    if (q->body_type == 3) {
        tl_cli_put_hex(o, "tee_tcb_svn2", q->tee_tcb_svn2, 16);
        tl_cli_put_hex(o, "mrservicetd", q->mrservicetd, 48);
    }
    tl_cli_put_hex(o, "fmspc", q->pck.fmspc, 6);
    tl_cli_put_hex(o, "pceid", q->pck.pceid, 2);
    json_object_set_new(o, "pcesvn", json_integer(q->pck.pcesvn));
    tl_cli_put_hex(o, "pck_sgx_tcb_svn", q->pck.sgx_tcb, 16);
    json_object_set_new(o, "qe_isvsvn", json_integer(q->qe_report.isvsvn));
    json_object_set_new(o, "collateral", json_boolean(st->collateral));
    json_object_set_new(o, "crls_checked", json_integer((json_int_t)st->n_crls));
    json_object_set_new(o, "root_crl_checked", json_boolean(st->root_crl));
    json_object_set_new(o, "pck_crl_checked", json_boolean(st->pck_crl));
    json_object_set_new(o, "tcb_status", json_string(cg_tdx_tcb_status_name(st->tcb_status)));
    if (st->collateral) {
        json_object_set_new(o, "platform_tcb_status",
                            json_string(cg_tdx_tcb_status_name(st->platform_status)));
        json_object_set_new(o, "tdx_module_tcb_status",
                            json_string(cg_tdx_tcb_status_name(st->module_status)));
        json_object_set_new(o, "qe_tcb_status", json_string(cg_tdx_tcb_status_name(st->qe_status)));
        json_object_set_new(o, "tcb_date", json_string(st->tcb_date));
        json_object_set_new(o, "tcb_evaluation_data_number",
                            json_integer(st->tcb_evaluation_data_number));
    }
    json_t *adv = json_array();
    for (size_t i = 0; i < st->n_advisories; i++)
        json_array_append_new(adv, json_string(st->advisories[i]));
    json_object_set_new(o, "advisory_ids", adv);
    return o;
}

/* Loads the "tdx" member of a policy file into p; 0, or -1 with a message. */
static int load_policy(const char *path, struct cg_tdx_policy *p)
{
    json_error_t je;
    char err[256];
    struct tl_file text;
    if (tl_cli_read_file("ccgate verify tdx", path, CG_POLICY_MAX_BYTES, &text) != 0)
        return -1;
    json_t *doc = json_loadb(text.p, text.n, JSON_REJECT_DUPLICATES, &je);
    free(text.p);
    int rc = -1;
    if (doc == NULL) {
        fprintf(stderr, "ccgate verify tdx: %s:%d: %s\n", path, je.line, je.text);
        return -1;
    }
    json_t *tdx = json_object_get(doc, "tdx");
    if (tdx == NULL) {
        fprintf(stderr, "ccgate verify tdx: %s: no \"tdx\" member\n", path);
        goto out;
    }
    if (cg_tdx_policy_parse(tdx, p, err, sizeof(err)) != 0) {
        fprintf(stderr, "ccgate verify tdx: %s: %s\n", path, err);
        goto out;
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

int tl_verify_tdx_main(int argc, char **argv)
{
    const char *quote_path = NULL, *tcb_path = NULL, *qe_path = NULL, *chain_path = NULL;
    const char *policy_path = NULL, *at_s = NULL;
    const char *crl_paths[CG_TDX_MAX_CRLS];
    struct tl_file quote = {0}, tcb = {0}, qe = {0}, chain = {0}, crls[CG_TDX_MAX_CRLS] = {{0}};
    struct cg_tdx_collateral col;
    struct cg_tdx_policy policy;
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
    struct cg_verdict v;
    size_t n_crls = 0;
    time_t at = time(NULL);
    int status = EXIT_USAGE;
    json_t *out = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if (strncmp(a, "--", 2) != 0) {
            if (quote_path != NULL)
                goto usage;
            quote_path = a;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--tcb-info")) != NULL) {
            tcb_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--qe-identity")) != NULL) {
            qe_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--tcb-chain")) != NULL) {
            chain_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--crl")) != NULL) {
            if (n_crls == CG_TDX_MAX_CRLS) {
                fprintf(stderr, "ccgate verify tdx: at most %d CRLs\n", CG_TDX_MAX_CRLS);
                goto out;
            }
            crl_paths[n_crls++] = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--at")) != NULL) {
            at_s = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--policy")) != NULL) {
            policy_path = val;
        } else {
            goto usage;
        }
    }
    if (quote_path == NULL)
        goto usage;
    int n_col = (tcb_path != NULL) + (qe_path != NULL) + (chain_path != NULL);
    if (n_col != 0 && n_col != 3) {
        fprintf(stderr, "ccgate verify tdx: --tcb-info, --qe-identity and --tcb-chain go "
                        "together\n");
        goto out;
    }
    if (at_s != NULL && cg_tdx_time_parse(at_s, &at) != 0) {
        fprintf(stderr, "ccgate verify tdx: --at %s: expected YYYY-MM-DDTHH:MM:SSZ\n", at_s);
        goto out;
    }
    if (policy_path != NULL && load_policy(policy_path, &policy) != 0)
        goto out;

    memset(&col, 0, sizeof(col));
    if (tl_cli_read_file("ccgate verify tdx", quote_path, CG_TDX_QUOTE_MAX, &quote) != 0)
        goto out;
    if (tcb_path != NULL) {
        if (tl_cli_read_file("ccgate verify tdx", tcb_path, CG_TDX_COLLATERAL_MAX, &tcb) != 0 ||
            tl_cli_read_file("ccgate verify tdx", qe_path, CG_TDX_COLLATERAL_MAX, &qe) != 0 ||
            tl_cli_read_file("ccgate verify tdx", chain_path, CG_TDX_COLLATERAL_MAX, &chain) != 0)
            goto out;
        col.tcb_info = tcb.p;
        col.tcb_info_len = tcb.n;
        col.qe_identity = qe.p;
        col.qe_identity_len = qe.n;
        col.tcb_chain = chain.p;
        col.tcb_chain_len = chain.n;
    }
    for (size_t i = 0; i < n_crls; i++) {
        if (tl_cli_read_file("ccgate verify tdx", crl_paths[i], CG_TDX_COLLATERAL_MAX, &crls[i]) !=
            0)
            goto out;
        col.crls[i] = (const uint8_t *)crls[i].p;
        col.crl_lens[i] = crls[i].n;
    }
    col.n_crls = n_crls;

    memset(&v, 0, sizeof(v));
    int rc = cg_tdx_verify((const uint8_t *)quote.p, quote.n, &col, at, &q, &st, &v);
    if (rc == 0 && policy_path != NULL)
        rc = cg_tdx_appraise(&policy, &q, &st, &v);
    if (rc == 0) {
        out = claims(&q, &st, at, policy_path != NULL);
        status = EXIT_VERIFIED;
    } else if (rc == CG_EEVIDENCE || rc == CG_EPOLICY) {
        out = tl_cli_rejection(&v);
        status = EXIT_REJECTED;
    } else {
        fprintf(stderr, "ccgate verify tdx: %s\n", cg_strerror(rc));
        goto out;
    }
    if (tl_cli_print(out) != 0)
        status = EXIT_USAGE;
    goto out;
usage:
    fputs(usage, stderr);
out:
    json_decref(out);
    free(quote.p);
    free(tcb.p);
    free(qe.p);
    free(chain.p);
    for (size_t i = 0; i < CG_TDX_MAX_CRLS; i++)
        free(crls[i].p);
    return status;
}
