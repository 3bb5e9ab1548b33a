/* `ccgate verify gpu`: the offline NVIDIA GPU verifier on the command line. */
#include "tl_verify_gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccgate/gpu.h"
#include "ccgate/gpuev.h"
#include "ccgate/policy.h"
#include "ccgate/rim.h"
#include "ccgate/spdm.h"
#include "ccgate/tdx.h"
#include "tl_cli.h"

#define PROG "ccgate verify gpu"
/* Hex text of the largest report, with room for line breaks. */
#define REPORT_FILE_MAX (4 * (CG_SPDM_MAX_BYTES + CG_SPDM_MAX_PADDING))

static const char usage[] =
    "usage: ccgate verify gpu REPORT --certs CHAIN --nonce HEX [--driver-rim FILE]\n"
    "                         [--vbios-rim FILE] [--ocsp DIR] [--at YYYY-MM-DDTHH:MM:SSZ]\n"
    "                         [--policy FILE]\n";

/* The verified claims: the device, the opaque data, every measurement, what was checked. */
static int print_claims(const struct cg_spdm_report *r, const struct cg_gpuev_result *res,
                        time_t at, int policy)
{
    json_t *o = json_object(), *m = json_object();
    char hex[2 * CG_SPDM_VALUE_MAX + 1], key[8];
    json_object_set_new(o, "verified", json_true());
    json_object_set_new(o, "device", json_string("nvidia-gpu"));
    json_object_set_new(o, "arch", json_string(cg_gpu_arch_name(res->dev.arch)));
    json_object_set_new(o, "model", json_string(res->dev.model));
    json_object_set_new(o, "sim", json_boolean(res->sim));
    tl_cli_put_time(o, "verified_at", at);
    json_object_set_new(o, "policy_applied", json_boolean(policy));
    tl_cli_put_hex(o, "nonce", r->nonce, CG_SPDM_NONCE_LEN);
    json_object_set_new(o, "driver_version", json_string(r->driver_version));
    json_object_set_new(o, "vbios_version", json_string(r->vbios_version));
    json_object_set_new(o, "chip_sku", json_string(r->chip_sku));
    json_object_set_new(o, "project", json_string(r->project));
    json_object_set_new(o, "project_sku", json_string(r->project_sku));
    cg_hex(hex, sizeof(hex), r->fwid, CG_SPDM_FWID_LEN);
    json_object_set_new(o, "fwid", json_string(hex));
    if (r->has_nvdec0)
        json_object_set_new(o, "nvdec0_status",
                            json_string(r->nvdec0_status == CG_SPDM_NVDEC_DISABLED  ? "disabled"
                                        : r->nvdec0_status == CG_SPDM_NVDEC_ENABLED ? "enabled"
                                                                                    : "unknown"));
    if (r->has_ppcie)
        json_object_set_new(o, "protected_pcie_status", json_integer(r->ppcie_status));
    json_object_set_new(
        o, "measurements_checked",
        json_string(res->rims_checked ? "matched driver and VBIOS RIMs" : "not checked (no RIMs)"));
    json_object_set_new(o, "ocsp", json_string(cg_ocsp_status_name(res->ocsp)));
    for (size_t i = 0; i < r->n_blocks; i++) {
        snprintf(key, sizeof(key), "%u", r->blocks[i].index);
        cg_hex(hex, sizeof(hex), r->blocks[i].value, r->blocks[i].len);
        json_object_set_new(m, key, json_string(hex));
    }
    json_object_set_new(o, "measurements", m);
    int rc = tl_cli_print(o);
    json_decref(o);
    return rc;
}

int tl_verify_gpu_main(int argc, char **argv)
{
    const char *report_path = NULL, *certs_path = NULL, *nonce_hex = NULL, *drv_path = NULL;
    const char *vb_path = NULL, *ocsp_dir = NULL, *at_s = NULL, *policy_path = NULL;
    struct tl_file text = {0}, certs = {0}, drv = {0}, vb = {0};
    struct cg_gpuev col_store = {0};
    struct cg_gpu_chain chain = {0};
    struct cg_policy *policy = calloc(1, sizeof(*policy));
    struct cg_spdm_report *r = malloc(sizeof(*r));
    uint8_t *report = NULL, nonce[CG_SPDM_NONCE_LEN];
    size_t report_len = 0;
    struct cg_verdict v;
    char err[256];
    time_t at = time(NULL);
    int status = 2;

    if (policy == NULL || r == NULL)
        goto out;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if (strncmp(a, "--", 2) != 0) {
            if (report_path != NULL)
                goto usage;
            report_path = a;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--certs")) != NULL) {
            certs_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--nonce")) != NULL) {
            nonce_hex = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--driver-rim")) != NULL) {
            drv_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--vbios-rim")) != NULL) {
            vb_path = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--ocsp")) != NULL) {
            ocsp_dir = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--at")) != NULL) {
            at_s = val;
        } else if ((val = tl_cli_opt_value(argc, argv, &i, "--policy")) != NULL) {
            policy_path = val;
        } else {
            goto usage;
        }
    }
    if (report_path == NULL || certs_path == NULL || nonce_hex == NULL ||
        (drv_path == NULL) != (vb_path == NULL))
        goto usage;
    if (cg_unhex(nonce, sizeof(nonce), nonce_hex) != 0) {
        fprintf(stderr, PROG ": --nonce %s: expected 64 hex digits\n", nonce_hex);
        goto out;
    }
    if (at_s != NULL && cg_tdx_time_parse(at_s, &at) != 0) {
        fprintf(stderr, PROG ": --at %s: expected YYYY-MM-DDTHH:MM:SSZ\n", at_s);
        goto out;
    }
    if (policy_path != NULL && cg_policy_load(policy_path, policy, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": --policy %s: %s\n", policy_path, err);
        goto out;
    }
    if (policy_path == NULL || !policy->gpu.present) {
        /* Check what is given: RIMs when named, OCSP when a folder is named. */
        memset(&policy->gpu, 0, sizeof(policy->gpu));
        policy->gpu.present = 1;
        policy->gpu.ocsp = ocsp_dir != NULL ? CG_GPU_OCSP_REQUIRE : CG_GPU_OCSP_OFF;
    }
    if (tl_cli_read_file(PROG, report_path, REPORT_FILE_MAX, &text) != 0 ||
        tl_cli_read_file(PROG, certs_path, CG_GPU_CHAIN_MAX_BYTES, &certs) != 0 ||
        (drv_path != NULL && tl_cli_read_file(PROG, drv_path, CG_RIM_MAX_BYTES, &drv) != 0) ||
        (vb_path != NULL && tl_cli_read_file(PROG, vb_path, CG_RIM_MAX_BYTES, &vb) != 0))
        goto out;
    if (ocsp_dir != NULL && cg_gpuev_load_collateral(ocsp_dir, &col_store, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": --ocsp %s\n", err);
        goto out;
    }
    if (cg_spdm_read((const uint8_t *)text.p, text.n, &report, &report_len) != 0) {
        fprintf(stderr, PROG ": %s: expected the report as hex text or raw SPDM bytes\n",
                report_path);
        goto out;
    }
    memset(&v, 0, sizeof(v));
    int rc = cg_gpu_chain_load((const uint8_t *)certs.p, certs.n, &chain, &v);
    struct cg_gpuev_result res;
    if (rc == 0) {
        struct cg_gpuev_collateral col = {0};
        col.driver_rim = (const uint8_t *)drv.p;
        col.driver_rim_len = drv.n;
        col.vbios_rim = (const uint8_t *)vb.p;
        col.vbios_rim_len = vb.n;
        for (size_t i = 0; i < col_store.n_ocsp; i++) {
            col.ocsp.resp[i] = col_store.ocsp[i];
            col.ocsp.lens[i] = col_store.ocsp_lens[i];
        }
        col.ocsp.n = col_store.n_ocsp;
        rc = cg_gpuev_verify_one(report, report_len, &chain, &col, &policy->gpu, nonce, at, &res,
                                 &v);
    }
    if (rc == 0 && cg_spdm_parse(report, report_len, r, &v) == 0) {
        status = print_claims(r, &res, at, policy_path != NULL) == 0 ? 0 : 2;
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
    cg_gpu_chain_clear(&chain);
    cg_gpuev_clear(&col_store);
    free(report);
    free(text.p);
    free(certs.p);
    free(drv.p);
    free(vb.p);
    free(policy);
    free(r);
    return status;
}
