#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/conn.h"
#include "ccgate/err.h"
#include "ccgate/stream.h"

/* The connection core on a private loop: a set listening on 127.0.0.1, real TCP clients. */

#define MAX_CONNS 8

struct tconn {
    struct cg_conn conn;
    struct cg_stream down;
    struct fixture *f;
    int reads, timeouts;
    int close_other; /* on_close closes the next live connection */
};

struct fixture {
    uv_loop_t loop;
    struct cg_conns set;
    struct cg_addr addr;
    uv_timer_t guard;
    int timed_out;
    uv_tcp_t clients[MAX_CONNS];
    uv_connect_t creqs[MAX_CONNS];
    int n_clients, clients_closed;
    struct tconn *conns[MAX_CONNS];
    int n_conns;
    int on_close_calls, on_free_calls, on_drain_calls, on_stopped_calls;
    int in_close;        /* inside a cg_conn_close() call of the test */
    int reentered;       /* an ops callback ran inside cg_conn_close() */
    int drain_keeps_one; /* on_drain leaves conns[0] open (a message in flight) */
    uint64_t rearm_ms;   /* on_timeout re-arms once with this */
};

static void on_read(struct cg_stream *s, const uint8_t *data, size_t len)
{
    struct tconn *t = s->data;
    (void)data;
    (void)len;
    t->reads++;
}

static void on_eof(struct cg_stream *s)
{
    struct tconn *t = s->data;
    cg_conn_close(&t->conn, 0, "eof");
}

static void on_error(struct cg_stream *s, int err)
{
    struct tconn *t = s->data;
    cg_conn_close(&t->conn, err, "error");
}

static const struct cg_stream_callbacks stream_cb = {
    .on_read = on_read, .on_eof = on_eof, .on_error = on_error};

static void on_accept(struct cg_conns *set, uv_stream_t *listener)
{
    struct fixture *f = set->data;
    struct tconn *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->f = f;
    cg_conn_init(&t->conn, set, t);
    assert_int_equal(cg_conn_accept(&t->conn, &t->down, listener, &stream_cb), 0);
    assert_int_equal(cg_stream_read_start(&t->down), 0);
    assert_true(f->n_conns < MAX_CONNS);
    f->conns[f->n_conns++] = t;
    if (cg_conns_full(set))
        cg_conn_close(&t->conn, UV_EBUSY, "too_many_connections");
}

static void on_timeout(struct cg_conn *c)
{
    struct tconn *t = c->data;
    struct fixture *f = t->f;
    if (f->in_close)
        f->reentered = 1;
    if (t->timeouts++ == 0 && f->rearm_ms > 0) {
        cg_conn_timer(c, f->rearm_ms);
        return;
    }
    cg_conn_close(c, UV_ETIMEDOUT, "timeout");
}

static void on_drain(struct cg_conn *c)
{
    struct tconn *t = c->data;
    struct fixture *f = t->f;
    f->on_drain_calls++;
    if (f->drain_keeps_one && t == f->conns[0])
        return;
    cg_conn_close(c, 0, "shutdown");
}

static void on_close(struct cg_conn *c)
{
    struct tconn *t = c->data;
    struct fixture *f = t->f;
    if (f->in_close)
        f->reentered = 1;
    f->on_close_calls++;
    /* The legs are muted (nothing reaches the owner from them any more) but still open. */
    assert_true(t->down.closing);
    assert_false(t->down.closed);
    if (t->close_other && c->set->live != NULL)
        cg_conn_close(c->set->live, 0, "closed_by_other");
}

static void on_free(struct cg_conn *c)
{
    struct tconn *t = c->data;
    struct fixture *f = t->f;
    if (f->in_close)
        f->reentered = 1;
    f->on_free_calls++;
    for (int i = 0; i < f->n_conns; i++)
        if (f->conns[i] == t)
            f->conns[i] = NULL;
    free(t);
}

static void on_stopped(struct cg_conns *set)
{
    struct fixture *f = set->data;
    f->on_stopped_calls++;
}

static const struct cg_conn_ops ops = {.on_accept = on_accept,
                                       .on_timeout = on_timeout,
                                       .on_drain = on_drain,
                                       .on_close = on_close,
                                       .on_free = on_free,
                                       .on_stopped = on_stopped};

static void on_guard(uv_timer_t *t)
{
    struct fixture *f = t->data;
    f->timed_out = 1;
}

static void run_until(struct fixture *f, int (*cond)(struct fixture *), uint64_t timeout_ms)
{
    f->timed_out = 0;
    assert_int_equal(uv_timer_start(&f->guard, on_guard, timeout_ms, 0), 0);
    while (!cond(f) && !f->timed_out)
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    (void)uv_timer_stop(&f->guard);
    assert_true(cond(f));
}

static void client_connected(uv_connect_t *req, int status)
{
    (void)req;
    assert_int_equal(status, 0);
}

static void client_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    static char buf[256];
    (void)h;
    (void)n;
    *b = uv_buf_init(buf, sizeof(buf));
}

static void client_closed(uv_handle_t *h)
{
    struct fixture *f = h->data;
    f->clients_closed++;
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    if (n < 0)
        (void)uv_read_stop(s);
}

static int accepted_all(struct fixture *f)
{
    return f->n_conns == f->n_clients;
}

/* Opens n clients and waits until the set accepted each. */
static void connect_clients(struct fixture *f, int n)
{
    for (int i = 0; i < n; i++) {
        uv_tcp_t *c = &f->clients[f->n_clients];
        assert_int_equal(uv_tcp_init(&f->loop, c), 0);
        c->data = f;
        assert_int_equal(uv_tcp_connect(&f->creqs[f->n_clients], c,
                                        (const struct sockaddr *)&f->addr.ss, client_connected),
                         0);
        f->n_clients++;
    }
    run_until(f, accepted_all, 5000);
    for (int i = f->n_clients - n; i < f->n_clients; i++)
        assert_int_equal(uv_read_start((uv_stream_t *)&f->clients[i], client_alloc, client_read),
                         0);
}

static void fixture_open(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->guard), 0);
    f->guard.data = f;
    char err[128];
    assert_int_equal(cg_addr_parse("127.0.0.1:1", 0, &f->addr, err, sizeof(err)), 0);
    ((struct sockaddr_in *)&f->addr.ss)->sin_port = 0;
    assert_int_equal(cg_conns_init(&f->set, &f->loop, &ops, f), 0);
    f->set.name = "test";
    assert_int_equal(cg_conns_listen(&f->set, &f->addr, 16), 0);
    int len = sizeof(f->addr.ss);
    assert_int_equal(uv_tcp_getsockname(&f->set.listener.tcp, (struct sockaddr *)&f->addr.ss, &len),
                     0);
}

static int stopped(struct fixture *f)
{
    return f->on_stopped_calls == 1;
}

static int clients_gone(struct fixture *f)
{
    return f->clients_closed == f->n_clients;
}

/* Aborts what is left, closes the clients and checks the loop ends with nothing open. */
static void fixture_close(struct fixture *f)
{
    cg_conns_abort(&f->set, "test_end");
    run_until(f, stopped, 5000);
    for (int i = 0; i < f->n_clients; i++)
        uv_close((uv_handle_t *)&f->clients[i], client_closed);
    run_until(f, clients_gone, 5000);
    uv_close((uv_handle_t *)&f->guard, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->on_free_calls, f->n_conns);
    assert_int_equal(f->on_close_calls, f->n_conns);
    assert_int_equal(f->on_stopped_calls, 1);
    assert_int_equal(f->set.stats.live, 0);
    assert_int_equal(f->set.unfreed, 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int one_freed(struct fixture *f)
{
    return f->on_free_calls == 1;
}

/* A second close does nothing: the first reason and error stay, on_close and on_free run
 * once, and neither runs inside the call. */
static void test_close_idempotent_and_deferred(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    fixture_open(f);
    connect_clients(f, 1);
    struct tconn *t = f->conns[0];
    f->in_close = 1;
    cg_conn_close(&t->conn, UV_EPIPE, "first");
    cg_conn_close(&t->conn, UV_ECONNRESET, "second");
    f->in_close = 0;
    assert_int_equal(f->on_close_calls, 0);
    assert_int_equal(f->on_free_calls, 0);
    assert_false(cg_conn_live(&t->conn));
    assert_string_equal(t->conn.reason, "first");
    assert_int_equal(t->conn.err, UV_EPIPE);
    assert_int_equal(f->set.stats.live, 0);
    run_until(f, one_freed, 5000);
    assert_int_equal(f->on_close_calls, 1);
    assert_false(f->reentered);
    fixture_close(f);
    free(f);
}

static int two_closed(struct fixture *f)
{
    return f->on_close_calls == 2 && f->on_free_calls == 2;
}

/* A close from inside on_close (a connection ending another) is queued, not run inside it. */
static void test_close_from_on_close_is_queued(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    fixture_open(f);
    connect_clients(f, 2);
    struct tconn *first = f->conns[0];
    first->close_other = 1;
    cg_conn_close(&first->conn, 0, "first");
    /* One loop turn runs the reaper once: on_close of the first queues the second. */
    while (f->on_close_calls == 0)
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->on_close_calls, 1);
    assert_int_equal(f->set.stats.live, 0);
    run_until(f, two_closed, 5000);
    fixture_close(f);
    free(f);
}

static int timed_out_twice(struct fixture *f)
{
    return f->on_free_calls == 1;
}

/* The timer fires on_timeout; re-arming from inside it starts it again. */
static void test_timer_rearm(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    fixture_open(f);
    connect_clients(f, 1);
    struct tconn *t = f->conns[0];
    f->rearm_ms = 30;
    uint64_t t0 = uv_now(&f->loop);
    cg_conn_timer(&t->conn, 20);
    run_until(f, timed_out_twice, 5000);
    uv_update_time(&f->loop);
    assert_true(uv_now(&f->loop) - t0 >= 50);
    fixture_close(f);
    free(f);
}

/* A timer disarmed with 0 does not fire. */
static void test_timer_stop(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    fixture_open(f);
    connect_clients(f, 1);
    cg_conn_timer(&f->conns[0]->conn, 10);
    cg_conn_timer(&f->conns[0]->conn, 0);
    f->timed_out = 0;
    assert_int_equal(uv_timer_start(&f->guard, on_guard, 60, 0), 0);
    while (!f->timed_out)
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->conns[0]->timeouts, 0);
    fixture_close(f);
    free(f);
}

static void late_connected(uv_connect_t *req, int status)
{
    *(int *)req->data = status;
}

static int one_left_and_one_freed(struct fixture *f)
{
    return f->on_free_calls == 2;
}

/* Drain stops accepting, asks each connection, and stops the set only after the last one
 * (here one with a message in flight) is gone; abort then ends it with its reason. */
static void test_drain_waits_then_abort(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    fixture_open(f);
    connect_clients(f, 3);
    f->drain_keeps_one = 1;
    struct tconn *kept = f->conns[0];
    cg_conns_drain(&f->set);
    cg_conns_drain(&f->set); /* idempotent */
    assert_int_equal(f->on_drain_calls, 3);
    run_until(f, one_left_and_one_freed, 5000);
    assert_true(cg_conn_live(&kept->conn));
    assert_int_equal(f->on_stopped_calls, 0);
    /* No new connection is accepted while draining: the listener is closed. */
    uv_tcp_t late;
    uv_connect_t late_req;
    int late_status = 1;
    assert_int_equal(uv_tcp_init(&f->loop, &late), 0);
    late_req.data = &late_status;
    assert_int_equal(
        uv_tcp_connect(&late_req, &late, (const struct sockaddr *)&f->addr.ss, late_connected), 0);
    while (late_status == 1)
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(late_status, UV_ECONNREFUSED);
    assert_int_equal(f->n_conns, 3);
    uv_close((uv_handle_t *)&late, NULL);
    cg_conns_abort(&f->set, "shutdown_deadline");
    assert_string_equal(kept->conn.reason, "shutdown_deadline");
    assert_int_equal(kept->conn.err, UV_ECANCELED);
    run_until(f, stopped, 5000);
    fixture_close(f);
    free(f);
}

/* max_conns: the connection past the limit is closed with its reason. */
static void test_full(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    fixture_open(f);
    f->set.max_conns = 1;
    connect_clients(f, 2);
    run_until(f, one_freed, 5000);
    assert_null(f->conns[1]);
    assert_non_null(f->conns[0]);
    fixture_close(f);
    free(f);
}

/* A peer that half-closes reaches the owner (on_eof), whose close is reaped. */
static void test_peer_close(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    fixture_open(f);
    connect_clients(f, 1);
    uv_shutdown_t req;
    assert_int_equal(uv_shutdown(&req, (uv_stream_t *)&f->clients[0], NULL), 0);
    run_until(f, one_freed, 5000);
    fixture_close(f);
    free(f);
}

static void stopped_only(struct cg_conns *set)
{
    struct fixture *f = set->data;
    f->on_stopped_calls++;
}

/* A set that could not listen stops cleanly, leaving nothing open. */
static void test_listen_fails(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    fixture_open(f);
    static const struct cg_conn_ops ops2 = {
        .on_accept = on_accept, .on_free = on_free, .on_stopped = stopped_only};
    struct cg_conns second;
    assert_int_equal(cg_conns_init(&second, &f->loop, &ops2, f), 0);
    assert_int_equal(cg_conns_listen(&second, &f->addr, 16), UV_EADDRINUSE);
    cg_conns_drain(&second);
    run_until(f, stopped, 5000);
    f->on_stopped_calls = 0;
    fixture_close(f);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_idempotent_and_deferred),
        cmocka_unit_test(test_close_from_on_close_is_queued),
        cmocka_unit_test(test_timer_rearm),
        cmocka_unit_test(test_timer_stop),
        cmocka_unit_test(test_drain_waits_then_abort),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_peer_close),
        cmocka_unit_test(test_listen_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
