/* NVIDIA RIM (SWID + XML-DSig) verification on nvtrust's test RIMs, and sim-signed ones. */
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

#include "ccgate/rim.h"
#include "ccgate/roots.h"

#include "vectors.h"

#define DRIVER_RIM "nvtrust/Driver_RIM_test_no_gpu.swidtag"
#define VBIOS_RIM "nvtrust/1010_0200_882_96005E0001_test_no_gpu.swidtag"

/* Inside every certificate's validity: the signers expire on 2025-06-22 and 2025-06-26. */
static const time_t AT = 1717200000; /* 2024-06-01 */

static struct blob load(const char *rel)
{
    return vectors_load(rel, 1 << 18);
}

static void test_root_pinned(void **state)
{
    (void)state;
    const struct cg_root *r = cg_roots;
    while (r->name != NULL && strcmp(r->name, "nvidia/rim_root.pem") != 0)
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
    assert_string_equal(hex, "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1");
    X509_free(x);
    BIO_free(b);
}

static void test_genuine(void **state)
{
    (void)state;
    struct cg_rim *r = malloc(sizeof(*r));
    struct cg_verdict v = {0};
    struct blob b = load(DRIVER_RIM);
    assert_int_equal(cg_rim_verify(b.data, b.len, NULL, AT, r, &v), 0);
    assert_string_equal(r->version, "545.00");
    assert_string_equal(r->product, "GH100");
    assert_int_equal(r->n_chain, 4);
    size_t active = 0;
    for (size_t i = 0; i < r->n; i++)
        active += r->m[i].active;
    assert_int_equal(active, 21);
    cg_rim_clear(r);
    free(b.data);

    b = load(VBIOS_RIM);
    assert_int_equal(cg_rim_verify(b.data, b.len, NULL, AT, r, &v), 0);
    assert_string_equal(r->version, "96.00.5E.00.01");
    /* index 12 has four alternatives */
    size_t i = 0;
    while (i < r->n && r->m[i].index != 12)
        i++;
    assert_true(i < r->n);
    assert_int_equal(r->m[i].n_alts, 4);
    cg_rim_clear(r);
    free(b.data);
    free(r);
}

/* The RIM with `from` replaced by `to` (first occurrence) must fail with check. */
static void mutated(const char *rel, const char *from, const char *to, time_t at, const char *check)
{
    struct blob b = load(rel);
    b.data[b.len] = '\0';
    char *p = strstr((char *)b.data, from);
    assert_non_null(p);
    size_t fl = strlen(from), tl = strlen(to);
    uint8_t *m = malloc(b.len + tl + 1);
    size_t off = (size_t)((uint8_t *)p - b.data);
    memcpy(m, b.data, off);
    memcpy(m + off, to, tl);
    memcpy(m + off + tl, b.data + off + fl, b.len - off - fl);
    struct cg_rim *r = malloc(sizeof(*r));
    struct cg_verdict v = {0};
    assert_int_not_equal(cg_rim_verify(m, b.len - fl + tl, NULL, at, r, &v), 0);
    assert_string_equal(v.check, check);
    free(r);
    free(m);
    free(b.data);
}

static void test_tampered(void **state)
{
    (void)state;
    /* A golden value changed: the reference digest no longer matches. */
    mutated(DRIVER_RIM, "0e0ee161b59bf124", "0e0ee161b59bf125", AT, "gpu.rim.signature");
    /* The version claimed changed. */
    mutated(VBIOS_RIM, "colloquialVersion=\"96.00.5E.00.01\"",
            "colloquialVersion=\"96.00.9F.00.01\"", AT, "gpu.rim.signature");
    /* The signature value changed (first base64 characters). */
    mutated(DRIVER_RIM, "<ds:SignatureValue>", "<ds:SignatureValue>AAAA", AT, "gpu.rim.signature");
    /* Another signature method. */
    mutated(DRIVER_RIM, "xmldsig-more#ecdsa-sha384", "xmldsig-more#ecdsa-sha256", AT,
            "gpu.rim.signature");
    /* A reference to something else than the whole document. */
    mutated(DRIVER_RIM, "<ds:Reference URI=\"\">", "<ds:Reference URI=\"#x\">", AT,
            "gpu.rim.signature");
    /* Out of the signer's validity. */
    mutated(DRIVER_RIM, "<SoftwareIdentity", "<SoftwareIdentity", time(NULL) + 86400 * 365 * 30,
            "gpu.rim.chain.validity");
    /* A DOCTYPE (entities) is refused before anything else. */
    mutated(DRIVER_RIM, "<SoftwareIdentity", "<!DOCTYPE x [<!ENTITY a \"b\">]><SoftwareIdentity",
            AT, "gpu.rim.xml");
    mutated(DRIVER_RIM, "<SoftwareIdentity", "<SoftwareIdentity<", AT, "gpu.rim.xml");
}

static void test_parse_negatives(void **state)
{
    (void)state;
    struct {
        const char *xml, *check;
    } cases[] = {
        {"<a/>", "gpu.rim.swid"},
        {"<SoftwareIdentity xmlns=\""
         "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
         "\"/>",
         "gpu.rim.tag_id"},
        {"<SoftwareIdentity xmlns=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" "
         "tagId=\"t\"><Payload/></SoftwareIdentity>",
         "gpu.rim.version"},
        {"<SoftwareIdentity xmlns=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" "
         "tagId=\"t\"><Meta colloquialVersion=\"1\"/><Payload/></SoftwareIdentity>",
         "gpu.rim.measurements"},
        {"<SoftwareIdentity xmlns=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" "
         "tagId=\"t\"><Meta colloquialVersion=\"1\"/><Payload><Resource type=\"Measurement\" "
         "index=\"300\"/></Payload></SoftwareIdentity>",
         "gpu.rim.measurement.index"},
        {"<SoftwareIdentity xmlns=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" "
         "tagId=\"t\"><Meta colloquialVersion=\"1\"/><Payload><Resource type=\"Measurement\" "
         "index=\"1\" active=\"yes\"/></Payload></SoftwareIdentity>",
         "gpu.rim.measurement.active"},
        {"<SoftwareIdentity xmlns=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" "
         "tagId=\"t\"><Meta colloquialVersion=\"1\"/><Payload><Resource type=\"Measurement\" "
         "index=\"1\" active=\"True\" size=\"48\" alternatives=\"9\"/></Payload>"
         "</SoftwareIdentity>",
         "gpu.rim.measurement.alternatives"},
        {"<SoftwareIdentity xmlns=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" "
         "tagId=\"t\"><Meta colloquialVersion=\"1\"/><Payload><Resource type=\"Measurement\" "
         "index=\"1\" active=\"True\" size=\"48\" alternatives=\"1\" Hash0=\"00\"/></Payload>"
         "</SoftwareIdentity>",
         "gpu.rim.measurement.hash"},
    };
    struct cg_rim *r = malloc(sizeof(*r));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cg_verdict v = {0};
        assert_int_equal(cg_rim_parse((const uint8_t *)cases[i].xml, strlen(cases[i].xml), r, &v),
                         CG_EEVIDENCE);
        assert_string_equal(v.check, cases[i].check);
    }
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_pinned),
        cmocka_unit_test(test_genuine),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_parse_negatives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
