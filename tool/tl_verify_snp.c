/* `ccgate verify snp`: the offline SEV-SNP verifier on the command line. */
#include "tl_verify_snp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccgate/buf.h"
#include "ccgate/json.h"
#include "ccgate/policy.h"
#include "ccgate/snp.h"
#include "tl_cli.h"

#define PROG "ccgate verify snp"
#define CERT_FILE_MAX (256 * 1024)

static const char usage[] =
    "usage: ccgate verify snp REPORT --vcek CERT [--chain CERTS] [--at RFC3339] [--policy FILE]\n";

static const char help[] =
    "\n"
    "Verifies an AMD SEV-SNP attestation report offline and prints a JSON verdict.\n"
    "Exit status: 0 verified, 1 rejected (the JSON names the failed check), 2 usage or\n"
    "unreadable input.\n"
    "\n"
    "  REPORT          the raw 1184-byte report, or an Azure HCL report (\"HCLA\" header,\n"
    "                  the SNP report at bytes 0x20..0x4BF): its SNP report is verified\n"
    "  --vcek CERT     the VCEK or VLEK that signed the report (DER or PEM); a PEM file may\n"
    "                  carry the ASK and ARK after it (as Azure's vcek.pem does)\n"
    "  --chain CERTS   PEM certificates in any order, e.g. AMD's ASK+ARK or ASK+ARK+ASVK\n"
    "                  bundles; optional: the AMD roots (ARK, ASK, ASVK) are built in, and\n"
    "                  an ARK given must be the built-in one\n"
    "  --at TIME       verify as of TIME (RFC 3339, e.g. 2025-01-01T00:00:00Z or\n"
    "                  2025-01-01T01:00:00+01:00); default now\n"
    "  --policy FILE   also appraise the claims against a policy (docs/policy.md)\n"
    "  --help          this text\n";

static const char *const flags[] = {"--vcek", "--chain", "--at", "--policy", NULL};

/* Prints the verified claims: a cg_buf JSON document around the report's fields. */
static int print_claims(const struct cg_snp_report *r, time_t at, int policy,
                        const struct cg_snp_hcl *hcl)
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
                        "  \"policy_applied\": %s,\n",
                        cg_snp_product_name(r->product), r->vlek ? "vlek" : "vcek", when,
                        policy ? "true" : "false");
    if (hcl->report != NULL)
        (void)cg_buf_printf(&b,
                            "  \"format\": \"azure-hcl\",\n  \"hcl_runtime_data_bytes\": %zu,\n"
                            "  \"hcl_runtime_data_bound\": %s,\n",
                            hcl->runtime_len, hcl->runtime_bound ? "true" : "false");
    (void)cg_buf_printf(&b, "  \"tcb\": {\"reported\": ");
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

/* Prints the rejection; returns the exit status (1, or 2 if stdout failed). */
static int print_rejection(const struct cg_verdict *v)
{
    json_t *o = tl_cli_rejection(v);
    int status = tl_cli_print(o) == 0 ? 1 : 2;
    json_decref(o);
    return status;
}

/* Reads a certificate file into pool: one DER certificate or PEM ones. 0 or -1. */
static int load_certs(const char *flag, const char *path, struct cg_evidence *pool)
{
    struct tl_file f = {0};
    if (tl_cli_read_file(PROG, path, CERT_FILE_MAX, &f) != 0)
        return -1;
    int rc = cg_snp_certs_load((const uint8_t *)f.p, f.n, pool);
    free(f.p);
    if (rc == CG_ELIMIT)
        fprintf(stderr, PROG ": %s %s: more than %d certificates in all\n", flag, path,
                CG_EVIDENCE_MAX_CERTS);
    else if (rc != 0)
        fprintf(stderr, PROG ": %s %s: expected certificates (one DER, or PEM)\n", flag, path);
    return rc == 0 ? 0 : -1;
}

int tl_verify_snp_main(int argc, char **argv)
{
    const char *report_path = NULL, *vcek_path = NULL, *chain_path = NULL;
    const char *policy_path = NULL, *at_s = NULL;
    struct tl_file report = {0};
    struct cg_evidence pool = {0};
    struct cg_policy policy;
    struct cg_snp_report r;
    struct cg_snp_hcl hcl;
    struct cg_verdict v;
    char err[256];
    time_t at = time(NULL);
    int status = 2;

    if (tl_cli_wants_help(argc, argv)) {
        printf("%s%s", usage, help);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if (strncmp(a, "--", 2) != 0 && report_path == NULL) {
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
            tl_cli_bad_arg(PROG, a, flags);
            goto out;
        }
    }
    if (report_path == NULL || vcek_path == NULL) {
        fprintf(stderr, PROG ": %s is required (see " PROG " --help)\n",
                report_path == NULL ? "REPORT" : "--vcek CERT");
        goto out;
    }
    if (at_s != NULL && tl_cli_time_parse(at_s, &at) != 0) {
        fprintf(stderr, PROG ": --at %s: expected an RFC 3339 time (2025-01-01T00:00:00Z)\n", at_s);
        goto out;
    }
    if (policy_path != NULL && cg_policy_load(policy_path, &policy, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": --policy %s: %s\n", policy_path, err);
        goto out;
    }
    /* Read more than a report holds: a longer file is an HCL report or a rejected size. */
    if (tl_cli_read_file(PROG, report_path, CG_EVIDENCE_MAX_BYTES, &report) != 0 ||
        load_certs("--vcek", vcek_path, &pool) != 0 ||
        (chain_path != NULL && load_certs("--chain", chain_path, &pool) != 0))
        goto out;

    memset(&v, 0, sizeof(v));
    const uint8_t *body = (const uint8_t *)report.p;
    size_t body_len = report.n;
    int rc = cg_snp_hcl_parse(body, body_len, &hcl, &v);
    if (rc < 0) {
        status = print_rejection(&v);
        goto out;
    }
    if (rc == 1) {
        body = hcl.report;
        body_len = CG_SNP_REPORT_SIZE;
    }
    size_t idx[3];
    rc = cg_snp_chain_pick((const uint8_t *const *)pool.certs, pool.cert_lens, pool.n_certs, idx,
                           &v);
    if (rc < 0) {
        status = print_rejection(&v);
        goto out;
    }
    const uint8_t *certs[3];
    size_t lens[3];
    for (int i = 0; i < rc; i++) {
        certs[i] = pool.certs[idx[i]];
        lens[i] = pool.cert_lens[idx[i]];
    }
    struct cg_snp_anchor amd = {0};
    rc = cg_snp_verify(body, body_len, certs, lens, (size_t)rc, &amd, at, &r, &v);
    if (rc == 0 && policy_path != NULL)
        rc = cg_policy_appraise_snp(&policy, &r, &v);
    if (rc == 0)
        status = print_claims(&r, at, policy_path != NULL, &hcl) == 0 ? 0 : 2;
    else if (rc == CG_EEVIDENCE || rc == CG_EPOLICY)
        status = print_rejection(&v);
    else
        fprintf(stderr, PROG ": %s\n", cg_strerror(rc));
out:
    cg_evidence_clear(&pool);
    free(report.p);
    return status;
}
