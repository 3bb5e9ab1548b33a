/* `ccgate verify snp`: the offline SEV-SNP verifier on the command line. */
#include "tl_verify_snp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccgate/buf.h"
#include "ccgate/policy.h"
#include "ccgate/snp.h"
#include "ccgate/tdx.h"
#include "tl_cli.h"
#include "ccgate/json.h"

#define PROG "ccgate verify snp"
#define CERT_FILE_MAX (256 * 1024)

static const char usage[] =
    "usage: ccgate verify snp REPORT --vcek CERT --chain ASK_ARK.pem\n"
    "                         [--at YYYY-MM-DDTHH:MM:SSZ] [--policy FILE]\n";

/* Prints the verified claims: a cg_buf JSON document around the report's fields. */
static int print_claims(const struct cg_snp_report *r, time_t at, int policy)
{
    char when[32];
    struct tm tm;
    gmtime_r(&at, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct cg_buf b;
    cg_buf_init(&b, 64 * 1024);
    (void)cg_buf_printf(&b,
                        "{\n  \"verified\": true,\n  \"tee\": \"snp\",\n  \"product\": \"%s\",\n"
                        "  \"signing_key\": \"%s\",\n  \"verified_at\": \"%s\",\n"
                        "  \"policy_applied\": %s,\n  \"tcb\": {\"reported\": ",
                        cg_snp_product_name(r->product), r->vlek ? "vlek" : "vcek", when,
                        policy ? "true" : "false");
    cg_json_tcb(&b, &r->reported);
    (void)cg_buf_printf(&b, ", \"current\": ");
    cg_json_tcb(&b, &r->current);
    (void)cg_buf_printf(&b, ", \"committed\": ");
    cg_json_tcb(&b, &r->committed);
    (void)cg_buf_printf(&b, ", \"launch\": ");
    cg_json_tcb(&b, &r->launch);
    (void)cg_buf_printf(&b, "},\n  \"report\": ");
    cg_json_snp_report(&b, r);
    (void)cg_buf_printf(&b, "\n}\n");
    int rc = b.overflow || fputs(b.data, stdout) == EOF || fflush(stdout) != 0 ? -1 : 0;
    cg_buf_free(&b);
    return rc;
}

int tl_verify_snp_main(int argc, char **argv)
{
    const char *report_path = NULL, *vcek_path = NULL, *chain_path = NULL;
    const char *policy_path = NULL, *at_s = NULL;
    struct tl_file report = {0}, vcek = {0}, chain = {0};
    struct cg_evidence certs = {0};
    struct cg_policy policy;
    struct cg_snp_report r;
    struct cg_verdict v;
    char err[256];
    time_t at = time(NULL);
    int status = 2;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if (strncmp(a, "--", 2) != 0) {
            if (report_path != NULL)
                goto usage;
            report_path = a;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--vcek")) != NULL) {
            vcek_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--chain")) != NULL) {
            chain_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--at")) != NULL) {
            at_s = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--policy")) != NULL) {
            policy_path = val;
        } else {
            goto usage;
        }
    }
    if (report_path == NULL || vcek_path == NULL || chain_path == NULL)
        goto usage;
    if (at_s != NULL && cg_tdx_time_parse(at_s, &at) != 0) {
        fprintf(stderr, PROG ": --at %s: expected YYYY-MM-DDTHH:MM:SSZ\n", at_s);
        goto out;
    }
    if (policy_path != NULL && cg_policy_load(policy_path, &policy, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": --policy %s: %s\n", policy_path, err);
        goto out;
    }
    if (tl_cli_read_file(PROG, report_path, CG_SNP_REPORT_SIZE, &report) != 0 ||
        tl_cli_read_file(PROG, vcek_path, CERT_FILE_MAX, &vcek) != 0 ||
        tl_cli_read_file(PROG, chain_path, CERT_FILE_MAX, &chain) != 0)
        goto out;
    if (cg_snp_certs_load((const uint8_t *)vcek.p, vcek.n, &certs) != 0 || certs.n_certs != 1) {
        fprintf(stderr, PROG ": --vcek %s: expected one certificate (DER or PEM)\n", vcek_path);
        goto out;
    }
    if (cg_snp_certs_load((const uint8_t *)chain.p, chain.n, &certs) != 0) {
        fprintf(stderr, PROG ": --chain %s: expected PEM certificates (ASK, then ARK)\n",
                chain_path);
        goto out;
    }

    struct cg_snp_anchor amd = {0};
    memset(&v, 0, sizeof(v));
    int rc = cg_snp_verify((const uint8_t *)report.p, report.n,
                           (const uint8_t *const *)certs.certs, certs.cert_lens, certs.n_certs,
                           &amd, at, &r, &v);
    if (rc == 0 && policy_path != NULL)
        rc = cg_policy_appraise_snp(&policy, &r, &v);
    if (rc == 0) {
        status = print_claims(&r, at, policy_path != NULL) == 0 ? 0 : 2;
    } else if (rc == CG_EEVIDENCE || rc == CG_EPOLICY) {
        json_t *o = tl_cli_rejection(&v);
        status = tl_cli_print(o) == 0 ? 1 : 2;
        json_decref(o);
    } else {
        fprintf(stderr, PROG ": %s\n", cg_strerror(rc));
    }
    goto out;
usage:
    fputs(usage, stderr);
out:
    cg_evidence_clear(&certs);
    free(report.p);
    free(vcek.p);
    free(chain.p);
    return status;
}
