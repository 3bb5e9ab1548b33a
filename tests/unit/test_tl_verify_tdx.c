/* `ccgate verify tdx` (tl_verify_tdx_main): exit codes and the JSON it prints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "tl_verify_tdx.h"

static char vec[1024];

static const char *path(const char *rel)
{
    static char bufs[8][1100];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/%s", vec, rel);
    return b;
}

/* Runs the command with stdout captured; returns the exit status, *out the parsed JSON. */
static int run(json_t **out, int argc, const char **argv)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDOUT_FILENO) >= 0);
    int status = tl_verify_tdx_main(argc, (char **)argv);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    json_error_t je;
    *out = json_loadf(tmp, 0, &je);
    fclose(tmp);
    return status;
}

/* go-tdx-guest's quote files end with "extra bytes(only for testing purpose)", which the
 * verifier refuses: a copy of the quote proper, in a temporary file (caller unlinks). */
static const char *exact_quote(const char *rel)
{
    static char tmp[8][64];
    static int next;
    char *out = tmp[next++ % 8];
    FILE *f = fopen(path(rel), "rb");
    assert_non_null(f);
    uint8_t buf[8192];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(n > 0x27C);
    size_t len = 0x278 + 4 + (buf[0x278] | (size_t)buf[0x279] << 8 | (size_t)buf[0x27A] << 16);
    assert_true(len < n);
    snprintf(out, sizeof(tmp[0]), "/tmp/test_tl_verify_tdx_q_XXXXXX");
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    return out;
}

static void test_verified_with_collateral(void **state)
{
    (void)state;
    json_t *j;
    const char *argv[] = {"tdx",
                          path("trustee/tdx/tdx_quote_6.dat"),
                          "--tcb-info",
                          path("trustee/tdx/tcbInfo.json"),
                          "--qe-identity",
                          path("trustee/tdx/enclaveIdentity.json"),
                          "--tcb-chain",
                          path("trustee/tdx/tcb_signing_chain_2025.pem"),
                          "--at=2025-11-01T00:00:00Z"};
    assert_int_equal(run(&j, 9, argv), 0);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "verified")));
    assert_string_equal(json_string_value(json_object_get(j, "tcb_status")), "OutOfDate");
    assert_string_equal(json_string_value(json_object_get(j, "tdx_module_tcb_status")), "UpToDate");
    assert_string_equal(json_string_value(json_object_get(j, "mrtd")),
                        "21e8dead92d6c69d7cbba79816686c03a48485c7df0c11f6f04792d5e1d378f6b8c46615"
                        "ba6946adccac6becffbb1e88");
    assert_string_equal(json_string_value(json_object_get(j, "fmspc")), "00a06d080000");
    assert_string_equal(json_string_value(json_object_get(j, "verified_at")),
                        "2025-11-01T00:00:00Z");
    assert_true(json_is_array(json_object_get(j, "advisory_ids")));
    json_decref(j);
}

static void test_rejected(void **state)
{
    (void)state;
    json_t *j;
    const char *argv[] = {"tdx",
                          exact_quote("go-tdx-guest/tdx_prod_quote_SPR_E4.TAMPERED_body_0x3C.dat"),
                          "--at", "2023-07-01T01:00:00Z"};
    assert_int_equal(run(&j, 4, argv), 1);
    assert_non_null(j);
    assert_true(json_is_false(json_object_get(j, "verified")));
    assert_string_equal(json_string_value(json_object_get(j, "check")), "tdx.quote_signature");
    assert_non_null(json_string_value(json_object_get(j, "expected")));
    assert_non_null(json_string_value(json_object_get(j, "actual")));
    json_decref(j);
    unlink(argv[1]);
    /* The file as published: its appended text is refused by name. */
    argv[1] = path("go-tdx-guest/tdx_prod_quote_SPR_E4.dat");
    assert_int_equal(run(&j, 4, argv), 1);
    assert_string_equal(json_string_value(json_object_get(j, "check")), "tdx.quote.trailing");
    json_decref(j);
}

static void write_policy(const char *file, const char *text)
{
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_policy(void **state)
{
    (void)state;
    json_t *j;
    char pol[] = "/tmp/test_tl_verify_tdx_XXXXXX";
    int fd = mkstemp(pol);
    assert_true(fd >= 0);
    close(fd);
    const char *argv[] = {"tdx",      path("trustee/tdx/tdx_quote_4.dat"),
                          "--at",     "2024-06-24T00:00:00Z",
                          "--policy", pol};
    /* The debug TD: genuine, rejected by the default policy. */
    write_policy(pol, "{\"tdx\":{}, \"snp\":{}}");
    assert_int_equal(run(&j, 6, argv), 1);
    assert_string_equal(json_string_value(json_object_get(j, "check")), "tdx.attributes.debug");
    json_decref(j);
    /* Without a policy it verifies and reports debug = true. */
    assert_int_equal(run(&j, 4, argv), 0);
    assert_true(json_is_true(json_object_get(j, "debug")));
    json_decref(j);
    /* A bad policy is a usage error, with nothing on stdout. */
    write_policy(pol, "{\"tdx\":{\"mrtd\":\"zz\"}}");
    assert_int_equal(run(&j, 6, argv), 2);
    assert_null(j);
    write_policy(pol, "{\"sim\":{}}");
    assert_int_equal(run(&j, 6, argv), 2);
    assert_null(j);
    unlink(pol);
}

static void test_usage(void **state)
{
    (void)state;
    json_t *j;
    const char *none[] = {"tdx"};
    assert_int_equal(run(&j, 1, none), 2);
    const char *missing[] = {"tdx", path("no/such/file")};
    assert_int_equal(run(&j, 2, missing), 2);
    const char *bad_at[] = {"tdx", path("trustee/tdx/tdx_quote_6.dat"), "--at", "yesterday"};
    assert_int_equal(run(&j, 4, bad_at), 2);
    const char *partial[] = {"tdx", path("trustee/tdx/tdx_quote_6.dat"), "--tcb-info",
                             path("trustee/tdx/tcbInfo.json")};
    assert_int_equal(run(&j, 4, partial), 2);
    const char *unknown[] = {"tdx", path("trustee/tdx/tdx_quote_6.dat"), "--colour", "red"};
    assert_int_equal(run(&j, 4, unknown), 2);
    const char *dangling[] = {"tdx", path("trustee/tdx/tdx_quote_6.dat"), "--crl"};
    assert_int_equal(run(&j, 3, dangling), 2);
}

static void test_crl_args(void **state)
{
    (void)state;
    json_t *j;
    const char *argv[] = {"tdx",   exact_quote("go-tdx-guest/tdx_prod_quote_SPR_E4.dat"),
                          "--crl", path("go-tdx-guest/pckcrl"),
                          "--crl", path("go-tdx-guest/rootcrl.der"),
                          "--at",  "2023-07-01T01:00:00Z"};
    assert_int_equal(run(&j, 8, argv), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "crls_checked")), 2);
    assert_true(json_is_true(json_object_get(j, "root_crl_checked")));
    assert_true(json_is_true(json_object_get(j, "pck_crl_checked")));
    assert_string_equal(json_string_value(json_object_get(j, "tcb_status")), "NotEvaluated");
    json_decref(j);
    argv[7] = "2024-05-01T00:00:00Z"; /* the root CRL has expired */
    assert_int_equal(run(&j, 8, argv), 1);
    assert_string_equal(json_string_value(json_object_get(j, "check")), "tdx.crl.expired");
    json_decref(j);
    unlink(argv[1]);
}

int main(void)
{
    const char *v = getenv("CG_VECTORS");
    snprintf(vec, sizeof(vec), "%s", v ? v : "tests/vectors");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verified_with_collateral),
        cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_crl_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
