/* NVIDIA GPU report verification (SPDM parse, signature, chain, FWID, nonce) on real H100
 * vectors from nvtrust and trustee. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ccgate/gpu.h"
#include "ccgate/roots.h"
#include "ccgate/spdm.h"

#include "vectors.h"

#define NONCE_SAMPLE "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
#define NONCE_COCO "87d8e24ab336adafe228d49e83d745f6dba4ae505372b6a5704820856b343fec"
#define FWID_SAMPLE                                                                                \
    "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b"  \
    "1f75d"

static struct blob load(const char *rel)
{
    return vectors_load(rel, 1 << 16);
}

/* A report file (hex text) as bytes. */
static struct blob report(const char *rel)
{
    struct blob t = load(rel), b = {NULL, 0};
    assert_int_equal(cg_spdm_read(t.data, t.len, &b.data, &b.len), 0);
    free(t.data);
    return b;
}

static void chain(const char *rel, struct cg_gpu_chain *c)
{
    struct blob t = load(rel);
    struct cg_verdict v;
    assert_int_equal(cg_gpu_chain_load(t.data, t.len, c, &v), 0);
    free(t.data);
}

static const uint8_t *nonce(const char *hex, uint8_t out[32])
{
    assert_int_equal(cg_unhex(out, 32, hex), 0);
    return out;
}

/* Verifies and returns rc; check (when not NULL) must be the verdict's check. */
static int verify(const char *rep, const char *certs, const char *nonce_hex, const char *check)
{
    struct blob b = report(rep);
    struct cg_gpu_chain c;
    chain(certs, &c);
    uint8_t n[32];
    struct cg_spdm_report *r = malloc(sizeof(*r));
    struct cg_gpu_device d;
    struct cg_verdict v = {0};
    const struct cg_gpu_anchor anchor = {0};
    assert_non_null(r);
    int rc =
        cg_gpu_verify_report(b.data, b.len, &c, &anchor,
                             nonce_hex != NULL ? nonce(nonce_hex, n) : NULL, time(NULL), r, &d, &v);
    if (check != NULL) {
        assert_int_not_equal(rc, 0);
        assert_string_equal(v.check, check);
        assert_true(v.expected[0] != '\0' && v.actual[0] != '\0');
    }
    free(r);
    cg_gpu_chain_clear(&c);
    free(b.data);
    return rc;
}

static void test_root_pinned(void **state)
{
    (void)state;
    const struct cg_root *r = cg_roots;
    while (r->name != NULL && strcmp(r->name, "nvidia/device_identity_ca.pem") != 0)
        r++;
    assert_non_null(r->name);
    BIO *b = BIO_new_mem_buf(r->pem, (int)r->len);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    assert_non_null(x);
    uint8_t md[32];
    unsigned n = 0;
    char hex[65];
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
    cg_hex(hex, sizeof(hex), md, 32);
    assert_string_equal(hex, "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48");
    X509_free(x);
    BIO_free(b);
}

static void test_parse_sample(void **state)
{
    (void)state;
    struct blob b = report("nvtrust/hopperAttestationReport.txt");
    assert_int_equal(b.len, 4117);
    struct cg_spdm_report *r = malloc(sizeof(*r));
    struct cg_verdict v;
    assert_int_equal(cg_spdm_parse(b.data, b.len, r, &v), 0);
    char hex[97];
    cg_hex(hex, sizeof(hex), r->nonce, 32);
    assert_string_equal(hex, NONCE_SAMPLE);
    assert_int_equal(r->n_blocks, 64);
    assert_int_equal(r->signed_len, 4117 - 96);
    assert_string_equal(r->driver_version, "550.90.07");
    assert_string_equal(r->vbios_version, "96.00.9f.00.01");
    assert_string_equal(r->chip_sku, "882");
    assert_string_equal(r->project, "1010");
    assert_string_equal(r->project_sku, "0200");
    assert_true(r->has_nvdec0 && r->nvdec0_status == CG_SPDM_NVDEC_DISABLED);
    assert_true(r->has_ppcie && r->ppcie_status == 0x55);
    cg_hex(hex, sizeof(hex), r->fwid, 48);
    assert_string_equal(hex, FWID_SAMPLE);
    const struct cg_spdm_block *blk = cg_spdm_block(r, 2);
    assert_non_null(blk);
    assert_int_equal(blk->len, 48);
    cg_hex(hex, sizeof(hex), blk->value, 48);
    assert_string_equal(hex, "8048dfd18fe229bf16eb9d30cca0f11a24dafe6eb731de1462984645a0b189b77c4e"
                             "4e17de727a5e19e3d07de51da338");
    assert_null(cg_spdm_block(r, 65));

    /* Every truncation fails with a named field, never a crash. */
    for (size_t n = 0; n < b.len; n++) {
        memset(&v, 0, sizeof(v));
        assert_int_not_equal(cg_spdm_parse(b.data, n, r, &v), 0);
        assert_true(strncmp(v.check, "gpu.spdm.", 9) == 0);
    }
    free(r);
    free(b.data);
}

/* A mutated copy of the sample must fail parsing with this check. */
static void parse_fails(size_t off, uint8_t val, size_t extra, const char *check)
{
    struct blob b = report("nvtrust/hopperAttestationReport.txt");
    uint8_t *m = calloc(1, b.len + extra);
    memcpy(m, b.data, b.len);
    if (off < b.len + extra)
        m[off] = val;
    struct cg_spdm_report *r = malloc(sizeof(*r));
    struct cg_verdict v = {0};
    assert_int_not_equal(cg_spdm_parse(m, b.len + extra, r, &v), 0);
    assert_string_equal(v.check, check);
    free(r);
    free(m);
    free(b.data);
}

static void test_parse_negatives(void **state)
{
    (void)state;
    parse_fails(0, 0x12, 0, "gpu.spdm.request.version");
    parse_fails(1, 0x81, 0, "gpu.spdm.request.code");
    parse_fails(2, 0x00, 0, "gpu.spdm.request.param1");
    parse_fails(37, 0x10, 0, "gpu.spdm.response.version");
    parse_fails(38, 0x61, 0, "gpu.spdm.response.code");
    parse_fails(37 + 4, 63, 0, "gpu.spdm.measurement_record"); /* NumberOfBlocks */
    parse_fails(37 + 7, 0x01, 0, "gpu.spdm.measurement_record_length");
    parse_fails(37 + 8, 0, 0, "gpu.spdm.block.index");      /* first block index 0 */
    parse_fails(37 + 8 + 55, 1, 0, "gpu.spdm.block.index"); /* second block repeats 1 */
    parse_fails(37 + 8 + 1, 2, 0, "gpu.spdm.block.spec");
    parse_fails(37 + 8 + 2, 52, 0, "gpu.spdm.block.size");
    parse_fails(4117, 0x01, 1, "gpu.spdm.trailing");       /* non-zero padding */
    parse_fails(4117 + 16, 0x00, 17, "gpu.spdm.trailing"); /* too much padding */
    /* The opaque data starts after 8 + 3520 + 32 + 2 response bytes: type 6 VBIOS first. */
    size_t op = 37 + 8 + 3520 + 32 + 2;
    parse_fails(op, 3, 0, "gpu.spdm.opaque.driver_version"); /* VBIOS bytes as text */
    parse_fails(op + 2, 9, 0, "gpu.spdm.opaque.vbios_version");
    parse_fails(op + 12, 6, 0, "gpu.spdm.opaque"); /* BOARD_ID retyped: VBIOS twice */
}

static void test_read_forms(void **state)
{
    (void)state;
    struct blob hex = load("nvtrust/hopperAttestationReport.txt"), raw = {NULL, 0}, again;
    assert_int_equal(cg_spdm_read(hex.data, hex.len, &raw.data, &raw.len), 0);
    assert_int_equal(cg_spdm_read(raw.data, raw.len, &again.data, &again.len), 0);
    assert_int_equal(again.len, raw.len);
    assert_memory_equal(again.data, raw.data, raw.len);
    uint8_t *out = NULL;
    size_t n = 0;
    assert_int_equal(cg_spdm_read((const uint8_t *)"11e0z1", 6, &out, &n), CG_EEVIDENCE);
    assert_int_equal(cg_spdm_read((const uint8_t *)"11e", 3, &out, &n), CG_EEVIDENCE);
    free(again.data);
    free(raw.data);
    free(hex.data);
}

static void test_genuine(void **state)
{
    (void)state;
    assert_int_equal(verify("nvtrust/hopperAttestationReport.txt", "nvtrust/hopperCertChain.txt",
                            NONCE_SAMPLE, NULL),
                     0);
    /* trustee's copy, and its CoCo capture with one padding byte after the signature. */
    assert_int_equal(verify("trustee/nvidia/hopperAttestationReport.txt",
                            "trustee/nvidia/hopper_cert_chain_case1.txt", NONCE_SAMPLE, NULL),
                     0);
    assert_int_equal(verify("trustee/nvidia/hopper_coco_report1.txt",
                            "trustee/nvidia/hopper_coco_certs1.txt", NONCE_COCO, NULL),
                     0);
    /* No nonce to compare: the caller checks it some other way. */
    assert_int_equal(
        verify("nvtrust/hopperAttestationReport.txt", "nvtrust/hopperCertChain.txt", NULL, NULL),
        0);
}

static void test_device_claims(void **state)
{
    (void)state;
    struct blob b = report("nvtrust/hopperAttestationReport.txt");
    struct cg_gpu_chain c;
    chain("nvtrust/hopperCertChain.txt", &c);
    struct cg_spdm_report *r = malloc(sizeof(*r));
    struct cg_gpu_device d;
    struct cg_verdict v;
    const struct cg_gpu_anchor anchor = {0};
    assert_int_equal(cg_gpu_verify_report(b.data, b.len, &c, &anchor, NULL, time(NULL), r, &d, &v),
                     0);
    assert_int_equal(d.arch, CG_GPU_HOPPER);
    assert_string_equal(cg_gpu_arch_name(d.arch), "hopper");
    assert_string_equal(d.model, "GH100 A01 GSP FMC LF");
    char hex[97];
    cg_hex(hex, sizeof(hex), d.fwid, 48);
    assert_string_equal(hex, FWID_SAMPLE);
    free(r);
    cg_gpu_chain_clear(&c);
    free(b.data);
}

static void test_tampered(void **state)
{
    (void)state;
    verify("nvtrust/hopperAttestationReport.TAMPERED_msr2.txt", "nvtrust/hopperCertChain.txt",
           NONCE_SAMPLE, "gpu.signature");
    verify("trustee/nvidia/hopper_coco_report1.TAMPERED_sig.txt",
           "trustee/nvidia/hopper_coco_certs1.txt", NONCE_COCO, "gpu.signature");
    /* Another GPU's chain. */
    verify("nvtrust/hopperAttestationReport.txt", "trustee/nvidia/hopper_coco_certs1.txt",
           NONCE_SAMPLE, "gpu.signature");
    /* nvtrust's default test nonce is not this report's. */
    verify("nvtrust/hopperAttestationReport.txt", "nvtrust/hopperCertChain.txt",
           "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e", "gpu.nonce");
    /* trustee's chain cases: only the root; the Provisioner ICA missing; the leaf missing. */
    verify("nvtrust/hopperAttestationReport.txt", "trustee/nvidia/hopper_cert_chain_case2.txt",
           NONCE_SAMPLE, "gpu.chain");
    verify("nvtrust/hopperAttestationReport.txt", "trustee/nvidia/hopper_cert_chain_case3.txt",
           NONCE_SAMPLE, "gpu.chain");
    verify("nvtrust/hopperAttestationReport.txt", "trustee/nvidia/hopper_cert_chain_case4.txt",
           NONCE_SAMPLE, "gpu.signature");
}

/* A chain without its root ends at "NVIDIA GH100 Identity", which is not the pinned root. */
static void test_chain_without_root(void **state)
{
    (void)state;
    struct blob b = report("nvtrust/hopperAttestationReport.txt");
    struct cg_gpu_chain c;
    chain("nvtrust/hopperCertChain.txt", &c);
    free(c.certs[--c.n]);
    struct cg_spdm_report *r = malloc(sizeof(*r));
    struct cg_gpu_device d;
    struct cg_verdict v = {0};
    const struct cg_gpu_anchor anchor = {0};
    assert_int_equal(cg_gpu_verify_report(b.data, b.len, &c, &anchor, NULL, time(NULL), r, &d, &v),
                     CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.chain.root");
    assert_string_equal(v.expected,
                        "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48");
    free(r);
    cg_gpu_chain_clear(&c);
    free(b.data);
}

static void test_chain_limits(void **state)
{
    (void)state;
    struct blob t = load("nvtrust/hopperCertChain.txt");
    size_t n = t.len;
    t.data = realloc(t.data, 2 * n + 1);
    t.data[n] = '\n';
    memcpy(t.data + n + 1, t.data, n); /* 10 certificates */
    struct cg_gpu_chain c;
    struct cg_verdict v = {0};
    assert_int_equal(cg_gpu_chain_load(t.data, 2 * n + 1, &c, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.chain");
    assert_int_equal(cg_gpu_chain_load((const uint8_t *)"junk", 4, &c, &v), CG_EEVIDENCE);
    free(t.data);
}

/* A leaf whose 2.23.133.5.4.1 extension is `ext` (DER), self-signed P-384; caller frees. */
static struct blob leaf_with(const uint8_t *ext, size_t ext_len)
{
    EVP_PKEY *k = EVP_EC_gen("P-384");
    X509 *x = X509_new();
    ASN1_OBJECT *obj = OBJ_txt2obj(CG_GPU_OID_DICE_TCB, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    assert_true(k != NULL && x != NULL && obj != NULL && os != NULL);
    assert_int_equal(ASN1_OCTET_STRING_set(os, ext, (int)ext_len), 1);
    X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    assert_int_equal(X509_set_pubkey(x, k), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 60);
    assert_true(X509_sign(x, k, EVP_sha384()) > 0);
    struct blob b = {NULL, 0};
    b.len = (size_t)i2d_X509(x, &b.data);
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    X509_free(x);
    EVP_PKEY_free(k);
    return b;
}

/* Blackwell: a DiceTcbInfo { vendor [0] "NVIDIA", fwids [6] { FWID { sha384, digest } } }. */
static void test_fwid_forms(void **state)
{
    (void)state;
    uint8_t ext[75] = {0x30, 0x49, 0x80, 0x06, 'N',  'V',  'I',  'D',  'I',
                       'A',  0xa6, 0x3f, 0x30, 0x3d, 0x06, 0x09, 0x60, 0x86,
                       0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x04, 0x30};
    for (int i = 0; i < 48; i++)
        ext[27 + i] = (uint8_t)i;
    struct blob b = leaf_with(ext, sizeof(ext));
    enum cg_gpu_arch arch = CG_GPU_ARCH_UNKNOWN;
    uint8_t fwid[48];
    struct cg_verdict v = {0};
    assert_int_equal(cg_gpu_leaf_fwid(b.data, b.len, &arch, fwid, &v), 0);
    assert_int_equal(arch, CG_GPU_BLACKWELL);
    assert_memory_equal(fwid, ext + 27, 48);
    OPENSSL_free(b.data);

    /* A 47-byte digest, a truncated extension, a leaf without one: all named gpu.fwid. */
    ext[1] = 0x48, ext[11] = 0x3e, ext[13] = 0x3c, ext[26] = 0x2f;
    b = leaf_with(ext, sizeof(ext) - 1);
    assert_int_equal(cg_gpu_leaf_fwid(b.data, b.len, &arch, fwid, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.fwid");
    OPENSSL_free(b.data);
    b = leaf_with(ext, 20);
    assert_int_equal(cg_gpu_leaf_fwid(b.data, b.len, &arch, fwid, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.fwid");
    OPENSSL_free(b.data);
    struct blob brom = load("trustee/nvidia/hopper_cert_chain_case4.txt");
    struct cg_gpu_chain c;
    assert_int_equal(cg_gpu_chain_load(brom.data, brom.len, &c, &v), 0);
    assert_int_equal(cg_gpu_leaf_fwid(c.certs[0], c.cert_lens[0], &arch, fwid, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "gpu.fwid");
    cg_gpu_chain_clear(&c);
    free(brom.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_pinned),     cmocka_unit_test(test_parse_sample),
        cmocka_unit_test(test_parse_negatives), cmocka_unit_test(test_read_forms),
        cmocka_unit_test(test_genuine),         cmocka_unit_test(test_device_claims),
        cmocka_unit_test(test_tampered),        cmocka_unit_test(test_chain_without_root),
        cmocka_unit_test(test_chain_limits),    cmocka_unit_test(test_fwid_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
