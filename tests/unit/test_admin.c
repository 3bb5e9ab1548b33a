#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/admin.h"
#include "ccgate/err.h"

/*
 * The admin listener on a real loopback socket. A client thread talks plain blocking
 * sockets (it never asserts: it only records), the main thread runs the loop; when the
 * client is done it wakes the loop, which closes the listener, and the loop must end with
 * every handle closed.
 */

#define MAX_REQS 8
#define RESP_MAX (2 * 1024 * 1024)

struct exchange {
    const char *req;
    size_t req_len; /* 0: strlen(req) */
    int half_close; /* shutdown(SHUT_WR) after sending */
    int idle;       /* send nothing; the admin is closed while connected */
    char *resp;     /* what came back until EOF */
    size_t resp_len;
    int closed; /* the server closed (EOF or reset) */
    int err;    /* errno of a failed connect/send/recv timeout */
};

struct fx {
    uv_loop_t loop;
    uv_async_t done;
    struct cg_admin *ad;
    struct cg_addr addr;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    pthread_t thread;
    struct exchange ex[MAX_REQS];
    size_t n_ex;
    int healthz_calls, readyz_calls, metrics_calls;
    int ready;
    size_t metrics_bytes;
    char tmpdir[64];
};

static int healthz(void *arg, struct cg_buf *out)
{
    struct fx *f = arg;
    f->healthz_calls++;
    (void)cg_buf_printf(out, "ok\n");
    return 200;
}

static int readyz(void *arg, struct cg_buf *out)
{
    struct fx *f = arg;
    f->readyz_calls++;
    (void)cg_buf_printf(out, "%s\n", f->ready ? "ready" : "draining");
    return f->ready ? 200 : 503;
}

static int metrics(void *arg, struct cg_buf *out)
{
    struct fx *f = arg;
    f->metrics_calls++;
    for (size_t i = 0; out->len < f->metrics_bytes; i++)
        if (cg_buf_printf(out, "ccgate_test_total{n=\"%zu\"} %zu\n", i, i) < 0)
            break;
    return 200;
}

static void one_exchange(struct fx *f, struct exchange *e)
{
    int fd = socket(f->peer.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        e->err = errno;
        return;
    }
    struct timeval tv = {.tv_sec = 10};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (e->half_close) {
        /* A small window, so that a large response waits in the server's queue (on TCP
         * loopback its send buffer still takes about a megabyte: see test_unix_socket). */
        int rcv = 16 * 1024;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    }
    if (connect(fd, (struct sockaddr *)&f->peer, f->peer_len) < 0) {
        e->err = errno;
        goto out;
    }
    if (e->idle) {
        /* Give the loop time to accept, then have it close the admin under us. */
        usleep(100 * 1000);
        uv_async_send(&f->done);
    } else {
        size_t len = e->req_len != 0 ? e->req_len : strlen(e->req);
        if (send(fd, e->req, len, MSG_NOSIGNAL) != (ssize_t)len) {
            e->err = errno;
            goto out;
        }
        if (e->half_close) {
            (void)shutdown(fd, SHUT_WR);
            /* Read late: the server sees the FIN while its response is still queued. */
            usleep(300 * 1000);
        }
    }
    e->resp = malloc(RESP_MAX + 1);
    if (e->resp == NULL) {
        e->err = ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = recv(fd, e->resp + e->resp_len, RESP_MAX - e->resp_len, 0);
        if (n > 0) {
            e->resp_len += (size_t)n;
            if (e->resp_len == RESP_MAX)
                break;
            continue;
        }
        if (n == 0 || errno == ECONNRESET)
            e->closed = 1;
        else
            e->err = errno;
        break;
    }
    e->resp[e->resp_len] = '\0';
out:
    close(fd);
}

static void *client_main(void *arg)
{
    struct fx *f = arg;
    int woke = 0;
    for (size_t i = 0; i < f->n_ex; i++) {
        one_exchange(f, &f->ex[i]);
        woke |= f->ex[i].idle;
    }
    if (!woke)
        uv_async_send(&f->done);
    return NULL;
}

static void on_done(uv_async_t *a)
{
    struct fx *f = a->data;
    cg_admin_close(f->ad);
    cg_admin_close(NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void find_listener(uv_handle_t *h, void *arg)
{
    struct fx *f = arg;
    if (h->type == UV_TCP) {
        int len = sizeof(f->peer);
        assert_int_equal(uv_tcp_getsockname((uv_tcp_t *)h, (struct sockaddr *)&f->peer, &len), 0);
        f->peer_len = (socklen_t)len;
    }
}

static struct cg_admin_handlers handlers_for(struct fx *f)
{
    const struct cg_admin_handlers h = {f, healthz, readyz, metrics};
    return h;
}

/* Starts the admin on addr_text (a TCP port is replaced by 0: any free one), runs the exchanges,
 * closes, checks. */
static void run_fx(struct fx *f, const char *addr_text)
{
    char err[256];
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(cg_addr_parse(addr_text, 1, &f->addr, err, sizeof(err)), 0);
    if (!f->addr.is_unix)
        ((struct sockaddr_in *)&f->addr.ss)->sin_port = 0;
    struct cg_admin_handlers h = handlers_for(f);
    assert_int_equal(cg_admin_start(&f->loop, &f->addr, &h, &f->ad), 0);
    if (f->addr.is_unix) {
        struct sockaddr_un *un = (struct sockaddr_un *)&f->peer;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%s", f->addr.path);
        f->peer_len = sizeof(*un);
    } else {
        uv_walk(&f->loop, find_listener, f);
        assert_int_not_equal(f->peer_len, 0);
        assert_int_not_equal(((struct sockaddr_in *)&f->peer)->sin_port, 0);
    }
    assert_int_equal(uv_async_init(&f->loop, &f->done, on_done), 0);
    f->done.data = f;
    assert_int_equal(pthread_create(&f->thread, NULL, client_main, f), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(pthread_join(f->thread, NULL), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (size_t i = 0; i < f->n_ex; i++)
        if (f->ex[i].err != 0)
            fail_msg("exchange %zu: %s", i, strerror(f->ex[i].err));
}

static void fx_free(struct fx *f)
{
    for (size_t i = 0; i < f->n_ex; i++)
        free(f->ex[i].resp);
    free(f);
}

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->ready = 1;
    return f;
}

static void add(struct fx *f, const char *req, int half_close)
{
    assert_true(f->n_ex < MAX_REQS);
    f->ex[f->n_ex].req = req;
    f->ex[f->n_ex].half_close = half_close;
    f->n_ex++;
}

/* Checks one response: status line, the fixed headers, Content-Length matching the body,
 * and returns the body. */
static const char *check_response(const struct exchange *e, int status, const char *ctype)
{
    char line[64];
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    if (strncmp(e->resp, line, strlen(line)) != 0)
        fail_msg("expected '%s', got '%.80s'", line, e->resp);
    assert_true(e->closed);
    const char *end = strstr(e->resp, "\r\n\r\n");
    assert_non_null(end);
    const char *body = end + 4;
    char want[128];
    snprintf(want, sizeof(want), "\r\nContent-Type: %s\r\n", ctype);
    assert_non_null(strstr(e->resp, want));
    assert_non_null(strstr(e->resp, "\r\nCache-Control: no-store\r\n"));
    assert_non_null(strstr(e->resp, "\r\nConnection: close\r\n"));
    const char *cl = strstr(e->resp, "\r\nContent-Length: ");
    assert_non_null(cl);
    assert_true(cl < end);
    assert_int_equal(strtoul(cl + 18, NULL, 10), e->resp_len - (size_t)(body - e->resp));
    return body;
}

static const char *const plain = "text/plain; charset=utf-8";

static void test_endpoints(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->metrics_bytes = 100;
    add(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    add(f, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    add(f, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    add(f, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    add(f, "GET /healthz/ HTTP/1.0\r\n\r\n", 0);
    run_fx(f, "127.0.0.1:1");
    assert_string_equal(check_response(&f->ex[0], 200, plain), "ok\n");
    assert_string_equal(check_response(&f->ex[1], 200, plain), "ready\n");
    const char *m = check_response(&f->ex[2], 200, "text/plain; version=0.0.4; charset=utf-8");
    assert_true(strncmp(m, "ccgate_test_total{n=\"0\"} 0\n", 27) == 0);
    assert_true(strlen(m) >= 100);
    assert_non_null(strstr(check_response(&f->ex[3], 404, plain), "not found"));
    assert_non_null(strstr(check_response(&f->ex[4], 404, plain), "not found"));
    assert_int_equal(f->healthz_calls, 1);
    assert_int_equal(f->readyz_calls, 1);
    assert_int_equal(f->metrics_calls, 1);
    fx_free(f);
}

/* The handler's status goes out with its reason phrase. */
static void test_not_ready(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->ready = 0;
    add(f, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    run_fx(f, "127.0.0.1:1");
    assert_true(strncmp(f->ex[0].resp, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
    assert_string_equal(check_response(&f->ex[0], 503, plain), "draining\n");
    fx_free(f);
}

static void test_methods_and_errors(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    static char big[9000 + 64];
    int n = snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'a', 9000);
    memcpy(big + n + 9000, "\r\n\r\n", 5);
    add(f, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 0);
    add(f, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    add(f, "GARBAGE\r\n\r\n", 0);
    add(f,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: "
        "chunked\r\n\r\n",
        0);
    add(f, big, 0);
    add(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    run_fx(f, "127.0.0.1:1");
    assert_string_equal(check_response(&f->ex[0], 405, plain), "method not allowed\n");
    assert_string_equal(check_response(&f->ex[1], 405, plain), "method not allowed\n");
    check_response(&f->ex[2], 400, plain);
    check_response(&f->ex[3], 400, plain);
    check_response(&f->ex[4], 431, plain);
    /* One request per connection: the pipelined second one is not answered. */
    assert_string_equal(check_response(&f->ex[5], 200, plain), "ok\n");
    assert_int_equal(f->healthz_calls, 1);
    assert_int_equal(f->readyz_calls, 0);
    assert_int_equal(f->metrics_calls, 0);
    fx_free(f);
}

/* HEAD gets the GET headers and no body (RFC 9110 9.3.2). */
static void test_head(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    add(f, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    run_fx(f, "127.0.0.1:1");
    const struct exchange *e = &f->ex[0];
    assert_true(strncmp(e->resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(e->resp, "\r\nContent-Length: 3\r\n"));
    const char *end = strstr(e->resp, "\r\n\r\n");
    assert_non_null(end);
    assert_string_equal(end + 4, "");
    assert_true(e->closed);
    assert_int_equal(f->healthz_calls, 1);
    fx_free(f);
}

/* A client that half-closes after its request still gets the whole response. */
static void test_half_close_large_response(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->metrics_bytes = 1000 * 1000;
    add(f, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    add(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    run_fx(f, "127.0.0.1:1");
    const char *m = check_response(&f->ex[0], 200, "text/plain; version=0.0.4; charset=utf-8");
    assert_true(strlen(m) >= 1000 * 1000);
    assert_string_equal(check_response(&f->ex[1], 200, plain), "ok\n");
    fx_free(f);
}

/* Closing the admin with a connection open closes that connection too. */
static void test_close_with_idle_connection(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->ex[0].idle = 1;
    f->n_ex = 1;
    run_fx(f, "127.0.0.1:1");
    assert_true(f->ex[0].closed);
    assert_int_equal(f->ex[0].resp_len, 0);
    assert_int_equal(f->healthz_calls, 0);
    fx_free(f);
}

/* On a Unix socket too; there the kernel buffers are small (about 200 KiB), so a half-closed
 * client shows whether a large response is cut when the FIN arrives first. */
static void test_unix_socket(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->metrics_bytes = 1000 * 1000;
    snprintf(f->tmpdir, sizeof(f->tmpdir), "/tmp/cg_test_admin.XXXXXX");
    assert_non_null(mkdtemp(f->tmpdir));
    char addr[128];
    snprintf(addr, sizeof(addr), "unix:%s/admin.sock", f->tmpdir);
    add(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    add(f, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    run_fx(f, addr);
    assert_string_equal(check_response(&f->ex[0], 200, plain), "ok\n");
    const char *m = check_response(&f->ex[1], 200, "text/plain; version=0.0.4; charset=utf-8");
    assert_true(strlen(m) >= 1000 * 1000);
    (void)unlink(f->addr.path);
    assert_int_equal(rmdir(f->tmpdir), 0);
    fx_free(f);
}

/* A second admin on a port in use fails with libuv's code and leaks nothing. */
static void test_address_in_use(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    char err[256];
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(cg_addr_parse("127.0.0.1:1", 0, &f->addr, err, sizeof(err)), 0);
    ((struct sockaddr_in *)&f->addr.ss)->sin_port = 0;
    struct cg_admin_handlers h = handlers_for(f);
    assert_int_equal(cg_admin_start(&f->loop, &f->addr, &h, &f->ad), 0);
    uv_walk(&f->loop, find_listener, f);
    struct cg_addr taken = f->addr;
    ((struct sockaddr_in *)&taken.ss)->sin_port = ((struct sockaddr_in *)&f->peer)->sin_port;
    struct cg_admin *second = NULL;
    assert_int_equal(cg_admin_start(&f->loop, &taken, &h, &second), UV_EADDRINUSE);
    assert_null(second);
    cg_admin_close(f->ad);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    fx_free(f);
}

/* The histogram writer: cumulative buckets with the bounds' labels, +Inf, sum and count. */
static void test_hist(void **state)
{
    (void)state;
    struct cg_hist h = {{0}, 0, 0};
    cg_hist_observe(&h, 0.0005); /* first bucket */
    cg_hist_observe(&h, 0.001);  /* on a bound: that bucket */
    cg_hist_observe(&h, 0.3);    /* le 0.5 */
    cg_hist_observe(&h, 1000);   /* +Inf only */
    struct cg_buf out;
    cg_buf_init(&out, 8192);
    cg_hist_write(&out, "x_seconds", "Help text.", &h);
    assert_non_null(strstr(out.data, "# HELP x_seconds Help text.\n# TYPE x_seconds histogram\n"));
    assert_non_null(strstr(out.data, "\nx_seconds_bucket{le=\"0.001\"} 2\n"));
    assert_non_null(strstr(out.data, "\nx_seconds_bucket{le=\"0.25\"} 2\n"));
    assert_non_null(strstr(out.data, "\nx_seconds_bucket{le=\"0.5\"} 3\n"));
    assert_non_null(strstr(out.data, "\nx_seconds_bucket{le=\"60\"} 3\n"));
    assert_non_null(strstr(out.data, "\nx_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(out.data, "\nx_seconds_sum 1000.301500\nx_seconds_count 4\n"));
    size_t buckets = 0;
    for (const char *p = out.data; (p = strstr(p, "_bucket{")) != NULL; p++)
        buckets++;
    assert_int_equal(buckets, CG_HIST_BUCKETS);
    cg_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_not_ready),
        cmocka_unit_test(test_methods_and_errors),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_half_close_large_response),
        cmocka_unit_test(test_close_with_idle_connection),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_address_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
