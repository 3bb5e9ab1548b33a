/* Trustee's SNP evidence JSON: a genuine report decodes byte for byte (its signature
 * verifies under AMD's pinned roots), re-encodes to the same JSON, and any changed field
 * breaks the signature; malformed members are named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccgate/snp.h"
#include "ccgate/trustee.h"

#define AT 1767225600 /* 2026-01-01: inside the VCEK's validity (2025-05-27 to 2032) */

static json_t *vector(void)
{
    char path[1024];
    const char *base = getenv("CG_VECTORS");
    snprintf(path, sizeof(path), "%s/trustee/kbs/snp-evidence.json",
             base != NULL ? base : CG_SOURCE_DIR "/tests/vectors");
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    return j;
}

static int verify(const struct cg_evidence *ev, struct cg_snp_report *r, struct cg_verdict *v)
{
    struct cg_snp_anchor anchor = {0};
    return cg_snp_verify(ev->evidence, ev->evidence_len, (const uint8_t *const *)ev->certs,
                         ev->cert_lens, ev->n_certs, &anchor, AT, r, v);
}

static void test_genuine(void **state)
{
    (void)state;
    json_t *j = vector();
    struct cg_evidence ev;
    struct cg_snp_report r;
    struct cg_verdict v = {0};
    char err[256];
    assert_int_equal(cg_trustee_snp_from_json(j, &ev, err, sizeof(err)), 0);
    assert_int_equal(ev.evidence_len, CG_SNP_REPORT_SIZE);
    assert_int_equal(ev.n_certs, 1);
    int rc = verify(&ev, &r, &v);
    if (rc != 0)
        fail_msg("%s: expected %s, got %s", v.check, v.expected, v.actual);
    char hex[97];
    cg_hex(hex, sizeof(hex), r.measurement, 48);
    assert_string_equal(hex, "6a6519d757e68c2e939c9dbbbc1828498e8de35d2766dd05f1a2cca5059d0cf4"
                             "ae62a36d75c837974dd50b315506e73e");
    /* Our encoder writes what Trustee wrote. */
    json_t *back = cg_trustee_snp_to_json(&ev);
    assert_non_null(back);
    assert_true(json_equal(back, j));
    json_decref(back);
    cg_evidence_clear(&ev);
    json_decref(j);
}

/* j (consumed) still decodes, and its signature no longer verifies. */
static void expect_bad_signature(json_t *j)
{
    struct cg_evidence ev;
    struct cg_snp_report r;
    struct cg_verdict v = {0};
    char err[256];
    assert_int_equal(cg_trustee_snp_from_json(j, &ev, err, sizeof(err)), 0);
    assert_int_equal(verify(&ev, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.signature");
    cg_evidence_clear(&ev);
    json_decref(j);
}

static void test_changed_field_breaks_signature(void **state)
{
    (void)state;
    const char *fields[] = {"measurement", "report_data", "chip_id", "host_data"};
    for (size_t i = 0; i < 4; i++) {
        json_t *j = vector();
        json_t *a = json_object_get(json_object_get(j, "attestation_report"), fields[i]);
        json_array_set_new(a, 3,
                           json_integer((json_integer_value(json_array_get(a, 3)) + 1) & 255));
        expect_bad_signature(j);
    }
    /* A changed TCB SPL too. */
    json_t *j = vector();
    json_object_set_new(json_object_get(json_object_get(j, "attestation_report"), "current_tcb"),
                        "snp", json_integer(24));
    expect_bad_signature(j);
}

static void test_malformed(void **state)
{
    (void)state;
    struct {
        const char *path, *member;
        json_t *value;
        const char *want;
    } cases[] = {
        {"attestation_report", "measurement", json_integer(1), "attestation_report.measurement"},
        {"attestation_report", "version", json_string("3"), "attestation_report.version"},
        {"attestation_report", "current_tcb", json_null(), "attestation_report.current_tcb"},
        {NULL, "cert_chain", json_null(), "cert_chain"},
        {NULL, "cert_chain", json_pack("[{s:s,s:[i]}]", "cert_type", "PEK", "data", 1),
         "cert_chain[0].cert_type"},
        {NULL, "cert_chain", json_pack("[{s:s,s:[i]}]", "cert_type", "VCEK", "data", 300),
         "cert_chain[0].data[0]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = vector();
        json_t *o = cases[i].path != NULL ? json_object_get(j, cases[i].path) : j;
        json_object_set_new(o, cases[i].member, cases[i].value);
        struct cg_evidence ev;
        char err[256] = "";
        assert_int_equal(cg_trustee_snp_from_json(j, &ev, err, sizeof(err)), CG_EEVIDENCE);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: %s", i, err);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_genuine),
        cmocka_unit_test(test_changed_field_breaks_signature),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
