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
#include "ccgate/opts.h"

#define N_OPTS 10

static char tmpdir[] = "/tmp/cg_test_opts.XXXXXX";

/* A fresh option table like the binaries' (all results unset). */
static void table(struct cg_opt *o)
{
    const struct cg_opt init[N_OPTS] = {
        {"listen", "ADDR:PORT", "listener", NULL, NULL, NULL},
        {"log-format", "text|json", "log line format", "text", NULL, NULL},
        {"max-connections", "N", "most connections", "4096", NULL, NULL},
        {"config", "FILE", "config file", NULL, NULL, NULL},
        {"help", NULL, "print this help", NULL, NULL, NULL},
        {"admin", "ADDR:PORT", "admin listener", NULL, NULL, NULL},
        {"policy", "FILE", "policy file", NULL, NULL, NULL},
        {"allow-sim", NULL, "a boolean", NULL, NULL, NULL},
        {"server", "HOST:PORT...", "a list", NULL, NULL, NULL},
        {"forwards", "JSON", "any JSON in the config", NULL, NULL, NULL},
    };
    memcpy(o, init, sizeof(init));
}

static const char *val(struct cg_opt *o, const char *name)
{
    return cg_opts_get(o, N_OPTS, name)->value;
}

static int parse(struct cg_opt *o, char *err, size_t errlen, int argc, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    argv[0] = "prog";
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    table(o);
    return cg_opts_parse(argc, argv, 1, o, N_OPTS, err, errlen);
}

static const char *write_config(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return path;
}

static int setup(void **state)
{
    (void)state;
    unsetenv("CCGATE_LISTEN");
    unsetenv("CCGATE_LOG_FORMAT");
    unsetenv("CCGATE_MAX_CONNECTIONS");
    unsetenv("CCGATE_HELP");
    unsetenv("CCGATE_ADMIN");
    unsetenv("CCGATE_CONFIG");
    unsetenv("CCGATE_ALLOW_SIM");
    unsetenv("CCGATE_POLICY");
    unsetenv("CCGATE_SERVER");
    unsetenv("CCGATE_FORWARDS");
    return 0;
}

static void test_parse_forms(void **state)
{
    (void)state;
    struct cg_opt o[N_OPTS];
    char err[256] = "";
    assert_int_equal(parse(o, err, sizeof(err), 6, "--listen", "127.0.0.1:1", "--admin=a:2",
                           "--help", "--log-format=json"),
                     0);
    assert_string_equal(val(o, "listen"), "127.0.0.1:1");
    assert_string_equal(val(o, "admin"), "a:2");
    assert_string_equal(val(o, "help"), "1");
    assert_string_equal(val(o, "log-format"), "json");
    assert_null(val(o, "max-connections")); /* defaults come with cg_opts_fill */

    /* The value may hold '=' and may be empty. */
    assert_int_equal(parse(o, err, sizeof(err), 3, "--listen=a=b", "--admin="), 0);
    assert_string_equal(val(o, "listen"), "a=b");
    assert_string_equal(val(o, "admin"), "");
    /* A value that looks like a flag is still the value. */
    assert_int_equal(parse(o, err, sizeof(err), 3, "--listen", "--help"), 0);
    assert_string_equal(val(o, "listen"), "--help");
    assert_null(val(o, "help"));
    /* Nothing to parse. */
    assert_int_equal(parse(o, err, sizeof(err), 1), 0);
    assert_null(val(o, "listen"));
}

static void test_parse_errors(void **state)
{
    (void)state;
    struct cg_opt o[N_OPTS];
    char err[256];
    static const struct {
        int argc;
        const char *a1, *a2;
        const char *why;
    } bad[] = {
        {2, "--nope", NULL, "unknown flag '--nope'"},
        {2, "--nope=3", NULL, "unknown flag '--nope'"},
        {2, "--liste", NULL, "unknown flag '--liste'"},
        {2, "--listenx=1", NULL, "unknown flag '--listenx'"},
        {2, "--help=1", NULL, "'--help' takes no value"},
        {2, "--listen", NULL, "'--listen' needs a value"},
        {2, "positional", NULL, "unexpected argument 'positional'"},
        {2, "-h", NULL, "unexpected argument '-h'"},
        {2, "--", NULL, "unexpected argument '--'"},
        {3, "--help", "extra", "unexpected argument 'extra'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        int rc = bad[i].argc == 2 ? parse(o, err, sizeof(err), 2, bad[i].a1)
                                  : parse(o, err, sizeof(err), 3, bad[i].a1, bad[i].a2);
        if (rc != CG_ECONFIG)
            fail_msg("%s: accepted", bad[i].a1);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("%s: error '%s' lacks '%s'", bad[i].a1, err, bad[i].why);
    }
    /* argv before first is not looked at. */
    char *argv[] = {"prog", "sub-command", "--help"};
    table(o);
    assert_int_equal(cg_opts_parse(3, argv, 2, o, N_OPTS, err, sizeof(err)), 0);
    assert_string_equal(val(o, "help"), "1");
}

static void test_fill_defaults_and_env(void **state)
{
    (void)state;
    struct cg_opt o[N_OPTS];
    char err[256] = "";
    assert_int_equal(parse(o, err, sizeof(err), 3, "--listen", "flag:1"), 0);
    setenv("CCGATE_LISTEN", "env:1", 1);
    setenv("CCGATE_LOG_FORMAT", "json", 1);
    setenv("CCGATE_HELP", "1", 1);
    setenv("ccgate_admin", "lower:1", 1); /* names are upper case: not this one */
    assert_int_equal(cg_opts_fill(o, N_OPTS, NULL, err, sizeof(err)), 0);
    assert_string_equal(val(o, "listen"), "flag:1");   /* flag beats environment */
    assert_string_equal(val(o, "log-format"), "json"); /* environment beats default */
    assert_string_equal(val(o, "help"), "1");
    assert_string_equal(val(o, "max-connections"), "4096"); /* default */
    assert_null(val(o, "admin"));                           /* no default */
    unsetenv("ccgate_admin");
    cg_opts_free(o, N_OPTS);
    assert_null(o[1].owned);
}

static void test_fill_config_precedence(void **state)
{
    (void)state;
    struct cg_opt o[N_OPTS];
    char err[256] = "";
    const char *path = write_config("c.json", "{\"listen\": \"cfg:1\", \"log-format\": \"cfg\","
                                              " \"max-connections\": 17, \"admin\": \"cfg:2\","
                                              " \"help\": true}");
    assert_int_equal(parse(o, err, sizeof(err), 2, "--listen=flag:1"), 0);
    setenv("CCGATE_LOG_FORMAT", "json", 1);
    assert_int_equal(cg_opts_fill(o, N_OPTS, path, err, sizeof(err)), 0);
    assert_string_equal(val(o, "listen"), "flag:1");      /* flag beats config */
    assert_string_equal(val(o, "log-format"), "json");    /* environment beats config */
    assert_string_equal(val(o, "max-connections"), "17"); /* config beats default */
    assert_string_equal(val(o, "admin"), "cfg:2");
    assert_string_equal(val(o, "help"), "1");
    cg_opts_free(o, N_OPTS);

    /* false leaves a flag unset; the empty object changes nothing. */
    path = write_config("f.json", "{\"help\": false}");
    assert_int_equal(parse(o, err, sizeof(err), 1), 0);
    assert_int_equal(cg_opts_fill(o, N_OPTS, path, err, sizeof(err)), 0);
    assert_null(val(o, "help"));
    assert_string_equal(val(o, "log-format"), "json");
    cg_opts_free(o, N_OPTS);
    path = write_config("e.json", " {} \n");
    assert_int_equal(parse(o, err, sizeof(err), 1), 0);
    assert_int_equal(cg_opts_fill(o, N_OPTS, path, err, sizeof(err)), 0);
    assert_string_equal(val(o, "max-connections"), "4096");
    cg_opts_free(o, N_OPTS);
}

static void expect_config_error(const char *text, const char *why)
{
    struct cg_opt o[N_OPTS];
    char err[512] = "";
    const char *path = write_config("bad.json", text);
    table(o);
    if (cg_opts_fill(o, N_OPTS, path, err, sizeof(err)) != CG_ECONFIG)
        fail_msg("config '%.60s' accepted", text);
    if (strstr(err, why) == NULL)
        fail_msg("config '%.60s': error '%s' lacks '%s'", text, err, why);
    if (strstr(err, path) == NULL)
        fail_msg("config error '%s' does not name the file", err);
    cg_opts_free(o, N_OPTS);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_config_error("{\"listen\": \"a:1\", \"bogus\": 1}", "unknown key 'bogus'");
    expect_config_error("{\"config\": \"other.json\"}", "unknown key 'config'");
    expect_config_error("{\"listen\": 1.5}", "key 'listen': expected a string");
    expect_config_error("{\"listen\": -1}", "key 'listen': expected a string");
    expect_config_error("{\"listen\": null}", "key 'listen': expected a string");
    expect_config_error("{\"listen\": [\"a:1\"]}", "key 'listen': expected a string");
    expect_config_error("{\"listen\": {}}", "key 'listen': expected a string");
    expect_config_error("{\"listen\": true}", "key 'listen': expected a string");
    expect_config_error("{\"help\": \"yes\"}", "key 'help': expected a boolean");
    expect_config_error("{\"help\": 1}", "key 'help': expected a boolean");
    expect_config_error("[\"listen\"]", "expected a JSON object");
    expect_config_error("\"listen\"", "expected a JSON object");
    expect_config_error("", "expected a JSON object");
    expect_config_error("{\"listen\": ", "expected a JSON object");
    expect_config_error("{\"listen\": \"a:1\"} {}", "expected a JSON object");
    expect_config_error("{\"listen\": \"a:1\", \"listen\": \"b:2\"}", "expected a JSON object");
    expect_config_error("{\"listen\": \"a:1\", \"admin\": \"x\", \"listen\": \"a:1\"}",
                        "duplicate");

    struct cg_opt o[N_OPTS];
    char err[512] = "";
    char path[256];
    snprintf(path, sizeof(path), "%s/missing.json", tmpdir);
    table(o);
    assert_int_equal(cg_opts_fill(o, N_OPTS, path, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "cannot open"));
}

/* An option given twice is an error naming it, whatever the values and spellings; only a
 * list option repeats, and its values join in order. */
static void test_parse_repeated(void **state)
{
    (void)state;
    struct cg_opt o[N_OPTS];
    char err[256];
    static const char *const twice[][2] = {
        {"--listen=a:1", "--listen=b:2"}, /* the bug: the last one was kept silently */
        {"--listen=a:1", "--listen=a:1"}, /* even the same value */
        {"--admin=", "--admin=x:1"},      /* even an empty one first */
        {"--help", "--help"},             /* a flag without value */
        {"--forwards=[]", "--forwards=[]"},
    };
    for (size_t i = 0; i < sizeof(twice) / sizeof(twice[0]); i++) {
        err[0] = '\0';
        if (parse(o, err, sizeof(err), 3, twice[i][0], twice[i][1]) != CG_ECONFIG)
            fail_msg("%s %s: accepted", twice[i][0], twice[i][1]);
        char want[64];
        snprintf(want, sizeof(want), "'%.*s' given more than once", (int)strcspn(twice[i][0], "="),
                 twice[i][0]);
        if (strstr(err, want) == NULL)
            fail_msg("%s twice: error '%s' lacks '%s'", twice[i][0], err, want);
        cg_opts_free(o, N_OPTS);
    }
    /* The separated form counts too. */
    assert_int_equal(
        parse(o, err, sizeof(err), 5, "--listen", "a:1", "--max-connections=3", "--listen=b:2"),
        CG_ECONFIG);
    assert_non_null(strstr(err, "'--listen' given more than once: it takes one value"));
    assert_int_equal(parse(o, err, sizeof(err), 3, "--help", "--help"), CG_ECONFIG);
    assert_null(strstr(err, "takes one value"));

    /* A list keeps every value in order, however given. */
    assert_int_equal(
        parse(o, err, sizeof(err), 6, "--server", "a:1", "--server=b:2", "--server", "c:3,d:4"), 0);
    assert_string_equal(val(o, "server"), "a:1,b:2,c:3,d:4");
    cg_opts_free(o, N_OPTS);
    assert_null(o[8].owned);
    assert_int_equal(parse(o, err, sizeof(err), 3, "--server", "a:1"), 0);
    assert_string_equal(val(o, "server"), "a:1");
    assert_null(o[8].owned); /* one value stays argv's */
    assert_true(cg_opts_is_list(&o[8]));
    assert_false(cg_opts_is_list(&o[0]));
    assert_false(cg_opts_is_list(&o[4]));
}

/* A list from the config: a string or an array of non-empty strings; from the environment
 * as written; a JSON option keeps any config value as JSON text. */
static void test_config_list_and_json(void **state)
{
    (void)state;
    struct cg_opt o[N_OPTS];
    char err[512] = "";
    const char *path =
        write_config("list.json", "{\"server\": [\"a:1\", \"b:2\"], \"forwards\": [{\"listen\":"
                                  " \"x:1\", \"n\": 2}, true]}");
    assert_int_equal(parse(o, err, sizeof(err), 1), 0);
    assert_int_equal(cg_opts_fill(o, N_OPTS, path, err, sizeof(err)), 0);
    assert_string_equal(val(o, "server"), "a:1,b:2");
    assert_string_equal(val(o, "forwards"), "[{\"listen\":\"x:1\",\"n\":2},true]");
    cg_opts_free(o, N_OPTS);
    /* The command line and the environment win, as for any option. */
    setenv("CCGATE_SERVER", "e:1,e:2", 1);
    assert_int_equal(parse(o, err, sizeof(err), 2, "--forwards=[1]"), 0);
    assert_int_equal(cg_opts_fill(o, N_OPTS, path, err, sizeof(err)), 0);
    assert_string_equal(val(o, "server"), "e:1,e:2");
    assert_string_equal(val(o, "forwards"), "[1]");
    cg_opts_free(o, N_OPTS);
    unsetenv("CCGATE_SERVER");
    path = write_config("list.json", "{\"server\": \"s:1\", \"forwards\": \"text\"}");
    assert_int_equal(parse(o, err, sizeof(err), 1), 0);
    assert_int_equal(cg_opts_fill(o, N_OPTS, path, err, sizeof(err)), 0);
    assert_string_equal(val(o, "server"), "s:1");
    assert_string_equal(val(o, "forwards"), "\"text\"");
    cg_opts_free(o, N_OPTS);

    static const char *const bad[] = {
        "{\"server\": []}",     "{\"server\": [\"a:1\", 2]}",
        "{\"server\": [\"\"]}", "{\"server\": [\"a:1,b:2\"]}",
        "{\"server\": {}}",     "{\"server\": [[\"a:1\"]]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_config_error(bad[i], "key 'server': expected a string or an array of non-empty");
}

/* CCGATE_CONFIG names the config when --config does not; a variable can turn a boolean off
 * against the config; unknown spellings of a boolean are errors naming the variable. */
static void test_env_config_and_booleans(void **state)
{
    (void)state;
    struct cg_opt o[N_OPTS];
    char err[512] = "";
    const char *path = write_config("envcfg.json", "{\"admin\": \"cfg:3\", \"allow-sim\": true}");
    setenv("CCGATE_CONFIG", path, 1);
    assert_int_equal(parse(o, err, sizeof(err), 1), 0);
    assert_int_equal(cg_opts_fill(o, N_OPTS, NULL, err, sizeof(err)), 0);
    assert_string_equal(val(o, "admin"), "cfg:3");
    assert_string_equal(val(o, "allow-sim"), "1");
    cg_opts_free(o, N_OPTS);
    static const char *const offs[] = {"0", "false", "NO", "off"};
    for (size_t i = 0; i < 4; i++) {
        setenv("CCGATE_ALLOW_SIM", offs[i], 1);
        assert_int_equal(parse(o, err, sizeof(err), 1), 0);
        assert_int_equal(cg_opts_fill(o, N_OPTS, NULL, err, sizeof(err)), 0);
        assert_null(val(o, "allow-sim"));
        cg_opts_free(o, N_OPTS);
    }
    setenv("CCGATE_ALLOW_SIM", "Yes", 1);
    unsetenv("CCGATE_CONFIG");
    assert_int_equal(parse(o, err, sizeof(err), 1), 0);
    assert_int_equal(cg_opts_fill(o, N_OPTS, NULL, err, sizeof(err)), 0);
    assert_string_equal(val(o, "allow-sim"), "1");
    cg_opts_free(o, N_OPTS);
    setenv("CCGATE_ALLOW_SIM", "maybe", 1);
    assert_int_equal(parse(o, err, sizeof(err), 1), 0);
    assert_int_equal(cg_opts_fill(o, N_OPTS, NULL, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "CCGATE_ALLOW_SIM"));
    assert_non_null(strstr(err, "maybe"));
    cg_opts_free(o, N_OPTS);
    unsetenv("CCGATE_ALLOW_SIM");
}

/* Relative FILE values in a config are the config folder's; addresses and absolute paths
 * are left as written; the command line's relative paths stay the working directory's. */
static void test_config_relative_paths(void **state)
{
    (void)state;
    struct cg_opt o[N_OPTS];
    char err[512] = "", want[300];
    const char *path = write_config("rel.json", "{\"policy\": \"sub/p.json\", \"admin\": \"a:1\"}");
    assert_int_equal(parse(o, err, sizeof(err), 1), 0);
    assert_int_equal(cg_opts_fill(o, N_OPTS, path, err, sizeof(err)), 0);
    snprintf(want, sizeof(want), "%s/sub/p.json", tmpdir);
    assert_string_equal(val(o, "policy"), want);
    assert_string_equal(val(o, "admin"), "a:1");
    cg_opts_free(o, N_OPTS);
    path = write_config("abs.json", "{\"policy\": \"/etc/p.json\"}");
    assert_int_equal(parse(o, err, sizeof(err), 1), 0);
    assert_int_equal(cg_opts_fill(o, N_OPTS, path, err, sizeof(err)), 0);
    assert_string_equal(val(o, "policy"), "/etc/p.json");
    cg_opts_free(o, N_OPTS);
    assert_int_equal(parse(o, err, sizeof(err), 3, "--policy", "here.json"), 0);
    assert_int_equal(cg_opts_fill(o, N_OPTS, path, err, sizeof(err)), 0);
    assert_string_equal(val(o, "policy"), "here.json");
    cg_opts_free(o, N_OPTS);
}

/* The config limit is 1 MiB: exactly that loads, one byte more does not. */
static void test_config_size(void **state)
{
    (void)state;
    const size_t max = 1024 * 1024;
    char *text = malloc(max + 2);
    assert_non_null(text);
    const char *json = "{\"listen\": \"big:1\"}";
    memset(text, ' ', max + 1);
    memcpy(text, json, strlen(json));
    text[max] = '\0';
    const char *path = write_config("big.json", text);
    struct cg_opt o[N_OPTS];
    char err[512] = "";
    table(o);
    assert_int_equal(cg_opts_fill(o, N_OPTS, path, err, sizeof(err)), 0);
    assert_string_equal(val(o, "listen"), "big:1");
    cg_opts_free(o, N_OPTS);

    text[max] = ' ';
    text[max + 1] = '\0';
    expect_config_error(text, "expected at most 1048576 bytes");
    free(text);
}

static void test_uint(void **state)
{
    (void)state;
    struct cg_opt o = {"n", "N", "", NULL, NULL, NULL};
    unsigned long v = 99;
    char err[256] = "";
    o.value = "10";
    assert_int_equal(cg_opts_uint(&o, 10, 20, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 10);
    o.value = "20";
    assert_int_equal(cg_opts_uint(&o, 10, 20, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 20);
    o.value = "0";
    assert_int_equal(cg_opts_uint(&o, 0, 0, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 0);

    static const char *const bad[] = {"9",   "21",  "",     "-1",  "+15",
                                      " 15", "15 ", "0x10", "1e1", "15abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 99;
        o.value = bad[i];
        err[0] = '\0';
        if (cg_opts_uint(&o, 10, 20, &v, err, sizeof(err)) != CG_ECONFIG)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(v, 99);
        assert_non_null(strstr(err, "--n: expected an integer from 10 to 20"));
    }
    o.value = NULL;
    assert_int_equal(cg_opts_uint(&o, 0, 5, &v, err, sizeof(err)), CG_ECONFIG);

    /* Out of unsigned long range is an error, not a silent clamp to ULONG_MAX. */
    o.value = "18446744073709551615";
    assert_int_equal(cg_opts_uint(&o, 0, 18446744073709551615UL, &v, err, sizeof(err)), 0);
    assert_true(v == 18446744073709551615UL);
    o.value = "18446744073709551616";
    assert_int_equal(cg_opts_uint(&o, 0, 18446744073709551615UL, &v, err, sizeof(err)), CG_ECONFIG);
    o.value = "99999999999999999999999999";
    assert_int_equal(cg_opts_uint(&o, 0, 18446744073709551615UL, &v, err, sizeof(err)), CG_ECONFIG);
}

static void test_usage(void **state)
{
    (void)state;
    struct cg_opt o[N_OPTS];
    table(o);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cg_opts_usage(f, "prog [options]", "Does things.", o, N_OPTS);
    assert_int_equal(fclose(f), 0);
    assert_true(strncmp(text, "usage: prog [options]\n\nDoes things.\n", 36) == 0);
    assert_non_null(strstr(text, "  --listen ADDR:PORT"));
    assert_non_null(strstr(text, "log line format (default: text)\n"));
    assert_non_null(strstr(text, "  --help "));
    assert_null(strstr(text, "print this help (default"));
    free(text);
}

static int group_setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    static const char *const names[] = {"c.json",   "f.json",   "e.json",
                                        "bad.json", "big.json", "envcfg.json",
                                        "rel.json", "abs.json", "list.json"};
    char path[256];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
        (void)unlink(path);
    }
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_parse_forms, setup),
        cmocka_unit_test_setup(test_parse_errors, setup),
        cmocka_unit_test_setup(test_parse_repeated, setup),
        cmocka_unit_test_setup(test_config_list_and_json, setup),
        cmocka_unit_test_setup(test_fill_defaults_and_env, setup),
        cmocka_unit_test_setup(test_fill_config_precedence, setup),
        cmocka_unit_test_setup(test_config_errors, setup),
        cmocka_unit_test_setup(test_config_size, setup),
        cmocka_unit_test_setup(test_env_config_and_booleans, setup),
        cmocka_unit_test_setup(test_config_relative_paths, setup),
        cmocka_unit_test_setup(test_uint, setup),
        cmocka_unit_test_setup(test_usage, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
