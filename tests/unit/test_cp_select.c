#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cp_select.h"

/* The client's choice among the servers of a forward, and the backoff of an ejected one. */

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The least loaded server in rotation wins; equal loads go round robin from start. */
static void test_least_outstanding(void **state)
{
    (void)state;
    struct cp_cand c[] = {
        {CP_RANK_VERIFIED, 0, 3}, {CP_RANK_VERIFIED, 0, 1}, {CP_RANK_VERIFIED, 0, 2}};
    assert_int_equal(cp_select(c, N(c), 0), 1);
    assert_int_equal(cp_select(c, N(c), 2), 1);
    c[1].outstanding = 2;
    assert_int_equal(cp_select(c, N(c), 0), 1);
    assert_int_equal(cp_select(c, N(c), 2), 2); /* tie between 1 and 2: the first from start */
    c[0].outstanding = 2;
    for (size_t start = 0; start < 3; start++)
        assert_int_equal(cp_select(c, N(c), start), (int)start);
}

/* A server out of rotation gets nothing while one is in rotation, however loaded. */
static void test_rotation_first(void **state)
{
    (void)state;
    struct cp_cand c[] = {{CP_RANK_BACKOFF, 0, 0},
                          {CP_RANK_DUE, 0, 0},
                          {CP_RANK_NEVER, 0, 0},
                          {CP_RANK_VERIFIED, 0, 1000}};
    assert_int_equal(cp_select(c, N(c), 0), 3);
    c[3].rank = CP_RANK_EXCLUDED;
    assert_int_equal(cp_select(c, N(c), 0), 2); /* not appraised yet before ejected */
    c[2].rank = CP_RANK_EXCLUDED;
    assert_int_equal(cp_select(c, N(c), 0), 1); /* backoff over before still backing off */
    c[1].rank = CP_RANK_EXCLUDED;
    assert_int_equal(cp_select(c, N(c), 0), 0);
}

/* A server that failed appraisal for the request is never chosen; with every one excluded,
 * nothing is. */
static void test_excluded_never(void **state)
{
    (void)state;
    struct cp_cand c[] = {{CP_RANK_EXCLUDED, 0, 0}, {CP_RANK_BACKOFF, 1, 50}};
    assert_int_equal(cp_select(c, N(c), 0), 1);
    c[1].rank = CP_RANK_EXCLUDED;
    assert_int_equal(cp_select(c, N(c), 0), -1);
    assert_int_equal(cp_select(c, 0, 0), -1);
}

/* Within a rank, a server the request did not fail at yet beats a less loaded tried one. */
static void test_untried_first(void **state)
{
    (void)state;
    struct cp_cand c[] = {{CP_RANK_VERIFIED, 1, 0}, {CP_RANK_VERIFIED, 0, 9}};
    assert_int_equal(cp_select(c, N(c), 0), 1);
    c[1].rank = CP_RANK_DUE; /* but rank comes first */
    assert_int_equal(cp_select(c, N(c), 0), 0);
}

static void test_backoff(void **state)
{
    (void)state;
    unsigned ms = 0, seen[8];
    for (int i = 0; i < 8; i++)
        seen[i] = ms = cp_backoff_next(ms, 250, 10000);
    assert_int_equal(seen[0], 250);
    assert_int_equal(seen[1], 500);
    assert_int_equal(seen[2], 1000);
    assert_int_equal(seen[5], 8000);
    assert_int_equal(seen[6], 10000); /* bounded */
    assert_int_equal(seen[7], 10000);
    assert_int_equal(cp_backoff_next(0, 500, 300), 300);
    assert_int_equal(cp_backoff_next(0xF0000000u, 1, 0xFFFFFFFFu), 0xFFFFFFFFu); /* no wrap */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_least_outstanding), cmocka_unit_test(test_rotation_first),
        cmocka_unit_test(test_excluded_never),    cmocka_unit_test(test_untried_first),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
