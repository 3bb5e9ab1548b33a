/*
 * libFuzzer target: the whole GPU appraisal (cg_gpuev_verify_one) past the signature. The
 * harness is the simulated GPU: each input that parses as an SPDM report gets the sim leaf's
 * FWID in place of its own and is signed again by the sim leaf (cg_gpusim_sign, the same
 * ECDSA P-384 a real GPU does), so mutations reach the chain, FWID, nonce, the RIM checks
 * and measurement matching (sim RIMs), OCSP (sim responses) and the policy. Nothing in the
 * verifier is stubbed. Fixed verification time: the harness start.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccgate/gpu.h"
#include "ccgate/gpuev.h"
#include "ccgate/gpusim.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    char dir[64];
    struct cg_gpusim *sim;
    struct cg_gpu_chain chain;
    uint8_t fwid[CG_SPDM_FWID_LEN];
    uint8_t *rims[2], *ocsp[2];
    size_t rim_lens[2], ocsp_lens[2];
    struct cg_gpu_policy policy;
    time_t at;
} H;

static void cleanup(void)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", H.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_gpu_verify: could not remove %s\n", H.dir);
}

static void setup(void)
{
    uint8_t root[32];
    char *pem = NULL;
    size_t pem_len = 0;
    enum cg_gpu_arch arch;
    snprintf(H.dir, sizeof(H.dir), "/tmp/cg_fuzz_gpu_XXXXXX");
    H.at = time(NULL);
    if (mkdtemp(H.dir) == NULL || cg_gpusim_init(H.dir, root) != 0 ||
        cg_gpusim_open(H.dir, &H.sim) != 0 || cg_gpusim_chain_pem(H.sim, &pem, &pem_len) != 0 ||
        cg_gpu_chain_load((const uint8_t *)pem, pem_len, &H.chain, NULL) != 0 ||
        cg_gpu_leaf_fwid(H.chain.certs[0], H.chain.cert_lens[0], &arch, H.fwid, NULL) != 0 ||
        cg_gpusim_rim(H.sim, CG_GPUSIM_RIM_DRIVER, &H.rims[0], &H.rim_lens[0]) != 0 ||
        cg_gpusim_rim(H.sim, CG_GPUSIM_RIM_VBIOS, &H.rims[1], &H.rim_lens[1]) != 0 ||
        cg_gpusim_ocsp(H.sim, CG_GPUSIM_LEAF, 0, 0, H.at - 60, H.at + 86400, &H.ocsp[0],
                       &H.ocsp_lens[0]) != 0 ||
        cg_gpusim_ocsp(H.sim, CG_GPUSIM_RIM_SIGNER, 0, 0, H.at - 60, H.at + 86400, &H.ocsp[1],
                       &H.ocsp_lens[1]) != 0)
        abort();
    free(pem);
    atexit(cleanup);
    H.policy.present = H.policy.required = H.policy.require_rims = 1;
    H.policy.allow_sim = H.policy.has_sim_root = 1;
    memcpy(H.policy.sim_root_sha256, root, 32);
    H.policy.ocsp = CG_GPU_OCSP_REQUIRE;
}

/* The harness state is made once, before the first input (RSA-4096 for the sim ARK/ASK can
 * take longer than one input may). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cg_spdm_report r;
    struct cg_verdict v = {{0}, {0}, {0}};
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    if (cg_spdm_parse(buf, size, &r, &v) == 0) {
        if (r.has_fwid) {
            uint8_t *at = memmem(buf, r.signed_len, r.fwid, CG_SPDM_FWID_LEN);
            if (at != NULL)
                memcpy(at, H.fwid, CG_SPDM_FWID_LEN);
        }
        if (cg_gpusim_sign(H.sim, buf, r.signed_len, buf + r.signed_len) != 0)
            abort();
    }
    struct cg_gpuev_collateral col;
    memset(&col, 0, sizeof(col));
    col.driver_rim = H.rims[0];
    col.driver_rim_len = H.rim_lens[0];
    col.vbios_rim = H.rims[1];
    col.vbios_rim_len = H.rim_lens[1];
    for (int i = 0; i < 2; i++) {
        col.ocsp.resp[i] = H.ocsp[i];
        col.ocsp.lens[i] = H.ocsp_lens[i];
    }
    col.ocsp.n = 2;
    struct cg_gpuev_result res;
    uint8_t nonce[32] = {0};
    if (size >= 36)
        memcpy(nonce, buf + 4, 32);
    memset(&v, 0, sizeof(v));
    int rc = cg_gpuev_verify_one(buf, size, &H.chain, &col, &H.policy, nonce, H.at, &res, &v);
    if (rc != 0 && strncmp(v.check, "gpu.", 4) != 0)
        abort();
    if (rc == 0 && (!res.rims_checked || res.ocsp != CG_OCSP_GOOD))
        abort();
    free(buf);
    return 0;
}
