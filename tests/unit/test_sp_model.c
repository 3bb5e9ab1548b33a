/* The server sidecar's reading of its upstream's /health (sp_model_parse_health). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ccgate/err.h"
#include "sp_model.h"

#define SHA "d5f42365c007ef8f5d2c9968ceab314d9b8de3caf23beee70e960bfb87546cd8"

static int parse(const char *body, struct cg_model_claim *m, char *err)
{
    return sp_model_parse_health(body, strlen(body), m, err, 256);
}

static void test_sealed(void **state)
{
    (void)state;
    struct cg_model_claim m;
    char err[256];
    assert_int_equal(parse("{\"status\":\"ok\",\"sealed\":{\"name\":\"tiny\",\"version\":3,"
                           "\"sha256\":\"" SHA "\"}}",
                           &m, err),
                     0);
    assert_true(m.present);
    assert_string_equal(m.name, "tiny");
    assert_int_equal(m.version, 3);
    assert_int_equal(m.sha256[0], 0xd5);
    assert_int_equal(m.sha256[31], 0xd8);
}

/* An upstream that names no sealed model: no claim, and no error. */
static void test_none(void **state)
{
    (void)state;
    struct cg_model_claim m;
    char err[256];
    static const char *const bodies[] = {"{\"status\":\"ok\"}", "{\"sealed\":null}", "", "OK",
                                         "[1,2]"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        memset(&m, 0x55, sizeof(m));
        assert_int_equal(parse(bodies[i], &m, err), 0);
        assert_false(m.present);
    }
}

/* A sealed member that is malformed: an error naming the member, and no claim. */
static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *body, *err;
    } cases[] = {
        {"{\"sealed\":1}", "sealed: expected an object"},
        {"{\"sealed\":{\"version\":1,\"sha256\":\"" SHA "\"}}", "sealed.name: expected 1 to 255"},
        {"{\"sealed\":{\"name\":\"\",\"version\":1,\"sha256\":\"" SHA "\"}}", "sealed.name"},
        {"{\"sealed\":{\"name\":\"a\\nb\",\"version\":1,\"sha256\":\"" SHA "\"}}", "sealed.name"},
        {"{\"sealed\":{\"name\":\"a\",\"sha256\":\"" SHA "\"}}", "sealed.version: expected an"},
        {"{\"sealed\":{\"name\":\"a\",\"version\":-1,\"sha256\":\"" SHA "\"}}", "sealed.version"},
        {"{\"sealed\":{\"name\":\"a\",\"version\":\"1\",\"sha256\":\"" SHA "\"}}",
         "sealed.version"},
        {"{\"sealed\":{\"name\":\"a\",\"version\":1}}", "sealed.sha256: expected 64 hex"},
        {"{\"sealed\":{\"name\":\"a\",\"version\":1,\"sha256\":\"abcd\"}}", "sealed.sha256"},
        {"{\"sealed\":{\"name\":\"a\",\"version\":1,\"sha256\":\"" SHA "00\"}}", "sealed.sha256"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cg_model_claim m;
        char err[256] = "";
        memset(&m, 0x55, sizeof(m));
        int rc = parse(cases[i].body, &m, err);
        if (rc != CG_EEVIDENCE || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("case %zu: %s: rc %d err \"%s\"", i, cases[i].body, rc, err);
        assert_false(m.present);
    }
    /* A name one byte over the limit. */
    char body[600], name[CG_MODEL_NAME_MAX + 2];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(body, sizeof(body),
             "{\"sealed\":{\"name\":\"%s\",\"version\":1,\"sha256\":\"" SHA "\"}}", name);
    struct cg_model_claim m;
    char err[256];
    assert_int_equal(parse(body, &m, err), CG_EEVIDENCE);
    name[CG_MODEL_NAME_MAX] = '\0';
    snprintf(body, sizeof(body),
             "{\"sealed\":{\"name\":\"%s\",\"version\":1,\"sha256\":\"" SHA "\"}}", name);
    assert_int_equal(parse(body, &m, err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sealed),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
