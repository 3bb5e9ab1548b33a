#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <signal.h>
#include <uv.h>

#include "ccgate/signals.h"

/* Real signals sent to this process, caught on a private loop. */

struct fixture {
    uv_loop_t loop;
    struct cg_signals sg;
    int drains, drain_signum, deadlines, reloads;
    uint64_t drain_at, deadline_at;
};

static void on_drain(struct cg_signals *sg, int signum)
{
    struct fixture *f = sg->data;
    f->drains++;
    f->drain_signum = signum;
    f->drain_at = uv_now(&f->loop);
}

static void on_deadline(struct cg_signals *sg)
{
    struct fixture *f = sg->data;
    f->deadlines++;
    f->deadline_at = uv_now(&f->loop);
    cg_signals_close(sg);
}

static void on_reload(struct cg_signals *sg)
{
    struct fixture *f = sg->data;
    f->reloads++;
}

static void open_fixture(struct fixture *f, int with_reload, uint64_t drain_ms)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->sg.data = f;
    f->sg.on_drain = on_drain;
    f->sg.on_deadline = on_deadline;
    f->sg.on_reload = with_reload ? on_reload : NULL;
    f->sg.drain_ms = drain_ms;
    assert_int_equal(cg_signals_start(&f->sg, &f->loop), 0);
}

static void close_fixture(struct fixture *f)
{
    cg_signals_close(&f->sg);
    cg_signals_close(&f->sg); /* idempotent */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void run_until_count(struct fixture *f, const int *counter, int want)
{
    for (int i = 0; i < 1000 && *counter < want; i++)
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(*counter, want);
}

/* SIGHUP calls on_reload each time and starts no drain. */
static void test_sighup_reloads(void **state)
{
    (void)state;
    static struct fixture f;
    open_fixture(&f, 1, 1000);
    assert_int_equal(kill(getpid(), SIGHUP), 0);
    run_until_count(&f, &f.reloads, 1);
    assert_int_equal(kill(getpid(), SIGHUP), 0);
    run_until_count(&f, &f.reloads, 2);
    assert_int_equal(f.drains, 0);
    assert_false(f.sg.draining);
    close_fixture(&f);
}

/* The first SIGTERM drains; a second one does nothing; the deadline fires drain_ms later,
 * and the deadline timer alone does not keep the loop running. */
static void test_sigterm_drain_and_deadline(void **state)
{
    (void)state;
    static struct fixture f;
    open_fixture(&f, 1, 50);
    assert_int_equal(kill(getpid(), SIGTERM), 0);
    run_until_count(&f, &f.drains, 1);
    assert_int_equal(f.drain_signum, SIGTERM);
    assert_true(f.sg.draining);
    assert_int_equal(kill(getpid(), SIGINT), 0);
    /* The deadline closes the handles (on_deadline above): the loop ends by itself. */
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.drains, 1);
    assert_int_equal(f.deadlines, 1);
    assert_true(f.deadline_at - f.drain_at >= 50);
    close_fixture(&f);
}

/* Closed before the deadline (the daemon finished in time): no deadline call. */
static void test_close_before_deadline(void **state)
{
    (void)state;
    static struct fixture f;
    open_fixture(&f, 0, 60000);
    cg_signals_drain(&f.sg, 0);
    cg_signals_drain(&f.sg, 0);
    assert_int_equal(f.drains, 1);
    close_fixture(&f);
    assert_int_equal(f.deadlines, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sighup_reloads),
        cmocka_unit_test(test_sigterm_drain_and_deadline),
        cmocka_unit_test(test_close_before_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
