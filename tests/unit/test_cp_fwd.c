#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "ccgate/err.h"
#include "cp_fwd.h"

/*
 * The forwarder's request ids (cp_fwd): which x-request-id of the app is passed on, the ids
 * made here, and the head rewrite that leaves exactly one x-request-id in the next hop's head.
 */

struct seen {
    char out[8192];
    size_t len;
    char rid[CP_REQUEST_ID_MAX + 1];
    int took;
    const char *set_id; /* given to the forwarder for the head */
    int rc;
};

static void out(void *arg, const void *data, size_t len)
{
    struct seen *s = arg;
    assert_true(len <= sizeof(s->out) - 1 - s->len);
    memcpy(s->out + s->len, data, len);
    s->len += len;
    s->out[s->len] = '\0';
}

static int on_head(void *arg, const struct cg_http_head *h)
{
    struct seen *s = arg;
    s->took = cp_fwd_request_id_take(h, s->rid);
    struct cp_fwd f = {.out = out, .arg = s, .request_id = s->set_id};
    s->rc = cp_fwd_head(&f, h, 1);
    return 0;
}

static int on_body(void *arg, const uint8_t *d, size_t n)
{
    (void)arg;
    (void)d;
    (void)n;
    return 0;
}

static int on_complete(void *arg)
{
    (void)arg;
    return 0;
}

static const struct cg_http_callbacks cb = {on_head, on_body, on_complete};

/* Parses one request and forwards its head with set_id. */
static void forward(struct seen *s, const char *req, const char *set_id)
{
    struct cg_http_parser *p = NULL;
    memset(s, 0, sizeof(*s));
    s->set_id = set_id;
    s->rc = 1;
    assert_int_equal(cg_http_parser_new(CG_HTTP_REQUEST, NULL, &cb, s, &p), 0);
    assert_int_equal(cg_http_parser_feed(p, (const uint8_t *)req, strlen(req)), (long)strlen(req));
    cg_http_parser_free(p);
    assert_int_equal(s->rc, 0);
}

/* How many lines of the head are x-request-id, and the value of the last. */
static int rid_lines(const char *head, char *value, size_t cap)
{
    int n = 0;
    for (const char *p = strstr(head, "\r\n") + 2; strncmp(p, "\r\n", 2) != 0;) {
        const char *eol = strstr(p, "\r\n");
        if (strncasecmp(p, "x-request-id:", 13) == 0) {
            n++;
            snprintf(value, cap, "%.*s", (int)(eol - p - 14), p + 14);
        }
        p = eol + 2;
    }
    return n;
}

static void test_new(void **state)
{
    (void)state;
    char a[33], b[33];
    cp_fwd_request_id_new(a);
    cp_fwd_request_id_new(b);
    assert_int_equal(strlen(a), 32);
    assert_true(cg_httpmsg_request_id_valid(a, 32));
    assert_int_equal(strspn(a, "0123456789abcdef"), 32);
    assert_string_not_equal(a, b);
    assert_memory_equal(a, b, 16); /* the process's half */
}

/* The app's id is taken when valid and alone; the head keeps exactly that one. */
static void test_take_and_keep(void **state)
{
    (void)state;
    struct seen s;
    char v[256];
    forward(&s, "GET /v1/models HTTP/1.1\r\nHost: a\r\nX-Request-Id: app-1\r\nB: 2\r\n\r\n",
            "app-1");
    assert_true(s.took);
    assert_string_equal(s.rid, "app-1");
    assert_int_equal(rid_lines(s.out, v, sizeof(v)), 1);
    assert_string_equal(v, "app-1");
    assert_non_null(strstr(s.out, "\r\nB: 2\r\n"));

    /* Invalid, two of them, none, or dropped by Connection: the id given is the only one. */
    static const char *const reqs[] = {
        "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: has space\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nx-request-id: a\r\nX-REQUEST-ID: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-request-id\r\nX-Request-Id: c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        forward(&s, reqs[i], "0123456789abcdef0123456789abcdef");
        assert_int_equal(rid_lines(s.out, v, sizeof(v)), 1);
        assert_string_equal(v, "0123456789abcdef0123456789abcdef");
        assert_int_equal(strncmp(s.out + s.len - 4, "\r\n\r\n", 4), 0);
        assert_non_null(strstr(s.out, "\r\nHost: a\r\n"));
    }
    forward(&s, reqs[1], NULL);
    assert_false(s.took);
    assert_string_equal(s.rid, "");
    forward(&s, reqs[2], "z");
    assert_true(s.took); /* valid and alone in the app's head; the hop drops it (Connection) */
    assert_int_equal(rid_lines(s.out, v, sizeof(v)), 1);
    assert_string_equal(v, "z");
}

/* Without an id to set the head is written as before. */
static void test_no_id(void **state)
{
    (void)state;
    struct seen s;
    char v[256];
    forward(&s, "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: a\r\nX-Request-Id: b\r\n\r\n", NULL);
    assert_int_equal(rid_lines(s.out, v, sizeof(v)), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new),
        cmocka_unit_test(test_take_and_keep),
        cmocka_unit_test(test_no_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
