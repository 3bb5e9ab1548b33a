/* ccgate-kbs configuration: resource names, release policies with a model minimum, and
 * every config error naming its key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccgate/err.h"
#include "kb_config.h"

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int load(const char *config, char *err, size_t errlen)
{
    char path[128];
    struct kb_config c;
    put("kbs.json", config);
    snprintf(path, sizeof(path), "%s/kbs.json", dir);
    int rc = kb_config_load(path, &c, err, errlen);
    if (rc == 0)
        kb_config_free(&c);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/ccgate-kbcfg-XXXXXX");
    assert_non_null(mkdtemp(dir));
    put("key.jwk", "{\"kty\":\"oct\",\"k\":\"AAAA\"}");
    put("raw.bin", "not json");
    put("policy.json", "{\"sim\":{\"allow\":true,\"root_sha256\":\"" /* 64 zeros */
                       "0000000000000000000000000000000000000000000000000000000000000000\"},"
                       "\"model\":{\"min_version\":3}}");
    put("plain.json", "{\"snp\":{}}");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *files[] = {"key.jwk", "raw.bin", "policy.json", "plain.json", "kbs.json"};
    char path[128];
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

static void test_resource_ids(void **state)
{
    (void)state;
    assert_true(kb_resource_id_ok("models/key/tiny"));
    assert_true(kb_resource_id_ok("a.b/c_d/e-1"));
    const char *bad[] = {"",      "a/b",     "a/b/c/d", "a//c",  "../b/c",
                         "a/./c", "a/b/c d", "/a/b/c",  "a/b/c/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (kb_resource_id_ok(bad[i]))
            fail_msg("accepted '%s'", bad[i]);
}

static void test_policy_model_section(void **state)
{
    (void)state;
    struct cg_policy *p = calloc(1, sizeof(*p));
    int has;
    uint64_t min;
    char err[256];
    const char ok[] = "{\"snp\":{},\"model\":{\"min_version\":7}}";
    assert_int_equal(kb_policy_parse(ok, strlen(ok), p, &has, &min, err, sizeof(err)), 0);
    assert_true(has);
    assert_int_equal(min, 7);
    assert_true(p->snp.present);
    const char bad_key[] = "{\"snp\":{},\"model\":{\"max_version\":7}}";
    assert_int_equal(kb_policy_parse(bad_key, strlen(bad_key), p, &has, &min, err, sizeof(err)),
                     CG_ECONFIG);
    assert_non_null(strstr(err, "model.max_version"));
    const char neg[] = "{\"snp\":{},\"model\":{\"min_version\":-1}}";
    assert_int_equal(kb_policy_parse(neg, strlen(neg), p, &has, &min, err, sizeof(err)),
                     CG_ECONFIG);
    assert_non_null(strstr(err, "model.min_version"));
    /* The rest is the client's policy language, with its own errors. */
    const char other[] = "{\"snp\":{\"colour\":1}}";
    assert_int_equal(kb_policy_parse(other, strlen(other), p, &has, &min, err, sizeof(err)),
                     CG_ECONFIG);
    free(p);
}

static void test_config_errors(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(load("{\"resources\":{\"a/b/c\":{\"file\":\"key.jwk\",\"policy\":\"policy."
                          "json\"}},\"audit_log\":\"audit.log\"}",
                          err, sizeof(err)),
                     0);
    struct {
        const char *config, *want;
    } cases[] = {
        {"{\"resources\":{\"a/b/c\":{\"file\":\"key.jwk\",\"policy\":\"plain.json\"}}}",
         "audit_log"},
        {"{\"resources\":{},\"audit_log\":\"x\"}", "resources"},
        {"{\"resources\":{\"a/b\":{\"file\":\"key.jwk\",\"policy\":\"plain.json\"}},"
         "\"audit_log\":\"x\"}",
         "resources.a/b"},
        {"{\"resources\":{\"a/b/c\":{\"file\":\"nope\",\"policy\":\"plain.json\"}},"
         "\"audit_log\":\"x\"}",
         "resources.a/b/c.file"},
        {"{\"resources\":{\"a/b/c\":{\"file\":\"raw.bin\",\"policy\":\"policy.json\"}},"
         "\"audit_log\":\"x\"}",
         "model.min_version needs a JSON object"},
        {"{\"resources\":{\"a/b/c\":{\"file\":\"key.jwk\",\"policy\":\"plain.json\"}},"
         "\"audit_log\":\"x\",\"tls_cert\":\"c.pem\"}",
         "tls_cert and tls_key"},
        {"{\"resources\":{\"a/b/c\":{\"file\":\"key.jwk\",\"policy\":\"plain.json\"}},"
         "\"audit_log\":\"x\",\"colour\":1}",
         "colour: unknown key"},
        {"{\"resources\":{\"a/b/c\":{\"file\":\"key.jwk\",\"policy\":\"plain.json\"}},"
         "\"audit_log\":\"x\",\"session_timeout_s\":0}",
         "session_timeout_s"},
        {"{\"resources\":{\"a/b/c\":{\"file\":\"key.jwk\",\"policy\":\"plain.json\"}},"
         "\"audit_log\":\"x\",\"tdx_collateral\":\"no-such-dir\"}",
         "tdx_collateral"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_int_equal(load(cases[i].config, err, sizeof(err)), CG_ECONFIG);
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu: %s", i, err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resource_ids),
        cmocka_unit_test(test_policy_model_section),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
