/* The simulated GPU through the whole GPU appraisal: report, chain, FWID, nonce, RIMs and
 * their matching, stapled OCSP, policy, and the evidence bundle the RA-TLS claims carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccgate/gpu.h"
#include "ccgate/gpuev.h"
#include "ccgate/gpusim.h"

static char dir[64], other[64];
static uint8_t root_sha[32];
static struct cg_gpusim *sim, *stranger;
static time_t now;

static int setup(void **state)
{
    (void)state;
    uint8_t unused[32];
    snprintf(dir, sizeof(dir), "/tmp/cg_test_gpuev_XXXXXX");
    snprintf(other, sizeof(other), "/tmp/cg_test_gpuev_XXXXXX");
    now = time(NULL);
    if (mkdtemp(dir) == NULL || mkdtemp(other) == NULL || cg_gpusim_init(dir, root_sha) != 0 ||
        cg_gpusim_init(other, unused) != 0 || cg_gpusim_open(dir, &sim) != 0 ||
        cg_gpusim_open(other, &stranger) != 0)
        return -1;
    /* A second init keeps what is there. */
    return cg_gpusim_init(dir, unused) == 0 && memcmp(unused, root_sha, 32) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[160];
    cg_gpusim_free(sim);
    cg_gpusim_free(stranger);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, other);
    return system(cmd) == 0 ? 0 : -1;
}

static struct cg_gpu_policy policy(void)
{
    struct cg_gpu_policy p = {0};
    p.present = p.required = 1;
    p.min_count = 1;
    p.allow_sim = p.has_sim_root = 1;
    memcpy(p.sim_root_sha256, root_sha, 32);
    p.require_rims = 1;
    p.ocsp = CG_GPU_OCSP_REQUIRE;
    return p;
}

/* One GPU's evidence and collateral, each piece replaceable by a test. */
struct fixture {
    struct cg_gpusim_report_opts o;
    uint8_t *report, *drv, *vb, *ocsp[4];
    size_t report_len, drv_len, vb_len, ocsp_lens[4], n_ocsp;
    char *chain_pem;
    size_t chain_len;
    struct cg_gpu_chain chain;
};

static void ocsp_add(struct fixture *f, struct cg_gpusim *s, enum cg_gpusim_cert c, int revoked,
                     time_t rev_at, time_t this_upd, time_t next_upd)
{
    assert_int_equal(cg_gpusim_ocsp(s, c, revoked, rev_at, this_upd, next_upd, &f->ocsp[f->n_ocsp],
                                    &f->ocsp_lens[f->n_ocsp]),
                     0);
    f->n_ocsp++;
}

static void make(struct fixture *f, const struct cg_gpusim_report_opts *o, int ocsp)
{
    memset(f, 0, sizeof(*f));
    f->o = *o;
    assert_int_equal(cg_gpusim_report(sim, o, &f->report, &f->report_len), 0);
    assert_int_equal(cg_gpusim_chain_pem(sim, &f->chain_pem, &f->chain_len), 0);
    assert_int_equal(cg_gpu_chain_load((uint8_t *)f->chain_pem, f->chain_len, &f->chain, NULL), 0);
    assert_int_equal(cg_gpusim_rim(sim, CG_GPUSIM_RIM_DRIVER, &f->drv, &f->drv_len), 0);
    assert_int_equal(cg_gpusim_rim(sim, CG_GPUSIM_RIM_VBIOS, &f->vb, &f->vb_len), 0);
    if (ocsp) {
        ocsp_add(f, sim, CG_GPUSIM_LEAF, 0, 0, now - 60, now + 86400);
        ocsp_add(f, sim, CG_GPUSIM_RIM_SIGNER, 0, 0, now - 60, now + 86400);
    }
}

static void unmake(struct fixture *f)
{
    free(f->report);
    free(f->drv);
    free(f->vb);
    for (size_t i = 0; i < f->n_ocsp; i++)
        free(f->ocsp[i]);
    free(f->chain_pem);
    cg_gpu_chain_clear(&f->chain);
}

static int run(struct fixture *f, const struct cg_gpu_policy *p, const uint8_t *nonce,
               struct cg_gpuev_result *res, struct cg_verdict *v)
{
    struct cg_gpuev_collateral col;
    memset(&col, 0, sizeof(col));
    col.driver_rim = f->drv, col.vbios_rim = f->vb;
    col.driver_rim_len = f->drv_len, col.vbios_rim_len = f->vb_len;
    for (size_t i = 0; i < f->n_ocsp; i++) {
        col.ocsp.resp[i] = f->ocsp[i];
        col.ocsp.lens[i] = f->ocsp_lens[i];
    }
    col.ocsp.n = f->n_ocsp;
    memset(v, 0, sizeof(*v));
    return cg_gpuev_verify_one(f->report, f->report_len, &f->chain, &col, p, nonce, now, res, v);
}

/* A fixture from opts must fail with check under policy p. */
static void fails(const struct cg_gpusim_report_opts *o, const struct cg_gpu_policy *p,
                  const char *check)
{
    struct fixture f;
    struct cg_gpuev_result res;
    struct cg_verdict v;
    make(&f, o, 1);
    assert_int_not_equal(run(&f, p, o->nonce, &res, &v), 0);
    assert_string_equal(v.check, check);
    assert_true(v.expected[0] != '\0' && v.actual[0] != '\0');
    unmake(&f);
}

static void test_genuine(void **state)
{
    (void)state;
    struct cg_gpusim_report_opts o;
    memset(&o, 0, sizeof(o));
    memset(o.nonce, 0x42, 32);
    struct fixture f;
    struct cg_gpuev_result res;
    struct cg_verdict v;
    struct cg_gpu_policy p = policy();
    make(&f, &o, 1);
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), 0);
    assert_true(res.sim && res.rims_checked);
    assert_int_equal(res.ocsp, CG_OCSP_GOOD);
    assert_int_equal(res.dev.arch, CG_GPU_HOPPER);
    assert_string_equal(res.driver_version, CG_GPUSIM_DRIVER_VERSION);
    assert_string_equal(res.vbios_version, CG_GPUSIM_VBIOS_VERSION);
    /* The policy lists both versions (the VBIOS in another case). */
    strcpy(p.drivers[p.n_drivers++], CG_GPUSIM_DRIVER_VERSION);
    strcpy(p.vbios[p.n_vbios++], "96.00.99.00.01");
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), 0);
    /* Without the sim allowed, the sim root is not NVIDIA's. */
    p.allow_sim = 0;
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.chain.root");
    unmake(&f);
}

static void test_report_checks(void **state)
{
    (void)state;
    struct cg_gpusim_report_opts o;
    memset(&o, 0, sizeof(o));
    struct cg_gpu_policy p = policy();
    struct fixture f;
    struct cg_gpuev_result res;
    struct cg_verdict v;
    make(&f, &o, 1);
    uint8_t other_nonce[32] = {1};
    assert_int_equal(run(&f, &p, other_nonce, &res, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.nonce");
    f.report[37 + 8 + 7 + 1] ^= 1; /* a byte of block 1's value */
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.signature");
    unmake(&f);

    o.tamper_fwid = 1;
    fails(&o, &p, "gpu.fwid");
}

static void test_measurements(void **state)
{
    (void)state;
    struct cg_gpusim_report_opts o;
    memset(&o, 0, sizeof(o));
    struct cg_gpu_policy p = policy();
    o.tamper_block = 2; /* RIM index 1: the VBIOS RIM's */
    fails(&o, &p, "gpu.measurement.vbios");
    o.tamper_block = 30; /* RIM index 29: the driver RIM's */
    fails(&o, &p, "gpu.measurement.driver");
    /* The NVDEC0 index is skipped only when the report says NVDEC0 is disabled. */
    o.tamper_block = CG_GPUSIM_NVDEC_INDEX + 1;
    o.nvdec0_status = CG_SPDM_NVDEC_DISABLED;
    struct fixture f;
    struct cg_gpuev_result res;
    struct cg_verdict v;
    make(&f, &o, 1);
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), 0);
    unmake(&f);
    o.nvdec0_status = CG_SPDM_NVDEC_ENABLED;
    fails(&o, &p, "gpu.measurement.driver");
    o.nvdec0_status = 0x12;
    fails(&o, &p, "gpu.nvdec0_status");
}

static void test_rims(void **state)
{
    (void)state;
    struct cg_gpusim_report_opts o;
    memset(&o, 0, sizeof(o));
    struct cg_gpu_policy p = policy();
    o.driver_version = "555.55.55";
    fails(&o, &p, "gpu.rim.driver_version");
    o.driver_version = NULL;

    struct fixture f;
    struct cg_gpuev_result res;
    struct cg_verdict v;
    make(&f, &o, 1);
    /* The driver RIM given as the VBIOS RIM. */
    uint8_t *vb = f.vb;
    size_t vb_len = f.vb_len;
    f.vb = f.drv, f.vb_len = f.drv_len;
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.rim.vbios_version");
    /* A VBIOS RIM that also claims an index of the driver RIM. */
    assert_int_equal(cg_gpusim_rim(sim, CG_GPUSIM_RIM_VBIOS_OVERLAP, &f.vb, &f.vb_len), 0);
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.rim.index_conflict");
    free(f.vb);
    /* A RIM byte changed: its signature fails. */
    f.vb = vb, f.vb_len = vb_len;
    char *hit = strstr((char *)f.drv, "Hash0=\"");
    assert_non_null(hit);
    hit[8] = hit[8] == '0' ? '1' : '0';
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.rim.signature");
    /* No RIMs: refused while the policy requires them, accepted (unchecked) otherwise. */
    uint8_t *drv = f.drv;
    f.drv = NULL;
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), CG_EPOLICY);
    assert_string_equal(v.check, "gpu.rim.missing");
    p.require_rims = 0;
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), 0);
    assert_false(res.rims_checked);
    f.drv = drv;
    unmake(&f);
}

static void test_ocsp(void **state)
{
    (void)state;
    struct cg_gpusim_report_opts o;
    memset(&o, 0, sizeof(o));
    struct cg_gpu_policy p = policy();
    struct fixture f;
    struct cg_gpuev_result res;
    struct cg_verdict v;
    struct {
        enum cg_gpusim_cert cert;
        int revoked;
        time_t rev_at, this_upd, next_upd;
        struct cg_gpusim *signer;
        const char *check; /* NULL: accepted */
    } cases[] = {
        {CG_GPUSIM_LEAF, 0, 0, now - 60, now - 30, sim, "gpu.ocsp.device.next_update"},
        {CG_GPUSIM_LEAF, 0, 0, now + 3600, now + 7200, sim, "gpu.ocsp.device.this_update"},
        {CG_GPUSIM_LEAF, 1, now - 3 * 86400, now - 60, now + 60, sim, "gpu.ocsp.device.status"},
        {CG_GPUSIM_LEAF, 1, now - 3600, now - 60, now + 60, sim, NULL}, /* within 48 h */
        {CG_GPUSIM_LEAF, 0, 0, now - 60, now + 60, stranger, "gpu.ocsp.device.missing"},
        {CG_GPUSIM_RIM_SIGNER, 1, now - 3 * 86400, now - 60, now + 60, sim,
         "gpu.ocsp.driver_rim.status"},
    };
    p.ocsp_grace_s = 48 * 3600;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        make(&f, &o, 0);
        ocsp_add(&f, cases[i].signer, cases[i].cert, cases[i].revoked, cases[i].rev_at,
                 cases[i].this_upd, cases[i].next_upd);
        enum cg_gpusim_cert rest =
            cases[i].cert == CG_GPUSIM_LEAF ? CG_GPUSIM_RIM_SIGNER : CG_GPUSIM_LEAF;
        ocsp_add(&f, sim, rest, 0, 0, now - 60, now + 60);
        int rc = run(&f, &p, o.nonce, &res, &v);
        if (cases[i].check == NULL) {
            assert_int_equal(rc, 0);
            assert_int_equal(res.ocsp, CG_OCSP_REVOKED_IN_GRACE);
        } else {
            assert_int_equal(rc, CG_EEVIDENCE);
            assert_string_equal(v.check, cases[i].check);
        }
        unmake(&f);
    }
    /* A response about the right certificate signed by another key. */
    make(&f, &o, 1);
    uint8_t *good = f.ocsp[0];
    assert_true(f.ocsp_lens[0] > 120);
    f.ocsp[0][f.ocsp_lens[0] - 10] ^= 0x01; /* inside the signature */
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), CG_EEVIDENCE);
    assert_true(strcmp(v.check, "gpu.ocsp.device.signature") == 0 ||
                strcmp(v.check, "gpu.ocsp.device.missing") == 0);
    f.ocsp[0] = good;
    /* OCSP off: no responses needed. */
    for (size_t i = 0; i < f.n_ocsp; i++)
        f.ocsp_lens[i] = 0;
    p.ocsp = CG_GPU_OCSP_OFF;
    assert_int_equal(run(&f, &p, o.nonce, &res, &v), 0);
    assert_int_equal(res.ocsp, CG_OCSP_NOT_CHECKED);
    unmake(&f);
}

static void test_policy_versions(void **state)
{
    (void)state;
    struct cg_gpusim_report_opts o;
    memset(&o, 0, sizeof(o));
    struct cg_gpu_policy p = policy();
    strcpy(p.drivers[p.n_drivers++], "550.90.07");
    fails(&o, &p, "gpu.driver_version");
    p = policy();
    strcpy(p.vbios[p.n_vbios++], "96.00.9f.00.01");
    fails(&o, &p, "gpu.vbios_version");
}

/* The bundle: encode, decode, and the per-bundle checks. */
static void test_bundle(void **state)
{
    (void)state;
    struct cg_gpusim_report_opts o;
    memset(&o, 0, sizeof(o));
    memset(o.nonce, 7, 32);
    struct fixture f;
    make(&f, &o, 1);
    struct cg_gpuev e = {0};
    e.n_gpus = 1;
    strcpy(e.gpus[0].arch, "HOPPER");
    e.gpus[0].report = f.report;
    e.gpus[0].report_len = f.report_len;
    e.gpus[0].chain_pem = f.chain_pem;
    e.gpus[0].chain_len = f.chain_len;
    e.gpus[0].cc_mode = 1;
    e.rims[0] = f.drv, e.rim_lens[0] = f.drv_len;
    e.rims[1] = f.vb, e.rim_lens[1] = f.vb_len;
    e.n_rims = 2;
    for (size_t i = 0; i < f.n_ocsp; i++)
        e.ocsp[i] = f.ocsp[i], e.ocsp_lens[i] = f.ocsp_lens[i];
    e.n_ocsp = f.n_ocsp;
    uint8_t *buf;
    size_t len;
    assert_int_equal(cg_gpuev_encode(&e, &buf, &len), 0);
    assert_non_null(strstr((char *)buf, CG_GPUEV_MEDIA_TYPE));

    struct cg_gpuev d;
    struct cg_verdict v;
    struct cg_gpuev_result res[CG_GPUEV_MAX_GPUS];
    size_t n = 0;
    struct cg_gpu_policy p = policy();
    assert_int_equal(cg_gpuev_decode(buf, len, &d, &v), 0);
    assert_int_equal(d.n_gpus, 1);
    assert_int_equal(d.gpus[0].report_len, f.report_len);
    assert_memory_equal(d.gpus[0].report, f.report, f.report_len);
    assert_int_equal(cg_gpuev_verify(&d, &p, o.nonce, now, res, &n, &v), 0);
    assert_int_equal(n, 1);
    assert_true(res[0].rims_checked);
    p.count = 2;
    assert_int_equal(cg_gpuev_verify(&d, &p, o.nonce, now, res, &n, &v), CG_EPOLICY);
    assert_string_equal(v.check, "gpu.count");
    p = policy();
    p.min_count = 2;
    assert_int_equal(cg_gpuev_verify(&d, &p, o.nonce, now, res, &n, &v), CG_EPOLICY);
    assert_string_equal(v.check, "gpu.min_count");
    p = policy();
    d.gpus[0].devtools = 1;
    assert_int_equal(cg_gpuev_verify(&d, &p, o.nonce, now, res, &n, &v), CG_EPOLICY);
    assert_string_equal(v.check, "gpu.devtools");
    d.gpus[0].devtools = 0;
    d.gpus[0].cc_mode = 0;
    assert_int_equal(cg_gpuev_verify(&d, &p, o.nonce, now, res, &n, &v), CG_EPOLICY);
    assert_string_equal(v.check, "gpu.cc_mode");
    cg_gpuev_clear(&d);

    /* Every truncation and a few edits are refused, never crash. */
    for (size_t cut = 0; cut < len; cut += 97) {
        assert_int_equal(cg_gpuev_decode(buf, cut, &d, &v), CG_EEVIDENCE);
        assert_true(strncmp(v.check, "gpu.", 4) == 0);
    }
    char *t = strstr((char *)buf, "vnd.veraison");
    t[4] = 'X';
    assert_int_equal(cg_gpuev_decode(buf, len, &d, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.evidence");
    free(buf);
    unmake(&f);
}

static void test_nonce_derivation(void **state)
{
    (void)state;
    uint8_t pk[32] = {1}, n1[2][32] = {{2}, {3}}, a[32], b[32];
    cg_gpuev_nonce(pk, 1000, n1, 2, a);
    cg_gpuev_nonce(pk, 1000, n1, 2, b);
    assert_memory_equal(a, b, 32);
    cg_gpuev_nonce(pk, 1001, n1, 2, b);
    assert_memory_not_equal(a, b, 32);
    cg_gpuev_nonce(pk, 1000, n1, 1, b);
    assert_memory_not_equal(a, b, 32);
    pk[0] = 9;
    cg_gpuev_nonce(pk, 1000, n1, 2, b);
    assert_memory_not_equal(a, b, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_genuine),      cmocka_unit_test(test_report_checks),
        cmocka_unit_test(test_measurements), cmocka_unit_test(test_rims),
        cmocka_unit_test(test_ocsp),         cmocka_unit_test(test_policy_versions),
        cmocka_unit_test(test_bundle),       cmocka_unit_test(test_nonce_derivation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
