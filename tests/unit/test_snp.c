/* SEV-SNP report parsing and verification against real AMD vectors and the sim chain. */
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

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ccgate/roots.h"
#include "ccgate/sim.h"
#include "ccgate/snp.h"

#include "vectors.h"

static struct blob load(const char *rel)
{
    return vectors_load(rel, 1 << 16);
}

/* The index-th certificate of a PEM file, as DER. */
static struct blob pem_cert(const char *rel, int index)
{
    struct blob pem = load(rel);
    BIO *bio = BIO_new_mem_buf(pem.data, (int)pem.len);
    X509 *x = NULL;
    for (int i = 0; i <= index; i++) {
        X509_free(x);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        assert_non_null(x);
    }
    struct blob b = {NULL, 0};
    int len = i2d_X509(x, &b.data);
    assert_true(len > 0);
    b.len = (size_t)len;
    X509_free(x);
    BIO_free(bio);
    free(pem.data);
    return b;
}

static time_t utc(int y, int mo, int d)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d};
    return timegm(&tm);
}

/* Verifies report against up to three certificates (NULL data ends the list). */
static int verify(struct blob report, struct blob c0, struct blob c1, struct blob c2,
                  const struct cg_snp_anchor *anchor, time_t at, struct cg_snp_report *r,
                  struct cg_verdict *v)
{
    const uint8_t *certs[3] = {c0.data, c1.data, c2.data};
    size_t lens[3] = {c0.len, c1.len, c2.len};
    size_t n = c0.data == NULL ? 0 : c1.data == NULL ? 1 : c2.data == NULL ? 2 : 3;
    memset(v, 0, sizeof(*v));
    return cg_snp_verify(report.data, report.len, certs, lens, n, anchor, at, r, v);
}

static const struct blob none = {NULL, 0};
static const struct cg_snp_anchor amd = {0, {0}};

static void test_roots_pinned(void **state)
{
    (void)state;
    /* ATTESTATION.md 1.4 fingerprints (SHA-256 of the DER). */
    const struct {
        const char *name, *sha256;
    } want[] = {
        {"amd/ark_milan.pem", "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"},
        {"amd/ark_genoa.pem", "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"},
        {"amd/ark_turin.pem", "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"},
        {"amd/ask_milan.pem", "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b"},
        {"amd/ask_genoa.pem", "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521"},
        {"amd/ask_turin.pem", "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct cg_root *r = cg_roots;
        while (r->name != NULL && strcmp(r->name, want[i].name) != 0)
            r++;
        assert_non_null(r->name);
        BIO *bio = BIO_new_mem_buf(r->pem, (int)r->len);
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        assert_non_null(x);
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        uint8_t h[32];
        char hex[65];
        assert_int_equal(EVP_Digest(der, (size_t)len, h, NULL, EVP_sha256(), NULL), 1);
        cg_hex(hex, sizeof(hex), h, 32);
        assert_string_equal(hex, want[i].sha256);
        OPENSSL_free(der);
        X509_free(x);
        BIO_free(bio);
    }
    /* The ASVKs are pinned too, for VLEK evidence that omits them. */
    int asvk = 0;
    for (const struct cg_root *r = cg_roots; r->name != NULL; r++)
        asvk += strncmp(r->name, "amd/asvk_", 9) == 0;
    assert_int_equal(asvk, 3);
}

/* parse then write gives back the same bytes, for every genuine report. */
static void test_round_trip(void **state)
{
    (void)state;
    const char *files[] = {"go-sev-guest/attestation.bin", "virtee-sev/report_milan.bin",
                           "trustee/snp/test-report.bin", "trustee/snp/test-vlek-report.bin"};
    for (size_t i = 0; i < 4; i++) {
        struct blob b = load(files[i]);
        struct cg_snp_report r;
        struct cg_verdict v;
        uint8_t out[CG_SNP_REPORT_SIZE];
        assert_int_equal(cg_snp_report_parse(b.data, b.len, &r, &v), 0);
        cg_snp_report_write(&r, out);
        assert_memory_equal(out, b.data, CG_SNP_REPORT_SIZE);
        free(b.data);
    }
}

static void test_parse_fields(void **state)
{
    (void)state;
    struct blob b = load("trustee/snp/test-vlek-report.bin");
    struct cg_snp_report r;
    struct cg_verdict v;
    assert_int_equal(cg_snp_report_parse(b.data, b.len, &r, &v), 0);
    assert_int_equal(r.version, 3);
    assert_int_equal(r.vmpl, 1);
    assert_int_equal(r.policy, 0x30000);
    assert_int_equal(r.signer_info, 4);
    assert_int_equal(r.platform_info, 0x27);
    assert_int_equal(r.reported_tcb, 0xd918000000000004ull);
    assert_int_equal(r.cpuid_fam_id, 0x19);
    assert_int_equal(r.cpuid_mod_id, 0x01);
    assert_int_equal(r.cpuid_step, 0x01);
    free(b.data);

    b = load("go-sev-guest/attestation.bin");
    assert_int_equal(cg_snp_report_parse(b.data, b.len, &r, &v), 0);
    char hex[129];
    cg_hex(hex, sizeof(hex), r.measurement, 48);
    assert_string_equal(hex, "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b"
                             "6bdf8a9ece31a5a608eb0cf2e4872b01");
    assert_int_equal(r.current_major, 1);
    assert_int_equal(r.current_minor, 49);
    assert_int_equal(r.current_build, 3);
    assert_int_equal(r.policy, 0xb0000);
    free(b.data);
}

/* One mutation of a genuine report and the check it must trip. */
static void expect_parse_fail(const uint8_t *orig, size_t off, uint8_t xor_mask, const char *check)
{
    uint8_t buf[CG_SNP_REPORT_SIZE];
    struct cg_snp_report r;
    struct cg_verdict v;
    memcpy(buf, orig, sizeof(buf));
    buf[off] ^= xor_mask;
    int rc = cg_snp_report_parse(buf, sizeof(buf), &r, &v);
    if (rc != CG_EEVIDENCE)
        fail_msg("byte 0x%03zx ^ 0x%02x: parsed, expected %s", off, xor_mask, check);
    assert_string_equal(v.check, check);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    struct blob v2 = load("virtee-sev/report_milan.bin");
    struct blob v3 = load("trustee/snp/test-vlek-report.bin");
    struct cg_snp_report r;
    struct cg_verdict v;
    assert_int_equal(cg_snp_report_parse(v2.data, v2.len - 1, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.report.size");
    expect_parse_fail(v2.data, 0x00, 0x02 ^ 0x01, "snp.report.version"); /* 1 */
    expect_parse_fail(v2.data, 0x00, 0x02 ^ 0x06, "snp.report.version"); /* 6 */
    expect_parse_fail(v2.data, 0x34, 0x03, "snp.report.signature_algo");
    expect_parse_fail(v2.data, 0x0A, 0x02, "snp.report.policy"); /* bit 17 cleared */
    expect_parse_fail(v2.data, 0x0B, 0x04, "snp.report.policy"); /* bit 26 */
    expect_parse_fail(v2.data, 0x30, 0x04, "snp.report.vmpl");
    expect_parse_fail(v2.data, 0x48, 0x20, "snp.report.signer_info");
    expect_parse_fail(v2.data, 0x48, 0x08, "snp.report.signing_key"); /* 2 */
    expect_parse_fail(v2.data, 0x48, 0x1c, "snp.report.signing_key"); /* 7: unsigned */
    const size_t reserved[] = {0x4C,  0x4F,  0x188, 0x18A, 0x19F, 0x1EB, 0x1EF,
                               0x1F8, 0x207, 0x208, 0x29F, 0x330, 0x49F};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        expect_parse_fail(v2.data, reserved[i], 0x01, "snp.report.reserved");
    /* v3 defines CPUID at 0x188..0x18A but keeps 0x18B..0x19F reserved. */
    expect_parse_fail(v3.data, 0x18B, 0x01, "snp.report.reserved");
    uint8_t buf[CG_SNP_REPORT_SIZE];
    memcpy(buf, v3.data, sizeof(buf));
    buf[0x188] ^= 1;
    assert_int_equal(cg_snp_report_parse(buf, sizeof(buf), &r, &v), 0);
    /* v5 defines the mitigation vectors at 0x1F8..0x207. */
    memcpy(buf, v3.data, sizeof(buf));
    buf[0] = 5;
    buf[0x1F8] = 1;
    buf[0x207] = 2;
    assert_int_equal(cg_snp_report_parse(buf, sizeof(buf), &r, &v), 0);
    assert_int_equal(r.launch_mit_vector, 1);
    assert_int_equal(r.current_mit_vector, 0x0200000000000000ull);
    buf[0x208] = 1;
    assert_int_equal(cg_snp_report_parse(buf, sizeof(buf), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.report.reserved");
    free(v2.data);
    free(v3.data);
}

static void test_tcb_decode(void **state)
{
    (void)state;
    struct cg_snp_tcb t;
    cg_snp_tcb_decode(0x7308000000000003ull, CG_SNP_MILAN, &t);
    assert_int_equal(t.bootloader, 3);
    assert_int_equal(t.tee, 0);
    assert_int_equal(t.snp, 8);
    assert_int_equal(t.microcode, 115);
    assert_int_equal(t.fmc, 0);
    cg_snp_tcb_decode(0xd918000000000004ull, CG_SNP_GENOA, &t);
    assert_int_equal(t.bootloader, 4);
    assert_int_equal(t.snp, 24);
    assert_int_equal(t.microcode, 217);
    /* Turin: fmc, bootloader, tee, snp in bytes 0-3, microcode in byte 7. */
    cg_snp_tcb_decode(0x0900000004030201ull, CG_SNP_TURIN, &t);
    assert_int_equal(t.fmc, 1);
    assert_int_equal(t.bootloader, 2);
    assert_int_equal(t.tee, 3);
    assert_int_equal(t.snp, 4);
    assert_int_equal(t.microcode, 9);
    assert_int_equal(t.raw, 0x0900000004030201ull);
    assert_string_equal(cg_snp_product_name(CG_SNP_MILAN), "Milan");
    assert_string_equal(cg_snp_product_name(CG_SNP_GENOA), "Genoa");
    assert_string_equal(cg_snp_product_name(CG_SNP_TURIN), "Turin");
    assert_string_equal(cg_snp_product_name(CG_SNP_PRODUCT_UNKNOWN), "unknown");
}

static void test_go_sev_guest(void **state)
{
    (void)state;
    struct blob rep = load("go-sev-guest/attestation.bin");
    struct blob vcek = load("go-sev-guest/vcek.testcer");
    struct blob ask = pem_cert("go-sev-guest/ask_ark_milan.pem", 0);
    struct blob ark = pem_cert("go-sev-guest/ask_ark_milan.pem", 1);
    struct cg_snp_report r;
    struct cg_verdict v;
    assert_int_equal(verify(rep, vcek, ask, ark, &amd, utc(2023, 1, 1), &r, &v), 0);
    assert_int_equal(r.product, CG_SNP_MILAN);
    assert_int_equal(r.vlek, 0);
    assert_int_equal(r.reported.bootloader, 2);
    assert_int_equal(r.reported.snp, 5);
    assert_int_equal(r.reported.microcode, 68);
    assert_true(r.policy & CG_SNP_POLICY_DEBUG);
    /* Without the ASK and ARK: the pinned ones for Milan are used. */
    assert_int_equal(verify(rep, vcek, none, none, &amd, utc(2023, 1, 1), &r, &v), 0);
    assert_int_equal(verify(rep, vcek, ask, none, &amd, utc(2023, 1, 1), &r, &v), 0);

    struct blob bad = load("go-sev-guest/attestation.TAMPERED_report_data_0x50.bin");
    assert_int_equal(verify(bad, vcek, ask, ark, &amd, utc(2023, 1, 1), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.signature");
    /* trustee's check_report_tcb_failure edit (REPORTED_TCB + 1): the signature fails first. */
    rep.data[0x180]++;
    assert_int_equal(verify(rep, vcek, ask, ark, &amd, utc(2023, 1, 1), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.signature");
    rep.data[0x180]--;

    /* The VCEK is valid 2022-09-24 -> 2029-09-24. */
    assert_int_equal(verify(rep, vcek, ask, ark, &amd, utc(2029, 10, 1), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.chain.validity");
    assert_non_null(strstr(v.actual, "expired"));
    assert_int_equal(verify(rep, vcek, ask, ark, &amd, utc(2022, 9, 1), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.chain.validity");

    /* Wrong product: Milan VCEK with the Genoa ASK, with the Milan ASVK, or the Genoa ARK. */
    struct blob genoa_ask = pem_cert("go-sev-guest/ask_ark_genoa.pem", 0);
    struct blob genoa_ark = pem_cert("go-sev-guest/ask_ark_genoa.pem", 1);
    struct blob asvk = pem_cert("go-sev-guest/ask_ark_milan_vlek.pem", 0);
    assert_int_equal(verify(rep, vcek, genoa_ask, none, &amd, utc(2023, 1, 1), &r, &v),
                     CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.ask");
    assert_string_equal(v.expected, "SEV-Milan");
    assert_string_equal(v.actual, "SEV-Genoa");
    assert_int_equal(verify(rep, vcek, asvk, none, &amd, utc(2023, 1, 1), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.ask");
    assert_int_equal(verify(rep, vcek, ask, genoa_ark, &amd, utc(2023, 1, 1), &r, &v),
                     CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.ark");

    /* Certificate count and encoding. */
    assert_int_equal(verify(rep, none, none, none, &amd, utc(2023, 1, 1), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.certs");
    struct blob junk = {ask.data, 100};
    assert_int_equal(verify(rep, junk, none, none, &amd, utc(2023, 1, 1), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.vcek.der");
    /* The ASK in the leaf's place: no productName. */
    assert_int_equal(verify(rep, ask, none, none, &amd, utc(2023, 1, 1), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.vcek.product");

    free(rep.data);
    free(bad.data);
    free(vcek.data);
    OPENSSL_free(ask.data);
    OPENSSL_free(ark.data);
    OPENSSL_free(genoa_ask.data);
    OPENSSL_free(genoa_ark.data);
    OPENSSL_free(asvk.data);
}

static void test_virtee(void **state)
{
    (void)state;
    struct blob rep = load("virtee-sev/report_milan.bin");
    struct blob vcek = load("virtee-sev/vcek_milan.der");
    struct blob bad_rep = load("virtee-sev/report_milan.tampered_byte21.bin");
    struct blob bad_vcek = load("virtee-sev/vcek_milan.tampered_byte40.der");
    struct cg_snp_report r;
    struct cg_verdict v;
    /* The VCEK is valid 2023-04-03 -> 2030-04-03. */
    time_t at = utc(2024, 1, 1);
    assert_int_equal(verify(rep, vcek, none, none, &amd, at, &r, &v), 0);
    assert_int_equal(r.reported.microcode, 115);
    assert_int_equal(r.reported.snp, 8);
    assert_int_equal(verify(bad_rep, vcek, none, none, &amd, at, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.signature");
    assert_int_equal(verify(rep, bad_vcek, none, none, &amd, at, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.chain");
    assert_non_null(strstr(v.actual, "signature failure"));
    /* Before the VCEK was issued. */
    assert_int_equal(verify(rep, vcek, none, none, &amd, utc(2023, 1, 1), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.chain.validity");
    /* Another chip's VCEK (go-sev-guest's): the chain is fine, the signature is not. */
    struct blob other = load("go-sev-guest/vcek.testcer");
    assert_int_equal(verify(rep, other, none, none, &amd, at, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.signature");
    /* A Turin VCEK: its chain to the pinned Turin ARK holds, it did not sign this report. */
    struct blob turin = load("virtee-sev/vcek_turin.der");
    assert_int_equal(verify(rep, turin, none, none, &amd, utc(2025, 1, 1), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.signature");
    free(rep.data);
    free(vcek.data);
    free(bad_rep.data);
    free(bad_vcek.data);
    free(other.data);
    free(turin.data);
}

static void test_trustee(void **state)
{
    (void)state;
    struct blob rep = load("trustee/snp/test-report.bin");
    struct blob vcek = load("trustee/snp/test-vcek.der");
    struct blob bad = load("trustee/snp/test-report.TAMPERED_byte42.bin");
    struct blob legacy = load("trustee/snp/test-vcek-invalid-legacy.der");
    struct blob newer = load("trustee/snp/test-vcek-invalid-new.der");
    struct cg_snp_report r;
    struct cg_verdict v;
    time_t at = utc(2024, 7, 1);
    assert_int_equal(verify(rep, vcek, none, none, &amd, at, &r, &v), 0);
    /* The VCEK certifies REPORTED_TCB (ucode 115), not CURRENT_TCB (ucode 206). */
    assert_int_equal(r.reported.microcode, 115);
    assert_int_equal(r.current.microcode, 206);
    assert_int_equal(r.guest_svn, 4);
    assert_int_equal(verify(bad, vcek, none, none, &amd, at, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.signature");
    /*
     * trustee's check_report_tcb_failure (REPORTED_TCB byte + 1) fails its TCB-only check;
     * here the signature, checked first, catches it (the TCB check alone:
     * test_post_signature_checks).
     */
    rep.data[0x180]++;
    assert_int_equal(verify(rep, vcek, none, none, &amd, at, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.signature");
    rep.data[0x180]--;
    /* check_milan_chain_signature_failure: the VCEK against the ASVK. */
    struct blob asvk = pem_cert("trustee/snp/milan_ask_ark_asvk.pem", 2);
    assert_int_equal(verify(rep, vcek, asvk, none, &amd, at, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.ask");
    OPENSSL_free(asvk.data);
    /* The malformed VCEKs parse but their signatures do not verify under the Milan ASK. */
    assert_int_equal(verify(rep, legacy, none, none, &amd, at, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.chain");
    assert_int_equal(verify(rep, newer, none, none, &amd, at, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.chain");
    free(rep.data);
    free(vcek.data);
    free(bad.data);
    free(legacy.data);
    free(newer.data);
}

static void test_trustee_vlek(void **state)
{
    (void)state;
    struct blob rep = load("trustee/snp/test-vlek-report.bin");
    struct blob vlek = load("trustee/snp/test-vlek.der");
    struct blob asvk = pem_cert("trustee/snp/milan_ask_ark_asvk.pem", 2);
    struct blob ask = pem_cert("trustee/snp/milan_ask_ark_asvk.pem", 0);
    struct blob ark = pem_cert("trustee/snp/milan_ask_ark_asvk.pem", 1);
    struct cg_snp_report r;
    struct cg_verdict v;
    /* The VLEK is valid 2024-12-10 -> 2025-12-10. */
    time_t at = utc(2025, 6, 1);
    assert_int_equal(verify(rep, vlek, asvk, ark, &amd, at, &r, &v), 0);
    assert_int_equal(r.vlek, 1);
    assert_int_equal(r.vmpl, 1);
    assert_int_equal(r.product, CG_SNP_MILAN);
    assert_int_equal(r.reported.microcode, 217);
    assert_int_equal(verify(rep, vlek, none, none, &amd, at, &r, &v), 0);
    assert_int_equal(verify(rep, vlek, none, none, &amd, utc(2026, 1, 1), &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.chain.validity");
    /* A VLEK must chain through the ASVK, not the ASK. */
    assert_int_equal(verify(rep, vlek, ask, none, &amd, at, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.ask");
    assert_string_equal(v.expected, "SEV-VLEK-Milan");
    /* The VLEK report claims VLEK signing: a VCEK of the same product does not match it. */
    struct blob vcek = load("trustee/snp/test-vcek.der");
    assert_int_equal(verify(rep, vcek, none, none, &amd, at, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.signature");
    free(rep.data);
    free(vlek.data);
    free(vcek.data);
    OPENSSL_free(asvk.data);
    OPENSSL_free(ask.data);
    OPENSSL_free(ark.data);
}

/* The sim chain lets a test sign reports with chosen fields: each post-signature check. */
static char sim_dir[64];
static struct cg_snp_anchor sim_anchor = {1, {0}};

static int sim_setup(void **state)
{
    (void)state;
    snprintf(sim_dir, sizeof(sim_dir), "/tmp/cg_test_snp_XXXXXX");
    if (mkdtemp(sim_dir) == NULL)
        return -1;
    return cg_sim_init(sim_dir, sim_anchor.sim_ark_sha256);
}

static int sim_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sim_dir);
    return system(cmd) == 0 ? 0 : -1;
}

struct sim_evidence {
    struct cg_evidence ev;
    struct cg_snp_report r;
};

static void sim_fresh(struct sim_evidence *s)
{
    char exe[128];
    struct cg_provider *p = NULL;
    uint8_t rd[64] = {1, 2, 3};
    struct cg_verdict v;
    snprintf(exe, sizeof(exe), "%s/chip_id", sim_dir);
    assert_int_equal(cg_sim_provider_new(sim_dir, exe, &p), 0);
    assert_int_equal(p->get(p, rd, &s->ev), 0);
    p->free(p);
    assert_int_equal(cg_snp_report_parse(s->ev.evidence, s->ev.evidence_len, &s->r, &v), 0);
}

/* Re-signs s->r into s->ev and verifies with the sim anchor. */
static int sim_resign_verify(struct sim_evidence *s, struct cg_verdict *v)
{
    struct cg_snp_report out;
    assert_int_equal(cg_sim_sign_report(sim_dir, &s->r, s->ev.evidence), 0);
    memset(v, 0, sizeof(*v));
    return cg_snp_verify(s->ev.evidence, s->ev.evidence_len, (const uint8_t *const *)s->ev.certs,
                         s->ev.cert_lens, s->ev.n_certs, &sim_anchor, time(NULL), &out, v);
}

static void expect_resigned(void (*edit)(struct cg_snp_report *), const char *check)
{
    struct sim_evidence s;
    struct cg_verdict v;
    sim_fresh(&s);
    edit(&s.r);
    assert_int_equal(sim_resign_verify(&s, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, check);
    cg_evidence_clear(&s.ev);
}

static void edit_ucode(struct cg_snp_report *r)
{
    r->reported_tcb += 1ull << 56;
}
static void edit_bl(struct cg_snp_report *r)
{
    r->reported_tcb += 1;
}
static void edit_tee(struct cg_snp_report *r)
{
    r->reported_tcb += 1ull << 8;
}
static void edit_snp(struct cg_snp_report *r)
{
    r->reported_tcb += 1ull << 48;
}
static void edit_tcb_reserved(struct cg_snp_report *r)
{
    r->reported_tcb |= 1ull << 24;
}
static void edit_chip(struct cg_snp_report *r)
{
    r->chip_id[63] ^= 1;
}
static void edit_mask_nonzero(struct cg_snp_report *r)
{
    r->signer_info |= 2;
}
static void edit_vlek(struct cg_snp_report *r)
{
    r->signer_info |= 1 << 2;
}
static void edit_genoa(struct cg_snp_report *r)
{
    r->cpuid_mod_id = 0x11;
}
static void edit_v2_cpuid(struct cg_snp_report *r)
{
    r->version = 2;
}
static void edit_policy(struct cg_snp_report *r)
{
    r->policy &= ~CG_SNP_POLICY_RESERVED1;
}

static void test_post_signature_checks(void **state)
{
    (void)state;
    struct sim_evidence s;
    struct cg_verdict v;
    sim_fresh(&s);
    assert_int_equal(sim_resign_verify(&s, &v), 0);
    cg_evidence_clear(&s.ev);
    expect_resigned(edit_ucode, "snp.vcek_tcb.microcode");
    expect_resigned(edit_bl, "snp.vcek_tcb.bootloader");
    expect_resigned(edit_tee, "snp.vcek_tcb.tee");
    expect_resigned(edit_snp, "snp.vcek_tcb.snp");
    expect_resigned(edit_tcb_reserved, "snp.reported_tcb");
    expect_resigned(edit_chip, "snp.hwid");
    expect_resigned(edit_mask_nonzero, "snp.chip_id");
    expect_resigned(edit_vlek, "snp.signing_key");
    expect_resigned(edit_genoa, "snp.product");
    expect_resigned(edit_v2_cpuid, "snp.report.reserved");
    expect_resigned(edit_policy, "snp.report.policy");

    /* MASK_CHIP_KEY with a zero CHIP_ID: nothing to compare, accepted. */
    sim_fresh(&s);
    s.r.signer_info |= 2;
    memset(s.r.chip_id, 0, sizeof(s.r.chip_id));
    assert_int_equal(sim_resign_verify(&s, &v), 0);
    cg_evidence_clear(&s.ev);
}

/*
 * Turin, which no genuine vector covers end to end: a Turin-style VCEK (productName "Turin",
 * fmcSPL, 8-byte hwID) issued here under the sim ASK, and a v3 report with Turin's CPUID and
 * TCB layout signed with it.
 */
struct turin {
    EVP_PKEY *key;
    struct blob vcek;
};

static EVP_PKEY *pem_key(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", sim_dir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

static void add_ext(X509 *x, const char *oid, const uint8_t *der, int len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    assert_int_equal(ASN1_OCTET_STRING_set(os, der, len), 1);
    X509_EXTENSION *ex = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
    assert_int_equal(X509_add_ext(x, ex, -1), 1);
    X509_EXTENSION_free(ex);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
}

/* wrapped: the hwID as a DER OCTET STRING (as some VCEKs carry it) rather than raw bytes. */
static void turin_make(struct turin *t, const uint8_t hwid[8], int wrapped, uint8_t fmc, uint8_t bl,
                       uint8_t tee, uint8_t snp, uint8_t ucode)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/ask.pem", sim_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *ask = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    EVP_PKEY *ask_key = pem_key("ask.key");
    t->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    assert_non_null(t->key);
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0), 1);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"SEV-VCEK", -1, -1,
                               0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, X509_get_subject_name(ask));
    X509_gmtime_adj(X509_getm_notBefore(x), -86400);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, t->key);
    const uint8_t v1[] = {0x02, 0x01, 0x01};
    const uint8_t product[] = {0x16, 0x05, 'T', 'u', 'r', 'i', 'n'};
    add_ext(x, "1.3.6.1.4.1.3704.1.1", v1, sizeof(v1));
    add_ext(x, "1.3.6.1.4.1.3704.1.2", product, sizeof(product));
    const struct {
        const char *oid;
        uint8_t val;
    } spl[] = {{"1.3.6.1.4.1.3704.1.3.9", fmc},
               {"1.3.6.1.4.1.3704.1.3.1", bl},
               {"1.3.6.1.4.1.3704.1.3.2", tee},
               {"1.3.6.1.4.1.3704.1.3.3", snp},
               {"1.3.6.1.4.1.3704.1.3.8", ucode}};
    for (size_t i = 0; i < 5; i++) {
        /* DER INTEGER, with a leading zero from 128 as AMD encodes it. */
        uint8_t der[4] = {0x02, 0x01, spl[i].val};
        int len = 3;
        if (spl[i].val >= 0x80) {
            der[1] = 2;
            der[2] = 0;
            der[3] = spl[i].val;
            len = 4;
        }
        add_ext(x, spl[i].oid, der, len);
    }
    uint8_t hw[10] = {0x04, 0x08};
    memcpy(hw + 2, hwid, 8);
    add_ext(x, "1.3.6.1.4.1.3704.1.4", wrapped ? hw : hw + 2, wrapped ? 10 : 8);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit(md, &pctx, EVP_sha384(), NULL, ask_key), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()), 1);
    assert_true(X509_sign_ctx(x, md) > 0);
    t->vcek.data = NULL;
    t->vcek.len = (size_t)i2d_X509(x, &t->vcek.data);
    EVP_MD_CTX_free(md);
    X509_NAME_free(name);
    X509_free(x);
    X509_free(ask);
    EVP_PKEY_free(ask_key);
}

/* Signs r with the Turin key into out, as the AMD-SP does (R and S little-endian). */
static void turin_sign(const struct turin *t, struct cg_snp_report *r, uint8_t *out)
{
    unsigned char der[256];
    size_t der_len = sizeof(der);
    memset(r->sig_r, 0, 72);
    memset(r->sig_s, 0, 72);
    cg_snp_report_write(r, out);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, t->key), 1);
    assert_int_equal(EVP_DigestSign(md, der, &der_len, out, CG_SNP_SIGNED_LEN), 1);
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    assert_non_null(sig);
    assert_true(BN_bn2lebinpad(ECDSA_SIG_get0_r(sig), r->sig_r, 72) == 72);
    assert_true(BN_bn2lebinpad(ECDSA_SIG_get0_s(sig), r->sig_s, 72) == 72);
    cg_snp_report_write(r, out);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
}

static int turin_verify(const struct turin *t, struct sim_evidence *s, struct cg_snp_report *out,
                        struct cg_verdict *v)
{
    turin_sign(t, &s->r, s->ev.evidence);
    const uint8_t *certs[3] = {t->vcek.data, s->ev.certs[1], s->ev.certs[2]};
    size_t lens[3] = {t->vcek.len, s->ev.cert_lens[1], s->ev.cert_lens[2]};
    memset(v, 0, sizeof(*v));
    return cg_snp_verify(s->ev.evidence, s->ev.evidence_len, certs, lens, 3, &sim_anchor,
                         time(NULL), out, v);
}

static void test_turin(void **state)
{
    (void)state;
    const uint8_t hwid[8] = {0x1e, 0x55, 0x0a, 0x8e, 0xe5, 0xcf, 0x9f, 0x4d};
    struct turin t;
    struct sim_evidence s;
    struct cg_snp_report r;
    struct cg_verdict v;
    turin_make(&t, hwid, 0, 1, 2, 3, 4, 0xd9);
    sim_fresh(&s);
    s.r.cpuid_fam_id = 0x1A;
    s.r.cpuid_mod_id = 0x02;
    /* Turin TCB_VERSION: fmc, bootloader, tee, snp in bytes 0-3, microcode in byte 7. */
    s.r.reported_tcb = 0xd900000004030201ull;
    memset(s.r.chip_id, 0, 64);
    memcpy(s.r.chip_id, hwid, 8);
    assert_int_equal(turin_verify(&t, &s, &r, &v), 0);
    assert_int_equal(r.product, CG_SNP_TURIN);
    assert_int_equal(r.reported.fmc, 1);
    assert_int_equal(r.reported.bootloader, 2);
    assert_int_equal(r.reported.tee, 3);
    assert_int_equal(r.reported.snp, 4);
    assert_int_equal(r.reported.microcode, 0xd9);
    /* Only the first 8 bytes of CHIP_ID are the Turin hwID. */
    s.r.chip_id[8] = 0x77;
    assert_int_equal(turin_verify(&t, &s, &r, &v), 0);
    s.r.chip_id[7] ^= 1;
    assert_int_equal(turin_verify(&t, &s, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.hwid");
    s.r.chip_id[7] ^= 1;
    s.r.reported_tcb ^= 0x03; /* fmc 1 -> 2 */
    assert_int_equal(turin_verify(&t, &s, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.vcek_tcb.fmc");
    assert_string_equal(v.expected, "2");
    assert_string_equal(v.actual, "1");
    s.r.reported_tcb ^= 0x03;
    s.r.reported_tcb |= 1ull << 40; /* a reserved byte in Turin's layout */
    assert_int_equal(turin_verify(&t, &s, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.reported_tcb");
    s.r.reported_tcb &= ~(1ull << 40);
    /* A Turin VCEK with Milan's CPUID. */
    s.r.cpuid_fam_id = 0x19;
    s.r.cpuid_mod_id = 0x01;
    assert_int_equal(turin_verify(&t, &s, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.product");
    s.r.cpuid_fam_id = 0x1A;
    s.r.cpuid_mod_id = 0x02;
    EVP_PKEY_free(t.key);
    OPENSSL_free(t.vcek.data);
    /* The same with the hwID wrapped in an OCTET STRING. */
    turin_make(&t, hwid, 1, 1, 2, 3, 4, 0xd9);
    assert_int_equal(turin_verify(&t, &s, &r, &v), 0);
    s.r.chip_id[0] ^= 1;
    assert_int_equal(turin_verify(&t, &s, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.hwid");
    cg_evidence_clear(&s.ev);
    EVP_PKEY_free(t.key);
    OPENSSL_free(t.vcek.data);
}

/*
 * Fail-closed: a flipped bit anywhere in the report or the VCEK is refused (every 7th byte,
 * to keep the run short: each try verifies an RSA-4096 chain).
 */
static void test_every_bit_matters(void **state)
{
    (void)state;
    struct blob rep = load("virtee-sev/report_milan.bin");
    struct blob vcek = load("virtee-sev/vcek_milan.der");
    struct cg_snp_report r;
    struct cg_verdict v;
    time_t at = utc(2024, 1, 1);
    assert_int_equal(verify(rep, vcek, none, none, &amd, at, &r, &v), 0);
    for (size_t i = 0; i < rep.len; i += 7) {
        rep.data[i] ^= 0x10;
        if (verify(rep, vcek, none, none, &amd, at, &r, &v) != CG_EEVIDENCE)
            fail_msg("report byte 0x%03zx flipped: accepted", i);
        rep.data[i] ^= 0x10;
    }
    for (size_t i = 1; i < vcek.len; i += 7) {
        vcek.data[i] ^= 0x01;
        if (verify(rep, vcek, none, none, &amd, at, &r, &v) != CG_EEVIDENCE)
            fail_msg("VCEK byte %zu flipped: accepted", i);
        vcek.data[i] ^= 0x01;
    }
    free(rep.data);
    free(vcek.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roots_pinned), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_parse_fields), cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_tcb_decode),   cmocka_unit_test(test_go_sev_guest),
        cmocka_unit_test(test_virtee),       cmocka_unit_test(test_trustee),
        cmocka_unit_test(test_trustee_vlek), cmocka_unit_test(test_post_signature_checks),
        cmocka_unit_test(test_turin),        cmocka_unit_test(test_every_bit_matters),
    };
    return cmocka_run_group_tests(tests, sim_setup, sim_teardown);
}
