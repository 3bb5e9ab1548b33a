#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccgate/err.h"
#include "ccgate/token.h"

#define TOK_A "0123456789abcdef0123456789abcdef"         /* 32 characters */
#define TOK_B "Zm9vYmFyLWJhei1xdXV4LWNvcmdlLWdyYXVsdA==" /* base64 with padding */
/* SHA-256 of TOK_A (sha256sum) */
#define DIG_A "3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9"

static char dir[64];

static const char *write_file(const char *name, const char *text, size_t len)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

/* The file entry for token, as `ccgate token hash` writes it. */
static void entry(const char *token, const char *name, char *out, size_t cap)
{
    char err[256];
    assert_int_equal(cg_token_entry(token, strlen(token), name, out, cap, err, sizeof(err)), 0);
}

static enum cg_token_fail check(const struct cg_tokens *t, const char *value, const char **name)
{
    return cg_tokens_check(t, value, value != NULL ? strlen(value) : 0, name);
}

static void test_load_and_check(void **state)
{
    (void)state;
    char a[128], b[128], text[512];
    entry(TOK_A, "alice", a, sizeof(a));
    entry(TOK_B, NULL, b, sizeof(b));
    assert_string_equal(a, "sha256:" DIG_A " alice\n");
    snprintf(text, sizeof(text), "# tokens\n\n  %s\t%s", a, b);
    struct cg_tokens *t = NULL;
    char err[256];
    assert_int_equal(cg_tokens_load(write_file("ok", text, strlen(text)), &t, err, sizeof(err)), 0);
    assert_int_equal(cg_tokens_count(t), 2);
    const char *name = NULL;
    assert_int_equal(check(t, "Bearer " TOK_A, &name), CG_TOKEN_OK);
    assert_string_equal(name, "alice");
    /* the scheme is case-insensitive; several spaces may follow it */
    assert_int_equal(check(t, "bearer   " TOK_B, &name), CG_TOKEN_OK);
    assert_int_equal(strncmp(name, "sha256:", 7), 0);
    assert_int_equal(strlen(name), 7 + 12);
    assert_memory_equal(name + 7, b + 7, 12);

    assert_int_equal(check(t, NULL, &name), CG_TOKEN_MISSING);
    assert_null(name);
    assert_int_equal(check(t, "Basic " TOK_A, &name), CG_TOKEN_SCHEME);
    assert_int_equal(check(t, "Bearer", &name), CG_TOKEN_SCHEME);
    assert_int_equal(check(t, TOK_A, &name), CG_TOKEN_SCHEME);
    assert_int_equal(check(t, "Bearer ", &name), CG_TOKEN_MALFORMED);
    assert_int_equal(check(t, "Bearer " TOK_A " x", &name), CG_TOKEN_MALFORMED);
    assert_int_equal(check(t, "Bearer =" TOK_A, &name), CG_TOKEN_MALFORMED);
    assert_int_equal(check(t, "Bearer " TOK_A "x", &name), CG_TOKEN_UNKNOWN);
    assert_int_equal(check(t, "Bearer " TOK_B "=", &name), CG_TOKEN_UNKNOWN);
    assert_null(name);
    /* a NUL inside the value is not part of a token */
    static const char nul[] = "Bearer " TOK_A "\0";
    assert_int_equal(cg_tokens_check(t, nul, sizeof(nul) - 1, &name), CG_TOKEN_MALFORMED);
    assert_string_equal(cg_token_fail_name(CG_TOKEN_UNKNOWN), "unknown");
    cg_tokens_free(t);
}

/* Each bad file: refused with CG_ECONFIG (or the given code) and a message with want. */
static void expect_bad(const char *text, size_t len, int code, const char *want)
{
    struct cg_tokens *t = NULL;
    char err[256] = "";
    int rc = cg_tokens_load(write_file("bad", text, len), &t, err, sizeof(err));
    if (rc != code || strstr(err, want) == NULL)
        fail_msg("file '%.60s': rc %d (want %d), err '%s' (want '%s')", text, rc, code, err, want);
    assert_null(t);
}

#define BAD(lit, want) expect_bad(lit, sizeof(lit) - 1, CG_ECONFIG, want)

static void test_bad_files(void **state)
{
    (void)state;
    char a[128], text[512];
    entry(TOK_A, "alice", a, sizeof(a));
    BAD("", "no entry: expected at least one");
    BAD("# only a comment\n\n", "no entry");
    BAD("sha1:" DIG_A "\n", "line 1: expected `sha256:<64 hex digits> [NAME]`");
    BAD("# c\n" DIG_A " alice\n", "line 2: expected `sha256:");
    BAD("sha256:" DIG_A "0 x\n", "line 1: digest: expected 64 hex digits, got 65");
    BAD("\nsha256:3eb1\n", "line 2: digest: expected 64 hex digits, got 4");
    BAD("sha256:zzb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9\n",
        "line 1: digest: expected 64 hex digits");
    BAD("sha256:" DIG_A " al/ice\n", "line 1: name: expected letters, digits");
    BAD("sha256:" DIG_A " alice bob\n", "line 1: expected `sha256:<64 hex digits> [NAME]`");
    BAD("sha256:" DIG_A " a\nsha256:" DIG_A " b\n", "line 2: expected each token once");
    snprintf(text, sizeof(text), "%ssha256:%064d alice\n", a, 0);
    expect_bad(text, strlen(text), CG_ECONFIG, "line 2: name 'alice': expected each name once");
    expect_bad("sha256:" DIG_A "\0\n", 7 + 64 + 2, CG_ECONFIG, "NUL byte");

    struct cg_tokens *t = NULL;
    char err[256] = "";
    char path[160];
    snprintf(path, sizeof(path), "%s/absent", dir);
    assert_true(cg_tokens_load(path, &t, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "cannot read"));
    assert_null(t);
    /* unreadable: a folder */
    assert_true(cg_tokens_load(dir, &t, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "cannot read"));
}

static void test_entry(void **state)
{
    (void)state;
    char out[128], err[256];
    assert_int_equal(cg_token_entry("short", 5, NULL, out, sizeof(out), err, sizeof(err)),
                     CG_ECONFIG);
    assert_non_null(strstr(err, "expected 32 to 512 characters"));
    static const char spaced[] = "0123456789abcdef 123456789abcdef0";
    assert_int_equal(
        cg_token_entry(spaced, sizeof(spaced) - 1, NULL, out, sizeof(out), err, sizeof(err)),
        CG_ECONFIG);
    assert_non_null(strstr(err, "expected only letters, digits"));
    assert_int_equal(cg_token_entry(TOK_A, 32, "no spaces", out, sizeof(out), err, sizeof(err)),
                     CG_ECONFIG);
    assert_non_null(strstr(err, "--name: expected"));
    assert_int_equal(cg_token_entry(TOK_A, 32, NULL, out, 20, err, sizeof(err)), CG_ELIMIT);
    /* the digest is SHA-256 of the token's bytes (checked with sha256sum by the CLI test) */
    assert_int_equal(cg_token_entry(TOK_A, 32, "a@b.c-d_e", out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(strlen(out), 7 + 64 + 1 + 9 + 1);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cg_test_token.XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_check),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_entry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
