#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/err.h"
#include "ccgate/stream.h"

/* Two plain cg_streams joined over a real 127.0.0.1 TCP connection. */

#define BIG_TOTAL (8u * 1024 * 1024)
#define CHUNK (64 * 1024)

struct side {
    struct pair *p;
    char in[4096];
    size_t in_len;
    uint64_t total;  /* bytes read */
    int pattern_bad; /* a byte of the big transfer differed */
    int eofs, errors, last_err, drains, connects, connect_status, closes;
    size_t queued_at_first_drain;
    int drained_while_peer_idle;
    int close_on_read; /* closes its own stream from inside on_read */
};

struct pair {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t timer;
    int timed_out;
    struct cg_addr addr;
    struct cg_stream client, server;
    struct side c, s;
    int accepted, server_reads, server_idle;
    uint64_t expect_total; /* bytes the server reads in the backpressure test */
};

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i % 251);
}

static void on_stream_closed(struct cg_stream *st, void *arg)
{
    struct side *sd = arg;
    assert_ptr_equal(sd, st->data);
    sd->closes++;
}

static void on_read(struct cg_stream *st, const uint8_t *data, size_t len)
{
    struct side *sd = st->data;
    if (sd->in_len + len < sizeof(sd->in))
        memcpy(sd->in + sd->in_len, data, len);
    if (sd->in_len < sizeof(sd->in))
        sd->in_len += len;
    for (size_t i = 0; i < len; i++)
        if (data[i] != pattern(sd->total + i))
            sd->pattern_bad = 1;
    sd->total += len;
    if (sd->close_on_read) {
        cg_stream_close(st, on_stream_closed, st->data);
        cg_stream_close(st, on_stream_closed, st->data);
    }
}

static void on_eof(struct cg_stream *st)
{
    struct side *sd = st->data;
    sd->eofs++;
}

static void on_error(struct cg_stream *st, int err)
{
    struct side *sd = st->data;
    sd->errors++;
    sd->last_err = err;
}

static void on_drain(struct cg_stream *st)
{
    struct side *sd = st->data;
    if (sd->drains++ == 0)
        sd->queued_at_first_drain = st->queued;
    if (sd->p->server_idle)
        sd->drained_while_peer_idle = 1;
}

static void on_connect(struct cg_stream *st, int status)
{
    struct side *sd = st->data;
    sd->connects++;
    sd->connect_status = status;
}

static const struct cg_stream_callbacks cbs = {.on_read = on_read,
                                               .on_eof = on_eof,
                                               .on_error = on_error,
                                               .on_drain = on_drain,
                                               .on_connect = on_connect};

static void on_connection(uv_stream_t *l, int status)
{
    struct pair *p = l->data;
    assert_int_equal(status, 0);
    assert_int_equal(p->accepted, 0);
    assert_int_equal(cg_stream_init(&p->server, &p->loop, 0, &cbs, &p->s), 0);
    assert_int_equal(cg_stream_accept(&p->server, l), 0);
    p->accepted = 1;
    if (p->server_reads)
        assert_int_equal(cg_stream_read_start(&p->server), 0);
}

static void on_timer(uv_timer_t *t)
{
    struct pair *p = t->data;
    p->timed_out = 1;
}

/* Runs the loop until cond holds; fails the test after timeout_ms. */
static void run_until(struct pair *p, int (*cond)(struct pair *), uint64_t timeout_ms)
{
    p->timed_out = 0;
    assert_int_equal(uv_timer_start(&p->timer, on_timer, timeout_ms, 0), 0);
    while (!cond(p) && !p->timed_out)
        (void)uv_run(&p->loop, UV_RUN_ONCE);
    (void)uv_timer_stop(&p->timer);
    assert_true(cond(p));
}

/* Runs the loop for ms milliseconds whatever happens. */
static int never(struct pair *p)
{
    return p->timed_out;
}

static void run_for(struct pair *p, uint64_t ms)
{
    p->timed_out = 0;
    assert_int_equal(uv_timer_start(&p->timer, on_timer, ms, 0), 0);
    while (!never(p))
        (void)uv_run(&p->loop, UV_RUN_ONCE);
}

static int connected(struct pair *p)
{
    return p->accepted && p->c.connects == 1;
}

static void pair_open(struct pair *p, int server_reads)
{
    memset(p, 0, sizeof(*p));
    p->c.p = p->s.p = p;
    p->server_reads = server_reads;
    assert_int_equal(uv_loop_init(&p->loop), 0);
    assert_int_equal(uv_timer_init(&p->loop, &p->timer), 0);
    p->timer.data = p;
    char err[128];
    assert_int_equal(cg_addr_parse("127.0.0.1:1", 0, &p->addr, err, sizeof(err)), 0);
    ((struct sockaddr_in *)&p->addr.ss)->sin_port = 0;
    assert_int_equal(uv_tcp_init(&p->loop, &p->listener), 0);
    p->listener.data = p;
    assert_int_equal(uv_tcp_bind(&p->listener, (const struct sockaddr *)&p->addr.ss, 0), 0);
    /* Small kernel buffers (inherited by the accepted socket) so that backpressure shows. */
    int rcv = 32 * 1024;
    assert_int_equal(uv_recv_buffer_size((uv_handle_t *)&p->listener, &rcv), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&p->listener, 8, on_connection), 0);
    int len = sizeof(p->addr.ss);
    assert_int_equal(uv_tcp_getsockname(&p->listener, (struct sockaddr *)&p->addr.ss, &len), 0);

    assert_int_equal(cg_stream_init(&p->client, &p->loop, 0, &cbs, &p->c), 0);
    assert_int_equal(cg_stream_connect(&p->client, &p->addr), 0);
    run_until(p, connected, 5000);
    assert_int_equal(p->c.connect_status, 0);
    assert_int_equal(cg_stream_read_start(&p->client), 0);
}

static int all_closed(struct pair *p)
{
    return p->c.closes == 1 && (!p->accepted || p->s.closes == 1);
}

/* Closes whatever is open (twice: close is idempotent) and checks that nothing is left. */
static void pair_close(struct pair *p)
{
    cg_stream_close(&p->client, on_stream_closed, p->client.data);
    cg_stream_close(&p->client, on_stream_closed, p->client.data);
    if (p->accepted) {
        cg_stream_close(&p->server, on_stream_closed, p->server.data);
        cg_stream_close(&p->server, on_stream_closed, p->server.data);
    }
    run_until(p, all_closed, 5000);
    uv_close((uv_handle_t *)&p->listener, NULL);
    uv_close((uv_handle_t *)&p->timer, NULL);
    assert_int_equal(uv_run(&p->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(p->c.closes, 1);
    assert_int_equal(uv_loop_close(&p->loop), 0);
}

static int server_got_hello_and_eof(struct pair *p)
{
    return p->s.in_len == 11 && p->s.eofs == 1;
}

static int client_got_reply_and_eof(struct pair *p)
{
    return p->c.in_len == 5 && p->c.eofs == 1;
}

/* Data both ways; each side's FIN reaches the other as on_eof, and the half-closed side
 * can still send. */
static void test_data_and_half_close(void **state)
{
    (void)state;
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    pair_open(p, 1);
    assert_int_equal(cg_stream_write(&p->client, "hello ", 6), 0);
    assert_int_equal(cg_stream_write(&p->client, "world", 5), 0);
    assert_int_equal(cg_stream_write(&p->client, "", 0), 0);
    cg_stream_shutdown(&p->client);
    cg_stream_shutdown(&p->client);
    assert_int_equal(cg_stream_write(&p->client, "late", 4), UV_EPIPE);
    run_until(p, server_got_hello_and_eof, 5000);
    assert_memory_equal(p->s.in, "hello world", 11);
    assert_int_equal(p->server.bytes_in, 11);
    assert_int_equal(p->client.bytes_out, 11);
    assert_int_equal(p->c.eofs, 0); /* only the client's side was shut */
    /* Reading again after EOF is a no-op, not an error. */
    assert_int_equal(cg_stream_read_start(&p->server), 0);

    assert_int_equal(cg_stream_write(&p->server, "reply", 5), 0);
    cg_stream_shutdown(&p->server);
    run_until(p, client_got_reply_and_eof, 5000);
    assert_memory_equal(p->c.in, "reply", 5);
    assert_int_equal(p->client.bytes_in, 5);
    assert_int_equal(p->c.errors + p->s.errors, 0);
    assert_int_equal(p->s.eofs, 1);
    pair_close(p);
    free(p);
}

static void on_reset_closed(uv_handle_t *h)
{
    struct cg_stream *st = h->data;
    on_stream_closed(st, st->data);
}

static int server_read_all(struct pair *p)
{
    return p->s.total == p->expect_total;
}

static int client_drained_all(struct pair *p)
{
    return p->client.queued == 0;
}

/* The client queues far more than the kernel takes while the server does not read: the
 * queue passes the high-water mark and on_drain stays silent; once the server reads,
 * on_drain fires with the queue below the low-water mark, and every byte arrives in order. */
static void test_backpressure(void **state)
{
    (void)state;
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    pair_open(p, 0);
    int snd = 32 * 1024;
    assert_int_equal(uv_send_buffer_size((uv_handle_t *)&p->client.h.tcp, &snd), 0);
    uint8_t *chunk = malloc(CHUNK);
    assert_non_null(chunk);
    p->server_idle = 1;
    /* The peer does not read: the queue grows to the cap, and the write that would pass it
     * is refused whole (nothing of it sent or queued). */
    uint64_t off = 0;
    int rc = 0;
    for (; off < BIG_TOTAL; off += CHUNK) {
        for (size_t i = 0; i < CHUNK; i++)
            chunk[i] = pattern(off + i);
        size_t queued = p->client.queued;
        rc = cg_stream_write(&p->client, chunk, CHUNK);
        if (rc < 0) {
            assert_int_equal(p->client.queued, queued);
            break;
        }
    }
    free(chunk);
    assert_int_equal(rc, UV_ENOBUFS);
    assert_true(p->client.queued + CHUNK > CG_STREAM_MAX_QUEUED);
    assert_int_equal(p->client.bytes_out, off);
    assert_true(p->client.above_high);
    run_for(p, 200);
    /* The kernel took a little; the rest stays queued and no drain was reported. */
    assert_true(p->client.queued >= CG_STREAM_HIGH_WATER);
    assert_int_equal(p->c.drains, 0);
    assert_false(p->client.failed);

    p->server_idle = 0;
    p->expect_total = off;
    assert_int_equal(cg_stream_read_start(&p->server), 0);
    run_until(p, server_read_all, 20000);
    run_until(p, client_drained_all, 5000);
    assert_int_equal(p->s.pattern_bad, 0);
    assert_true(p->c.drains >= 1);
    assert_int_equal(p->c.drained_while_peer_idle, 0);
    assert_true(p->c.queued_at_first_drain < CG_STREAM_LOW_WATER);
    assert_false(p->client.above_high);
    assert_int_equal(p->server.bytes_in, off);
    pair_close(p);
    free(p);
}

/* A small write goes to the kernel inside the call: nothing queued, so no on_drain (that
 * reports queued output written), and the peer gets the byte. */
static int server_got_x(struct pair *p)
{
    return p->s.in_len == 1;
}

static void test_write_taken_at_once(void **state)
{
    (void)state;
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    pair_open(p, 1);
    uv_buf_t bufs[2] = {uv_buf_init((char *)"", 0), uv_buf_init((char *)"x", 1)};
    assert_int_equal(cg_stream_writev(&p->client, bufs, 2), 0);
    assert_int_equal(p->client.queued, 0);
    assert_int_equal(p->client.bytes_out, 1);
    run_until(p, server_got_x, 5000);
    assert_int_equal(p->s.in[0], 'x');
    assert_int_equal(p->c.drains, 0);
    pair_close(p);
    free(p);
}

static int client_failed_once(struct pair *p)
{
    return p->c.errors == 1;
}

/* The peer reset the connection while this side does not read: a write error (and the
 * shutdown's) reaches the owner through on_error, from the loop, not inside the call. */
static void test_write_and_shutdown_errors_reach_owner(void **state)
{
    (void)state;
    for (int use_shutdown = 0; use_shutdown < 2; use_shutdown++) {
        struct pair *p = calloc(1, sizeof(*p));
        assert_non_null(p);
        pair_open(p, 1);
        cg_stream_read_stop(&p->client);
        assert_int_equal(uv_tcp_close_reset(&p->server.h.tcp, on_reset_closed), 0);
        p->server.closing = p->server.closed = 1; /* closed by hand above */
        run_for(p, 50); /* the RST arrives */
        int rc =
            use_shutdown ? cg_stream_shutdown(&p->client) : cg_stream_write(&p->client, "late", 4);
        assert_int_equal(rc, 0);
        assert_int_equal(p->c.errors, 0);
        run_until(p, client_failed_once, 5000);
        assert_true(p->c.last_err == UV_ECONNRESET || p->c.last_err == UV_EPIPE ||
                    p->c.last_err == UV_ENOTCONN);
        assert_true(p->client.failed);
        pair_close(p);
        free(p);
    }
}

/* Closing with writes in flight, closing twice, and using a closed stream. */
static void test_close_with_pending_writes(void **state)
{
    (void)state;
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    pair_open(p, 0);
    uint8_t *chunk = calloc(1, CHUNK);
    assert_non_null(chunk);
    for (int i = 0; i < 64; i++)
        assert_int_equal(cg_stream_write(&p->client, chunk, CHUNK), 0);
    free(chunk);
    cg_stream_close(&p->client, on_stream_closed, p->client.data);
    assert_int_equal(cg_stream_write(&p->client, "x", 1), UV_ECANCELED);
    cg_stream_shutdown(&p->client);
    assert_int_equal(cg_stream_read_start(&p->client), 0);
    pair_close(p);
    /* Cancelled writes report nothing to the owner. */
    assert_int_equal(p->c.errors, 0);
    assert_int_equal(p->c.drains, 0);
    free(p);

    /* A stream that was never initialized closes as a no-op. */
    struct cg_stream never_inited;
    memset(&never_inited, 0, sizeof(never_inited));
    cg_stream_close(&never_inited, on_stream_closed, NULL);
}

static int server_closed_client_eof(struct pair *p)
{
    return p->s.closes == 1 && p->c.eofs == 1;
}

/* The owner may close the stream from inside on_read (twice: the second is a no-op); the
 * peer then sees an orderly EOF. */
static void test_close_inside_read(void **state)
{
    (void)state;
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    pair_open(p, 1);
    p->s.close_on_read = 1;
    assert_int_equal(cg_stream_write(&p->client, "abc", 3), 0);
    run_until(p, server_closed_client_eof, 5000);
    assert_int_equal(p->s.total, 3);
    assert_int_equal(p->s.errors + p->c.errors, 0);
    pair_close(p);
    assert_int_equal(p->s.closes, 1);
    free(p);
}

static int client_failed(struct pair *p)
{
    return p->c.errors == 1;
}

/* A reset from the peer is an error, reported once, not an EOF. */
static void test_peer_reset(void **state)
{
    (void)state;
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    pair_open(p, 1);
    assert_int_equal(uv_tcp_close_reset(&p->server.h.tcp, on_reset_closed), 0);
    p->server.closing = p->server.closed = 1; /* closed by hand above */
    run_until(p, client_failed, 5000);
    assert_int_equal(p->c.last_err, UV_ECONNRESET);
    assert_int_equal(p->c.eofs, 0);
    assert_true(p->client.failed);
    assert_int_equal(cg_stream_write(&p->client, "x", 1), UV_ECANCELED);
    run_for(p, 20);
    assert_int_equal(p->c.errors, 1);
    pair_close(p);
    free(p);
}

static int client_connect_done(struct pair *p)
{
    return p->c.connects == 1;
}

static void test_connect_refused(void **state)
{
    (void)state;
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    assert_int_equal(uv_loop_init(&p->loop), 0);
    assert_int_equal(uv_timer_init(&p->loop, &p->timer), 0);
    p->timer.data = p;
    p->c.p = p;
    /* A port that was just free: bind, learn it, close. */
    char err[128];
    assert_int_equal(cg_addr_parse("127.0.0.1:1", 0, &p->addr, err, sizeof(err)), 0);
    ((struct sockaddr_in *)&p->addr.ss)->sin_port = 0;
    assert_int_equal(uv_tcp_init(&p->loop, &p->listener), 0);
    assert_int_equal(uv_tcp_bind(&p->listener, (const struct sockaddr *)&p->addr.ss, 0), 0);
    int len = sizeof(p->addr.ss);
    assert_int_equal(uv_tcp_getsockname(&p->listener, (struct sockaddr *)&p->addr.ss, &len), 0);
    assert_int_equal(cg_stream_init(&p->client, &p->loop, 0, &cbs, &p->c), 0);
    assert_int_equal(cg_stream_connect(&p->client, &p->addr), 0);
    run_until(p, client_connect_done, 5000);
    assert_int_equal(p->c.connect_status, UV_ECONNREFUSED);
    pair_close(p);
    free(p);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemons do: a write to a reset peer is EPIPE */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_and_half_close),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_write_taken_at_once),
        cmocka_unit_test(test_write_and_shutdown_errors_reach_owner),
        cmocka_unit_test(test_close_with_pending_writes),
        cmocka_unit_test(test_close_inside_read),
        cmocka_unit_test(test_peer_reset),
        cmocka_unit_test(test_connect_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
