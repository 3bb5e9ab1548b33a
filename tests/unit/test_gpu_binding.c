/* GPU evidence bound to the RA-TLS channel: the sim TEE's report covers the claims holding
 * the sim GPU's evidence, whose SPDM nonce derives from those claims. A GPU report replayed
 * from another handshake, moved under another server's CPU report, or swapped after the CPU
 * report was made, is rejected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ccgate/gpuev.h"
#include "ccgate/gpusim.h"
#include "ccgate/policy.h"
#include "ccgate/ratls.h"
#include "ccgate/sim.h"

static struct {
    char dir[64];
    uint8_t ark[32], gpu_root[32];
    struct cg_provider *cpu;
    struct cg_gpu_provider *gpu;
    struct cg_ratls_key *key, *other_key;
    struct cg_policy policy;
} F;

static int setup(void **state)
{
    (void)state;
    char err[256], ark[65], gpu[65], json[1024];
    snprintf(F.dir, sizeof(F.dir), "/tmp/cg_test_gpu_binding_XXXXXX");
    if (mkdtemp(F.dir) == NULL || cg_sim_init(F.dir, F.ark) != 0 ||
        cg_gpusim_init(F.dir, F.gpu_root) != 0 ||
        cg_sim_provider_new(F.dir, CG_SOURCE_DIR "/CMakeLists.txt", &F.cpu) != 0 ||
        cg_gpusim_provider_new(F.dir, &F.gpu) != 0 || cg_ratls_key_new(&F.key) != 0 ||
        cg_ratls_key_new(&F.other_key) != 0)
        return -1;
    cg_hex(ark, sizeof(ark), F.ark, 32);
    cg_hex(gpu, sizeof(gpu), F.gpu_root, 32);
    snprintf(json, sizeof(json),
             "{\"sim\": {\"allow\": true, \"root_sha256\": \"%s\"}, \"snp\": {}, "
             "\"gpu\": {\"allow_sim\": true, \"sim_root_sha256\": \"%s\", \"count\": 1}}",
             ark, gpu);
    return cg_policy_parse(json, strlen(json), &F.policy, err, sizeof(err));
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    F.cpu->free(F.cpu);
    F.gpu->free(F.gpu);
    cg_ratls_key_free(F.key);
    cg_ratls_key_free(F.other_key);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", F.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The GPU bundle the sim GPU gives for claims of key k with this nonce and iat. */
static void gpu_bundle(struct cg_ratls_key *k, const uint8_t nonce[32], int64_t iat, uint8_t **out,
                       size_t *len)
{
    uint8_t gpu_nonce[32];
    struct cg_gpuev ev = {0};
    cg_ratls_gpu_nonce(k, (const uint8_t(*)[32])nonce, 1, iat, gpu_nonce);
    assert_int_equal(F.gpu->get(F.gpu, gpu_nonce, &ev), 0);
    assert_int_equal(cg_gpuev_encode(&ev, out, len), 0);
    cg_gpuev_clear(&ev);
}

/*
 * A certificate of key k for nonce: its claims hold gpu (the CPU report covers them), or,
 * when cert_gpu is not NULL, the certificate carries claims with cert_gpu instead.
 */
static void mint(struct cg_ratls_key *k, const uint8_t nonce[32], int64_t iat, const uint8_t *gpu,
                 size_t gpu_len, const uint8_t *cert_gpu, size_t cert_gpu_len, uint8_t **der,
                 size_t *der_len)
{
    uint8_t *claims, *cert_claims = NULL, rd[CG_REPORT_DATA_LEN], rd2[CG_REPORT_DATA_LEN];
    size_t claims_len, cert_claims_len = 0;
    struct cg_evidence ev = {0};
    assert_int_equal(cg_ratls_claims_ext(k, (const uint8_t(*)[32])nonce, 1, iat, gpu, gpu_len, NULL,
                                         &claims, &claims_len, rd),
                     0);
    assert_int_equal(F.cpu->get(F.cpu, rd, &ev), 0);
    if (cert_gpu != NULL)
        assert_int_equal(cg_ratls_claims_ext(k, (const uint8_t(*)[32])nonce, 1, iat, cert_gpu,
                                             cert_gpu_len, NULL, &cert_claims, &cert_claims_len,
                                             rd2),
                         0);
    assert_int_equal(cg_ratls_cert_new(k, cert_claims != NULL ? cert_claims : claims,
                                       cert_claims != NULL ? cert_claims_len : claims_len, &ev, iat,
                                       600, der, der_len),
                     0);
    cg_evidence_clear(&ev);
    free(claims);
    free(cert_claims);
}

static int verify(const uint8_t *der, size_t len, const uint8_t nonce[32],
                  struct cg_attestation *out, struct cg_verdict *v)
{
    memset(v, 0, sizeof(*v));
    return cg_ratls_verify(der, len, &F.policy, nonce, time(NULL), out, v);
}

static void test_genuine(void **state)
{
    (void)state;
    uint8_t nonce[32] = {1}, *gpu, *der;
    size_t gpu_len, der_len;
    int64_t iat = time(NULL);
    struct cg_attestation *a = malloc(sizeof(*a));
    struct cg_verdict v;
    gpu_bundle(F.key, nonce, iat, &gpu, &gpu_len);
    mint(F.key, nonce, iat, gpu, gpu_len, NULL, 0, &der, &der_len);
    assert_int_equal(verify(der, der_len, nonce, a, &v), 0);
    assert_true(a->gpu_appraised);
    assert_int_equal(a->n_gpus, 1);
    assert_true(a->gpus[0].sim && a->gpus[0].rims_checked);
    assert_int_equal(a->gpus[0].ocsp, CG_OCSP_GOOD);
    assert_string_equal(a->gpus[0].driver_version, CG_GPUSIM_DRIVER_VERSION);
    free(der);

    /* Without GPU evidence: rejected while the policy requires it. */
    mint(F.key, nonce, iat, NULL, 0, NULL, 0, &der, &der_len);
    assert_int_equal(verify(der, der_len, nonce, a, &v), CG_EPOLICY);
    assert_string_equal(v.check, "gpu.required");
    free(der);
    free(gpu);
    free(a);
}

/* The GPU report of one handshake (nonce 1) in the claims of another (nonce 2). */
static void test_replayed(void **state)
{
    (void)state;
    uint8_t n1[32] = {1}, n2[32] = {2}, *gpu, *der;
    size_t gpu_len, der_len;
    int64_t iat = time(NULL);
    struct cg_attestation *a = malloc(sizeof(*a));
    struct cg_verdict v;
    gpu_bundle(F.key, n1, iat, &gpu, &gpu_len);
    mint(F.key, n2, iat, gpu, gpu_len, NULL, 0, &der, &der_len);
    assert_int_equal(verify(der, der_len, n2, a, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.nonce");
    free(der);
    /* Same nonce, another iat: another GPU nonce too. */
    mint(F.key, n1, iat + 1, gpu, gpu_len, NULL, 0, &der, &der_len);
    assert_int_equal(verify(der, der_len, n1, a, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.nonce");
    free(der);
    free(gpu);
    free(a);
}

/* Server A's GPU report under server B's CPU report (another TLS key, same nonce). */
static void test_moved(void **state)
{
    (void)state;
    uint8_t nonce[32] = {3}, *gpu, *der;
    size_t gpu_len, der_len;
    int64_t iat = time(NULL);
    struct cg_attestation *a = malloc(sizeof(*a));
    struct cg_verdict v;
    gpu_bundle(F.key, nonce, iat, &gpu, &gpu_len);
    mint(F.other_key, nonce, iat, gpu, gpu_len, NULL, 0, &der, &der_len);
    assert_int_equal(verify(der, der_len, nonce, a, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.nonce");
    free(der);
    free(gpu);
    free(a);
}

/* GPU evidence swapped into the claims after the CPU report was made over other claims. */
static void test_swapped_after_cpu_report(void **state)
{
    (void)state;
    uint8_t nonce[32] = {4}, *gpu, *gpu2, *der;
    size_t gpu_len, gpu2_len, der_len;
    int64_t iat = time(NULL);
    struct cg_attestation *a = malloc(sizeof(*a));
    struct cg_verdict v;
    gpu_bundle(F.key, nonce, iat, &gpu, &gpu_len);
    gpu_bundle(F.key, nonce, iat, &gpu2, &gpu2_len); /* valid too: another responder nonce */
    assert_true(gpu_len != gpu2_len || memcmp(gpu, gpu2, gpu_len) != 0);
    mint(F.key, nonce, iat, gpu, gpu_len, gpu2, gpu2_len, &der, &der_len);
    assert_int_equal(verify(der, der_len, nonce, a, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "evidence.report_data");
    free(der);
    free(gpu);
    free(gpu2);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_genuine),
        cmocka_unit_test(test_replayed),
        cmocka_unit_test(test_moved),
        cmocka_unit_test(test_swapped_after_cpu_report),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
