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

#define PROG "ccgate verify tdx"

static const char usage[] =
    "usage: ccgate verify tdx QUOTE [--collateral FILE | --tcb-info F --qe-identity F\n"
    "                         --tcb-chain F] [--crl F ...] [--at RFC3339] [--policy FILE]\n";

static const char help[] =
    "\n"
    "Verifies an Intel TDX DCAP quote offline, as Intel's QVL does, against the Intel SGX\n"
    "Root CA built in, and prints a JSON verdict. Exit status: 0 verified, 1 rejected (the\n"
    "JSON names the failed check), 2 usage or unreadable input.\n"
    "\n"
    "  QUOTE              the raw quote (v4 or v5); zero padding after it is ignored\n"
    "  --collateral FILE  collateral as one JSON object, as dcap-qvl (QuoteCollateralV3) or\n"
    "                     a PCCS client writes it: tcb_info, qe_identity (with\n"
    "                     tcb_info_signature / qe_identity_signature, or as the signed\n"
    "                     documents), tcb_info_issuer_chain, root_ca_crl, pck_crl\n"
    "  --tcb-info F, --qe-identity F, --tcb-chain F\n"
    "                     the same as Intel PCS serves them, one file each (all three)\n"
    "  --crl F            a CRL (DER or PEM), up to 4 times\n"
    "  --at TIME          verify as of TIME (RFC 3339); default now\n"
    "  --policy FILE      also appraise against the \"tdx\" member of a policy\n"
    "                     (docs/policy.md); without collateral the TCB status is\n"
    "                     NotEvaluated, which a policy must list to accept\n"
    "  --help             this text\n";

static const char *const flags[] = {"--collateral", "--tcb-info", "--qe-identity", "--tcb-chain",
                                    "--crl",        "--at",       "--policy",      NULL};

/* Collateral read from a dcap-qvl/PCCS JSON object: the documents as cg_tdx_verify() takes
 * them. Owned; freed by col_json_free(). */
struct col_json {
    char *tcb_info, *qe_identity, *tcb_chain;
    uint8_t *crls[2];
    size_t crl_lens[2];
    size_t n_crls;
};

static void col_json_free(struct col_json *c)
{
    free(c->tcb_info);
    free(c->qe_identity);
    free(c->tcb_chain);
    for (size_t i = 0; i < c->n_crls; i++)
        free(c->crls[i]);
}

/* Bytes given as a hex string or an array of byte values (dcap-qvl's two spellings) into a
 * new buffer; 0 or -1. */
static int json_bytes(json_t *j, uint8_t **out, size_t *len)
{
    size_t n = json_is_string(j) ? json_string_length(j) / 2 : json_array_size(j);
    *out = malloc(n + 1);
    if (*out == NULL)
        return -1;
    *len = n;
    if (json_is_string(j)) {
        if (json_string_length(j) % 2 == 0 && cg_unhex(*out, n, json_string_value(j)) == 0)
            return 0;
    } else if (json_is_array(j)) {
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
        {
            if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > 255)
                break;
            (*out)[i] = (uint8_t)json_integer_value(e);
        }
        if (i == n)
            return 0;
    }
    free(*out);
    *out = NULL;
    return -1;
}

/* A signed PCS document {"<member>": <text>, "signature": "<hex>"} from the member's text and
 * its separate signature, or the text itself when it already is the signed document. */
static char *signed_doc(json_t *obj, const char *key, const char *member, const char *path)
{
    char sig_key[64];
    const char *text = json_string_value(json_object_get(obj, key));
    if (text == NULL) {
        fprintf(stderr, PROG ": --collateral %s: \"%s\": expected a string\n", path, key);
        return NULL;
    }
    snprintf(sig_key, sizeof(sig_key), "%s_signature", key);
    json_t *sig = json_object_get(obj, sig_key);
    if (sig == NULL)
        return strdup(text);
    uint8_t *raw = NULL;
    size_t n = 0;
    char hex[2 * 64 + 1];
    if (json_bytes(sig, &raw, &n) != 0 || n != 64) {
        free(raw);
        fprintf(stderr, PROG ": --collateral %s: \"%s\": expected 64 bytes (hex or array)\n", path,
                sig_key);
        return NULL;
    }
    cg_hex(hex, sizeof(hex), raw, n);
    free(raw);
    size_t cap = strlen(text) + strlen(member) + sizeof(hex) + 32;
    char *doc = malloc(cap);
    if (doc != NULL)
        snprintf(doc, cap, "{\"%s\":%s,\"signature\":\"%s\"}", member, text, hex);
    return doc;
}

/* Reads --collateral FILE into c; 0, or -1 with a message naming the member. */
static int load_collateral_json(const char *path, struct col_json *c)
{
    static const char *const crl_keys[] = {"root_ca_crl", "pck_crl"};
    struct tl_file f = {0};
    json_error_t je;
    int rc = -1;
    memset(c, 0, sizeof(*c));
    if (tl_cli_read_file(PROG, path, 4 * CG_TDX_COLLATERAL_MAX, &f) != 0)
        return -1;
    json_t *o = json_loadb(f.p, f.n, JSON_REJECT_DUPLICATES, &je);
    free(f.p);
    if (!json_is_object(o)) {
        fprintf(stderr, PROG ": --collateral %s: expected a JSON object (line %d: %s)\n", path,
                je.line, o == NULL ? je.text : "not an object");
        goto out;
    }
    const char *chain = json_string_value(json_object_get(o, "tcb_info_issuer_chain"));
    const char *qe_chain = json_string_value(json_object_get(o, "qe_identity_issuer_chain"));
    if (chain == NULL) {
        fprintf(stderr, PROG ": --collateral %s: \"tcb_info_issuer_chain\": expected PEM text\n",
                path);
        goto out;
    }
    /* One chain signs both documents in Intel's PCS; two different ones are not collateral
     * this verifier can check. */
    if (qe_chain != NULL && strcmp(qe_chain, chain) != 0) {
        fprintf(stderr,
                PROG ": --collateral %s: \"qe_identity_issuer_chain\" differs from "
                     "\"tcb_info_issuer_chain\"\n",
                path);
        goto out;
    }
    if ((c->tcb_chain = strdup(chain)) == NULL ||
        (c->tcb_info = signed_doc(o, "tcb_info", "tcbInfo", path)) == NULL ||
        (c->qe_identity = signed_doc(o, "qe_identity", "enclaveIdentity", path)) == NULL)
        goto out;
    for (size_t i = 0; i < 2; i++) {
        json_t *j = json_object_get(o, crl_keys[i]);
        const char *s = json_string_value(j);
        if (j == NULL)
            continue;
        size_t k = c->n_crls;
        if (s != NULL && strncmp(s, "-----BEGIN", 10) == 0) {
            c->crls[k] = (uint8_t *)strdup(s);
            c->crl_lens[k] = strlen(s);
        } else if (json_bytes(j, &c->crls[k], &c->crl_lens[k]) != 0) {
            fprintf(stderr, PROG ": --collateral %s: \"%s\": expected PEM, hex or bytes\n", path,
                    crl_keys[i]);
            goto out;
        }
        if (c->crls[k] == NULL)
            goto out;
        c->n_crls++;
    }
    rc = 0;
out:
    json_decref(o);
    return rc;
}

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
    if (tl_cli_read_file(PROG, path, CG_POLICY_MAX_BYTES, &text) != 0)
        return -1;
    json_t *doc = json_loadb(text.p, text.n, JSON_REJECT_DUPLICATES, &je);
    free(text.p);
    int rc = -1;
    if (doc == NULL) {
        fprintf(stderr, PROG ": %s:%d: %s\n", path, je.line, je.text);
        return -1;
    }
    json_t *tdx = json_object_get(doc, "tdx");
    if (tdx == NULL) {
        fprintf(stderr, PROG ": %s: no \"tdx\" member\n", path);
        goto out;
    }
    if (cg_tdx_policy_parse(tdx, p, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s: %s\n", path, err);
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
    const char *policy_path = NULL, *at_s = NULL, *collateral_path = NULL;
    const char *crl_paths[CG_TDX_MAX_CRLS];
    struct col_json cj = {0};
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

    if (tl_cli_wants_help(argc, argv)) {
        printf("%s%s", usage, help);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if (strncmp(a, "--", 2) != 0 && quote_path == NULL) {
            quote_path = a;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--collateral")) != NULL) {
            collateral_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--tcb-info")) != NULL) {
            tcb_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--qe-identity")) != NULL) {
            qe_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--tcb-chain")) != NULL) {
            chain_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--crl")) != NULL) {
            if (n_crls == CG_TDX_MAX_CRLS) {
                fprintf(stderr, PROG ": at most %d CRLs\n", CG_TDX_MAX_CRLS);
                goto out;
            }
            crl_paths[n_crls++] = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--at")) != NULL) {
            at_s = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--policy")) != NULL) {
            policy_path = val;
        } else {
            tl_cli_bad_arg(PROG, a, flags);
            goto out;
        }
    }
    if (quote_path == NULL) {
        fprintf(stderr, PROG ": QUOTE is required (see " PROG " --help)\n");
        goto out;
    }
    int n_col = (tcb_path != NULL) + (qe_path != NULL) + (chain_path != NULL);
    if (n_col != 0 && n_col != 3) {
        fprintf(stderr, PROG ": --tcb-info, --qe-identity and --tcb-chain go together\n");
        goto out;
    }
    if (n_col != 0 && collateral_path != NULL) {
        fprintf(stderr, PROG ": --collateral replaces --tcb-info, --qe-identity and --tcb-chain\n");
        goto out;
    }
    if (collateral_path != NULL && n_crls + 2 > CG_TDX_MAX_CRLS) {
        fprintf(stderr, PROG ": at most %d CRLs beside --collateral\n", CG_TDX_MAX_CRLS - 2);
        goto out;
    }
    if (at_s != NULL && tl_cli_time_parse(at_s, &at) != 0) {
        fprintf(stderr, PROG ": --at %s: expected an RFC 3339 time (2025-01-01T00:00:00Z)\n", at_s);
        goto out;
    }
    if (policy_path != NULL && load_policy(policy_path, &policy) != 0)
        goto out;

    memset(&col, 0, sizeof(col));
    if (tl_cli_read_file(PROG, quote_path, CG_TDX_QUOTE_MAX, &quote) != 0)
        goto out;
    if (tcb_path != NULL) {
        if (tl_cli_read_file(PROG, tcb_path, CG_TDX_COLLATERAL_MAX, &tcb) != 0 ||
            tl_cli_read_file(PROG, qe_path, CG_TDX_COLLATERAL_MAX, &qe) != 0 ||
            tl_cli_read_file(PROG, chain_path, CG_TDX_COLLATERAL_MAX, &chain) != 0)
            goto out;
        col.tcb_info = tcb.p;
        col.tcb_info_len = tcb.n;
        col.qe_identity = qe.p;
        col.qe_identity_len = qe.n;
        col.tcb_chain = chain.p;
        col.tcb_chain_len = chain.n;
    }
    for (size_t i = 0; i < n_crls; i++) {
        if (tl_cli_read_file(PROG, crl_paths[i], CG_TDX_COLLATERAL_MAX, &crls[i]) != 0)
            goto out;
        col.crls[i] = (const uint8_t *)crls[i].p;
        col.crl_lens[i] = crls[i].n;
    }
    col.n_crls = n_crls;
    if (collateral_path != NULL) {
        if (load_collateral_json(collateral_path, &cj) != 0)
            goto out;
        col.tcb_info = cj.tcb_info;
        col.tcb_info_len = strlen(cj.tcb_info);
        col.qe_identity = cj.qe_identity;
        col.qe_identity_len = strlen(cj.qe_identity);
        col.tcb_chain = cj.tcb_chain;
        col.tcb_chain_len = strlen(cj.tcb_chain);
        for (size_t i = 0; i < cj.n_crls; i++) {
            col.crls[col.n_crls] = cj.crls[i];
            col.crl_lens[col.n_crls++] = cj.crl_lens[i];
        }
    }

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
        fprintf(stderr, PROG ": %s\n", cg_strerror(rc));
        goto out;
    }
    if (tl_cli_print(out) != 0)
        status = EXIT_USAGE;
out:
    col_json_free(&cj);
    json_decref(out);
    free(quote.p);
    free(tcb.p);
    free(qe.p);
    free(chain.p);
    for (size_t i = 0; i < CG_TDX_MAX_CRLS; i++)
        free(crls[i].p);
    return status;
}
