#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cp_errors.h"

/*
 * The error answers of the client sidecar (cp_errors): the OpenAI shape on OpenAI paths, the
 * plain one elsewhere, each parsed back as JSON; the retry decision per error.
 */

static json_t *body_of(const struct cp_error *e, int openai)
{
    struct cg_buf b;
    cg_buf_init(&b, CP_ERROR_BODY_MAX);
    cp_error_body(&b, e, openai);
    assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
    json_error_t jerr;
    json_t *j = json_loadb(b.data, b.len, 0, &jerr);
    if (j == NULL)
        fail_msg("not JSON (%s): %.*s", jerr.text, (int)b.len, b.data);
    cg_buf_free(&b);
    return j;
}

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("%s: not a string", key);
    return json_string_value(v);
}

/* A failed appraisal: code = the check, its values and the server under "ccgate", never
 * retried. The plain shape keeps the fields at the top, as before. */
static void test_attestation(void **state)
{
    (void)state;
    struct cg_verdict v;
    (void)cg_reject(&v, CG_EPOLICY, "snp.measurement", "one of [aa\"bb]", "%s", "cc\\dd");
    struct cp_error e = {
        .status = 502, .error = "attestation_failed", .v = &v, .server = "127.0.0.1:9"};
    assert_int_equal(cp_error_retry(&e), 0);
    assert_string_equal(cp_error_type(&e), "ccgate_attestation_error");

    json_t *j = body_of(&e, 1);
    json_t *err = json_object_get(j, "error");
    assert_true(json_is_object(err));
    assert_string_equal(str(err, "type"), "ccgate_attestation_error");
    assert_string_equal(str(err, "code"), "snp.measurement");
    assert_true(json_is_null(json_object_get(err, "param")));
    const char *msg = str(err, "message");
    assert_non_null(strstr(msg, "snp.measurement"));
    assert_non_null(strstr(msg, "one of [aa\"bb]"));
    assert_non_null(strstr(msg, "cc\\dd"));
    json_t *cg = json_object_get(err, "ccgate");
    assert_string_equal(str(cg, "error"), "attestation_failed");
    assert_string_equal(str(cg, "check"), "snp.measurement");
    assert_string_equal(str(cg, "expected"), "one of [aa\"bb]");
    assert_string_equal(str(cg, "actual"), "cc\\dd");
    assert_string_equal(str(cg, "server"), "127.0.0.1:9");
    assert_null(json_object_get(cg, "retried"));
    json_decref(j);

    j = body_of(&e, 0);
    assert_string_equal(str(j, "error"), "attestation_failed");
    assert_string_equal(str(j, "check"), "snp.measurement");
    assert_string_equal(str(j, "expected"), "one of [aa\"bb]");
    assert_string_equal(str(j, "actual"), "cc\\dd");
    assert_string_equal(str(j, "server"), "127.0.0.1:9");
    json_decref(j);
}

/* Errors without a check: code = the error's name; retry per error. */
static void test_without_check(void **state)
{
    (void)state;
    static const struct {
        const char *error;
        int status;
        const char *type;
        int retry;
    } cases[] = {
        {"server_unreachable", 502, "ccgate_unavailable", 1},
        {"too_many_connections", 503, "ccgate_unavailable", 1},
        {"bad_request", 431, "ccgate_request_error", 0},
        {"request_timeout", 408, "ccgate_request_error", 1},
        {"upstream_timeout", 504, "ccgate_server_error", 0},
        {"no_such_error", 500, "ccgate_error", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cp_error e = {
            .status = cases[i].status, .error = cases[i].error, .reason = "why \"so\""};
        assert_int_equal(cp_error_retry(&e), cases[i].retry);
        json_t *j = body_of(&e, 1);
        json_t *err = json_object_get(j, "error");
        assert_string_equal(str(err, "type"), cases[i].type);
        assert_string_equal(str(err, "code"), cases[i].error);
        assert_non_null(strstr(str(err, "message"), "why \"so\""));
        assert_string_equal(str(json_object_get(err, "ccgate"), "reason"), "why \"so\"");
        json_decref(j);
        j = body_of(&e, 0);
        assert_string_equal(str(j, "error"), cases[i].error);
        assert_string_equal(str(j, "reason"), "why \"so\"");
        assert_null(json_object_get(j, "check"));
        json_decref(j);
    }
}

/* server_closed may be sent again by the app unless the client already did. */
static void test_server_closed(void **state)
{
    (void)state;
    struct cp_error e = {.status = 502, .error = "server_closed", .reason = "server_error"};
    assert_int_equal(cp_error_retry(&e), 1);
    json_t *j = body_of(&e, 0);
    assert_true(json_is_false(json_object_get(j, "retried")));
    json_decref(j);
    e.retried = 1;
    assert_int_equal(cp_error_retry(&e), 0);
    j = body_of(&e, 1);
    json_t *err = json_object_get(j, "error");
    assert_string_equal(str(err, "type"), "ccgate_server_error");
    assert_string_equal(str(err, "code"), "server_closed");
    assert_true(json_is_true(json_object_get(json_object_get(err, "ccgate"), "retried")));
    json_decref(j);
}

/* The longest verdict still gives valid JSON within CP_ERROR_BODY_MAX. */
static void test_longest(void **state)
{
    (void)state;
    struct cg_verdict v;
    memset(v.check, 'c', sizeof(v.check) - 1);
    v.check[sizeof(v.check) - 1] = '\0';
    memset(v.expected, '"', sizeof(v.expected) - 1);
    v.expected[sizeof(v.expected) - 1] = '\0';
    memset(v.actual, '\x01', sizeof(v.actual) - 1);
    v.actual[sizeof(v.actual) - 1] = '\0';
    char server[300];
    memset(server, 's', sizeof(server) - 1);
    server[sizeof(server) - 1] = '\0';
    struct cp_error e = {
        .status = 502, .error = "attestation_failed", .v = &v, .reason = "r", .server = server};
    for (int openai = 0; openai <= 1; openai++) {
        struct cg_buf b;
        cg_buf_init(&b, CP_ERROR_BODY_MAX);
        cp_error_body(&b, &e, openai);
        json_error_t jerr;
        json_t *j = json_loadb(b.data, b.len, 0, &jerr);
        if (j == NULL)
            fail_msg("not JSON (%s), %zu bytes", jerr.text, b.len);
        json_decref(j);
        cg_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attestation),
        cmocka_unit_test(test_without_check), cmocka_unit_test(test_server_closed),
        cmocka_unit_test(test_longest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
