/* The audit log's hash chain: appends continue across opens; any edit, deletion, reordering
 * or cut line is found at the right line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccgate/audit.h"
#include "ccgate/err.h"
#include "ccgate/ratls.h"

static char path[64];

static void write_log(int n)
{
    struct cg_audit *a;
    char err[256];
    assert_int_equal(cg_audit_open(path, &a, err, sizeof(err)), 0);
    for (int i = 0; i < n; i++) {
        json_t *e = json_pack("{s:s,s:i}", "decision", i % 2 ? "denied" : "granted", "i", i);
        assert_int_equal(cg_audit_append(a, e), 0);
        json_decref(e);
    }
    cg_audit_close(a);
}

/* Rewrites the log with fn applied to its lines (an array of strings). */
static void edit(void (*fn)(char **lines, int *n))
{
    FILE *f = fopen(path, "r");
    char *lines[32], buf[4096];
    int n = 0;
    while (n < 32 && fgets(buf, sizeof(buf), f) != NULL)
        lines[n++] = strdup(buf);
    fclose(f);
    fn(lines, &n);
    f = fopen(path, "w");
    for (int i = 0; i < n; i++) {
        fputs(lines[i], f);
        free(lines[i]);
    }
    fclose(f);
}

static void flip_line2(char **l, int *n)
{
    (void)n;
    char *p = strstr(l[1], "\"i\":1");
    p[4] = '7';
}

static void drop_line2(char **l, int *n)
{
    free(l[1]);
    memmove(&l[1], &l[2], sizeof(char *) * (size_t)(*n - 2));
    (*n)--;
}

static void swap_lines(char **l, int *n)
{
    (void)n;
    char *t = l[1];
    l[1] = l[2];
    l[2] = t;
}

/* An editor who also recomputes the edited line's own hash is caught at the next line. */
static void rehash_line2(char **l, int *n)
{
    (void)n;
    flip_line2(l, n);
    char *h = strstr(l[1], ",\"hash\":\"");
    uint8_t d[32];
    assert_int_equal(cg_sha256((const uint8_t *)l[1], (size_t)(h - l[1]), d), 0);
    cg_hex(h + 9, 65, d, 32);
    h[9 + 64] = '"';
}

static void cut_newline(char **l, int *n)
{
    l[*n - 1][strlen(l[*n - 1]) - 1] = '\0';
}

static void test_chain(void **state)
{
    (void)state;
    struct cg_audit_summary s;
    strcpy(path, "/tmp/ccgate-audit-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_log(2);
    write_log(2); /* a second open continues the chain */
    assert_int_equal(cg_audit_verify(path, &s), 0);
    assert_int_equal(s.lines, 4);
    assert_int_equal(s.granted, 2);
    assert_int_equal(s.denied, 2);
    assert_int_equal(strlen(s.head), 64);

    void (*edits[])(char **, int *) = {flip_line2, drop_line2, swap_lines, cut_newline,
                                       rehash_line2};
    const uint64_t bad[] = {2, 2, 2, 4, 3};
    for (size_t i = 0; i < 5; i++) {
        unlink(path);
        write_log(4);
        edit(edits[i]);
        assert_int_equal(cg_audit_verify(path, &s), CG_EEVIDENCE);
        if (s.bad_line != bad[i])
            fail_msg("edit %zu: bad line %llu (%s)", i, (unsigned long long)s.bad_line, s.why);
        /* The broker refuses to continue a broken log. */
        struct cg_audit *a;
        char err[256];
        assert_int_equal(cg_audit_open(path, &a, err, sizeof(err)), CG_EEVIDENCE);
        assert_non_null(strstr(err, "breaks the chain"));
    }
    unlink(path);
}

static void test_event_cannot_set_chain_fields(void **state)
{
    (void)state;
    struct cg_audit *a;
    struct cg_audit_summary s;
    char err[256];
    strcpy(path, "/tmp/ccgate-audit-XXXXXX");
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(cg_audit_open(path, &a, err, sizeof(err)), 0);
    json_t *e = json_pack("{s:i,s:s}", "seq", 99, "prev", "00");
    assert_int_equal(cg_audit_append(a, e), 0);
    json_decref(e);
    cg_audit_close(a);
    assert_int_equal(cg_audit_verify(path, &s), 0);
    assert_int_equal(s.lines, 1);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_event_cannot_set_chain_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
