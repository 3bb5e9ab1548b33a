/* cg_json: the JSON the client's /verification endpoint and `ccgate` print, on real evidence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ccgate/err.h"
#include "ccgate/json.h"

static size_t load(const char *rel, uint8_t *buf, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", getenv("CG_VECTORS"), rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static json_t *parse(struct cg_buf *b)
{
    json_error_t e;
    assert_false(b->overflow);
    json_t *j = json_loadb(b->data, b->len, 0, &e);
    if (j == NULL)
        fail_msg("invalid JSON (%s): %s", e.text, b->data);
    return j;
}

static void test_snp_report(void **state)
{
    (void)state;
    static uint8_t raw[8192];
    struct cg_snp_report r;
    struct cg_verdict v;
    size_t n = load("go-sev-guest/attestation.bin", raw, sizeof(raw));
    assert_int_equal(cg_snp_report_parse(raw, n, &r, &v), 0);
    struct cg_buf b;
    cg_buf_init(&b, 64 * 1024);
    cg_json_snp_report(&b, &r);
    json_t *j = parse(&b);
    assert_string_equal(json_string_value(json_object_get(j, "measurement")),
                        "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9"
                        "ece31a5a608eb0cf2e4872b01");
    assert_true(json_is_true(json_object_get(j, "debug")));
    assert_string_equal(json_string_value(json_object_get(j, "reported_tcb")), "0x4405000000000002");
    json_decref(j);
    cg_buf_free(&b);
}

static void test_tdx_quote_and_status(void **state)
{
    (void)state;
    static uint8_t raw[16384];
    struct cg_tdx_quote q;
    struct cg_verdict v;
    size_t n = load("trustee/tdx/tdx_quote_4.dat", raw, sizeof(raw));
    assert_int_equal(cg_tdx_quote_parse(raw, n, &q, &v), 0);
    struct cg_buf b;
    cg_buf_init(&b, 64 * 1024);
    cg_json_tdx_quote(&b, &q);
    json_t *j = parse(&b);
    char mrtd[97];
    cg_hex(mrtd, sizeof(mrtd), q.mrtd, sizeof(q.mrtd));
    assert_string_equal(json_string_value(json_object_get(j, "mrtd")), mrtd);
    assert_true(json_is_true(json_object_get(j, "debug"))); /* the trustee debug TD */
    json_decref(j);

    struct cg_tdx_status st = {.collateral = 1, .tcb_status = CG_TDX_TCB_OUT_OF_DATE, .n_advisories = 2};
    snprintf(st.tcb_date, sizeof(st.tcb_date), "2018-01-04T00:00:00Z");
    snprintf(st.advisories[0], sizeof(st.advisories[0]), "INTEL-SA-00837");
    snprintf(st.advisories[1], sizeof(st.advisories[1]), "quote\"d");
    cg_buf_free(&b);
    cg_json_tdx_status(&b, &st);
    j = parse(&b);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "OutOfDate");
    assert_int_equal(json_array_size(json_object_get(j, "advisory_ids")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "advisory_ids"), 1)),
                        "quote\"d");
    json_decref(j);
    cg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snp_report),
        cmocka_unit_test(test_tdx_quote_and_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
