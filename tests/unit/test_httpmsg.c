#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ccgate/err.h"
#include "ccgate/http.h"
#include "ccgate/httpmsg.h"

static void test_reason(void **state)
{
    (void)state;
    assert_string_equal(cg_httpmsg_reason(200), "OK");
    assert_string_equal(cg_httpmsg_reason(400), "Bad Request");
    assert_string_equal(cg_httpmsg_reason(404), "Not Found");
    assert_string_equal(cg_httpmsg_reason(405), "Method Not Allowed");
    assert_string_equal(cg_httpmsg_reason(413), "Content Too Large");
    assert_string_equal(cg_httpmsg_reason(431), "Request Header Fields Too Large");
    assert_string_equal(cg_httpmsg_reason(502), "Bad Gateway");
    assert_string_equal(cg_httpmsg_reason(503), "Service Unavailable");
    assert_string_equal(cg_httpmsg_reason(504), "Gateway Timeout");
    assert_string_equal(cg_httpmsg_reason(299), "Unknown");
    assert_string_equal(cg_httpmsg_reason(-1), "Unknown");
}

static void test_response_exact(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 4096);
    assert_int_equal(cg_httpmsg_response(&b, 502, "text/plain", "bad\n", 4, 1), 0);
    assert_string_equal(b.data, "HTTP/1.1 502 Bad Gateway\r\n"
                                "Content-Type: text/plain\r\n"
                                "Content-Length: 4\r\n"
                                "Cache-Control: no-store\r\n"
                                "Connection: close\r\n"
                                "\r\n"
                                "bad\n");
    cg_buf_free(&b);

    cg_buf_init(&b, 4096);
    assert_int_equal(cg_httpmsg_response(&b, 200, "application/json", "{}", 2, 0), 0);
    assert_string_equal(b.data, "HTTP/1.1 200 OK\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: 2\r\n"
                                "Cache-Control: no-store\r\n"
                                "\r\n"
                                "{}");
    cg_buf_free(&b);

    /* More header lines go before Connection and the blank line, as given. */
    cg_buf_init(&b, 4096);
    assert_int_equal(cg_httpmsg_response_ex(&b, 502, "application/json",
                                            "X-Should-Retry: false\r\nX-Request-Id: r1\r\n", "{}",
                                            2, 1),
                     0);
    assert_string_equal(b.data, "HTTP/1.1 502 Bad Gateway\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: 2\r\n"
                                "Cache-Control: no-store\r\n"
                                "X-Should-Retry: false\r\n"
                                "X-Request-Id: r1\r\n"
                                "Connection: close\r\n"
                                "\r\n"
                                "{}");
    cg_buf_free(&b);
}

/* The body is binary-safe (length, not NUL, delimits it). */
static void test_response_binary_body(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 4096);
    static const char body[] = {'a', '\0', 'b'};
    assert_int_equal(cg_httpmsg_response(&b, 200, "application/octet-stream", body, 3, 0), 0);
    assert_true(b.len > 3);
    assert_memory_equal(b.data + b.len - 3, body, 3);
    assert_non_null(strstr(b.data, "Content-Length: 3\r\n"));
    cg_buf_free(&b);
}

struct seen {
    int status, completes;
    size_t body;
    int keep_alive;
    char body_text[64];
};

static int on_head(void *arg, const struct cg_http_head *h)
{
    struct seen *s = arg;
    s->status = h->status;
    s->keep_alive = h->keep_alive;
    return 0;
}

static int on_body(void *arg, const uint8_t *data, size_t len)
{
    struct seen *s = arg;
    if (s->body + len < sizeof(s->body_text))
        memcpy(s->body_text + s->body, data, len);
    s->body += len;
    return 0;
}

static int on_complete(void *arg)
{
    struct seen *s = arg;
    s->completes++;
    return 0;
}

/* What ccgate generates is a response its own parser accepts, with the same body. */
static void test_response_parses(void **state)
{
    (void)state;
    static const struct cg_http_callbacks cb = {on_head, on_body, on_complete};
    for (int close = 0; close <= 1; close++) {
        struct cg_buf b;
        cg_buf_init(&b, 4096);
        assert_int_equal(cg_httpmsg_response(&b, 413, "text/plain", "too big\n", 8, close), 0);
        struct seen s;
        memset(&s, 0, sizeof(s));
        struct cg_http_parser *p;
        assert_int_equal(cg_http_parser_new(CG_HTTP_RESPONSE, NULL, &cb, &s, &p), 0);
        long n = cg_http_parser_feed(p, (const uint8_t *)b.data, b.len);
        assert_int_equal(n, (long)b.len);
        assert_int_equal(s.status, 413);
        assert_int_equal(s.completes, 1);
        assert_int_equal(s.body, 8);
        assert_string_equal(s.body_text, "too big\n");
        assert_int_equal(s.keep_alive, !close);
        cg_http_parser_free(p);
        cg_buf_free(&b);
    }
}

static void test_response_limit(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 40);
    assert_int_equal(cg_httpmsg_response(&b, 200, "text/plain", "x", 1, 0), CG_ELIMIT);
    assert_int_equal(b.overflow, 1);
    cg_buf_free(&b);
    /* Head fits, body does not. */
    cg_buf_init(&b, 100);
    char body[100];
    memset(body, 'y', sizeof(body));
    assert_int_equal(cg_httpmsg_response(&b, 200, "t", body, sizeof(body), 0), CG_ELIMIT);
    cg_buf_free(&b);
}

/* Request ids: safe characters only, 1 to CG_REQUEST_ID_MAX bytes. */
static void test_request_id_valid(void **state)
{
    (void)state;
    assert_true(cg_httpmsg_request_id_valid("req_0123abcXYZ", 14));
    assert_true(cg_httpmsg_request_id_valid("123e4567-e89b-12d3-a456-426614174000", 36));
    assert_true(cg_httpmsg_request_id_valid("a.b:c+d/e=f@g_h-i", 17));
    char max[CG_REQUEST_ID_MAX + 1];
    memset(max, 'a', sizeof(max));
    assert_true(cg_httpmsg_request_id_valid(max, CG_REQUEST_ID_MAX));
    assert_false(cg_httpmsg_request_id_valid(max, CG_REQUEST_ID_MAX + 1));
    assert_false(cg_httpmsg_request_id_valid("", 0));
    static const char *const bad[] = {"a b",  "a\"b",    "a\\b",      "a,b",      "a;b",
                                      "a\tb", "a=b\x7f", "a\xc3\xa9", "<script>", "a%20"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(cg_httpmsg_request_id_valid(bad[i], strlen(bad[i])));
    assert_false(cg_httpmsg_request_id_valid("a\0b", 3)); /* NUL inside */
}

static void test_openai_paths(void **state)
{
    (void)state;
    assert_true(cg_httpmsg_openai_path("/v1/chat/completions"));
    assert_true(cg_httpmsg_openai_path("/v1/models?limit=1"));
    assert_true(cg_httpmsg_openai_path("/v1"));
    assert_true(cg_httpmsg_openai_path("/v1/"));
    assert_false(cg_httpmsg_openai_path("/v10/models"));
    assert_false(cg_httpmsg_openai_path("/v1x"));
    assert_false(cg_httpmsg_openai_path("/bytes/10"));
    assert_false(cg_httpmsg_openai_path("/"));
    assert_false(cg_httpmsg_openai_path("-"));
    assert_false(cg_httpmsg_openai_path("/V1/models"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason),
        cmocka_unit_test(test_response_exact),
        cmocka_unit_test(test_response_binary_body),
        cmocka_unit_test(test_response_parses),
        cmocka_unit_test(test_response_limit),
        cmocka_unit_test(test_request_id_valid),
        cmocka_unit_test(test_openai_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
