#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ccgate/err.h"
#include "ccgate/log.h"

/* Captures what cg_log writes to stderr: it is pointed at a temporary file meanwhile. */
struct capture {
    int saved;
    FILE *f;
    char text[65536];
    size_t len;
};

static void capture_begin(struct capture *c)
{
    c->f = tmpfile();
    assert_non_null(c->f);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(fileno(c->f), STDERR_FILENO), STDERR_FILENO);
}

static void capture_end(struct capture *c)
{
    assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
    close(c->saved);
    rewind(c->f);
    c->len = fread(c->text, 1, sizeof(c->text) - 1, c->f);
    c->text[c->len] = '\0';
    fclose(c->f);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* The single line in c parsed as a JSON object with the four keys every line has. */
static json_t *one_json_line(const struct capture *c)
{
    assert_int_equal(count_lines(c->text), 1);
    assert_int_equal(c->text[c->len - 1], '\n');
    json_error_t jerr;
    json_t *j = json_loadb(c->text, c->len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        fail_msg("not JSON (%s): %s", jerr.text, c->text);
    assert_true(json_is_object(j));
    static const char *const keys[] = {"ts", "level", "prog", "event"};
    for (size_t i = 0; i < 4; i++)
        assert_true(json_is_string(json_object_get(j, keys[i])));
    return j;
}

static void test_parse_format(void **state)
{
    (void)state;
    enum cg_log_format f = CG_LOG_JSON;
    assert_int_equal(cg_log_parse_format("text", &f), 0);
    assert_int_equal(f, CG_LOG_TEXT);
    assert_int_equal(cg_log_parse_format("json", &f), 0);
    assert_int_equal(f, CG_LOG_JSON);
    assert_int_equal(cg_log_parse_format("JSON", &f), CG_ECONFIG);
    assert_int_equal(cg_log_parse_format("", &f), CG_ECONFIG);
    assert_int_equal(cg_log_parse_format("jsonx", &f), CG_ECONFIG);
}

static void test_parse_level(void **state)
{
    (void)state;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    static const enum cg_log_level want[] = {CG_LOG_DEBUG, CG_LOG_INFO, CG_LOG_WARN, CG_LOG_ERROR};
    for (size_t i = 0; i < 4; i++) {
        enum cg_log_level l = i == 0 ? CG_LOG_ERROR : CG_LOG_DEBUG;
        assert_int_equal(cg_log_parse_level(names[i], &l), 0);
        assert_int_equal(l, want[i]);
    }
    enum cg_log_level l = CG_LOG_WARN;
    assert_int_equal(cg_log_parse_level("INFO", &l), CG_ECONFIG);
    assert_int_equal(cg_log_parse_level("warning", &l), CG_ECONFIG);
    assert_int_equal(cg_log_parse_level("", &l), CG_ECONFIG);
    assert_int_equal(cg_log_parse_level("debugx", &l), CG_ECONFIG);
    assert_int_equal(l, CG_LOG_WARN); /* untouched on error */
}

static void test_text(void **state)
{
    (void)state;
    struct capture c;
    cg_log_init("ccgate-test", CG_LOG_TEXT, CG_LOG_INFO);
    capture_begin(&c);
    cg_log_info("conn.open", "peer=%s id=%d", "127.0.0.1:5", 7);
    cg_log_debug("hidden", "x=1");
    cg_log_error("conn.fail", "err=%s", "boom");
    capture_end(&c);
    assert_int_equal(count_lines(c.text), 2);
    /* 2026-11-27T04:50:00.123Z info ccgate-test conn.open peer=127.0.0.1:5 id=7 */
    assert_true(c.len > 25);
    assert_int_equal(c.text[4], '-');
    assert_int_equal(c.text[10], 'T');
    assert_int_equal(c.text[19], '.');
    assert_int_equal(c.text[23], 'Z');
    assert_int_equal(
        strncmp(c.text + 24, " info ccgate-test conn.open peer=127.0.0.1:5 id=7\n", 50), 0);
    const char *second = strchr(c.text, '\n') + 1;
    assert_non_null(strstr(second, "Z error ccgate-test conn.fail err=boom\n"));
    assert_null(strstr(c.text, "hidden"));
}

static void test_levels(void **state)
{
    (void)state;
    struct capture c;
    cg_log_init("t", CG_LOG_TEXT, CG_LOG_WARN);
    capture_begin(&c);
    cg_log_debug("e.debug", "-");
    cg_log_info("e.info", "-");
    cg_log_warn("e.warn", "-");
    cg_log_error("e.error", "-");
    capture_end(&c);
    assert_int_equal(count_lines(c.text), 2);
    assert_null(strstr(c.text, "e.debug"));
    assert_null(strstr(c.text, "e.info"));
    assert_non_null(strstr(c.text, " warn t e.warn -\n"));
    assert_non_null(strstr(c.text, " error t e.error -\n"));

    cg_log_init("t", CG_LOG_TEXT, CG_LOG_DEBUG);
    capture_begin(&c);
    cg_log_debug("e.debug", "-");
    capture_end(&c);
    assert_non_null(strstr(c.text, " debug t e.debug -\n"));
}

static void test_json_fields(void **state)
{
    (void)state;
    struct capture c;
    cg_log_init("ccgate-server", CG_LOG_JSON, CG_LOG_INFO);
    capture_begin(&c);
    cg_log_warn("tls.fail", "peer=%s reason=%s", "[::1]:4", "bad");
    capture_end(&c);
    json_t *j = one_json_line(&c);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "prog")), "ccgate-server");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "tls.fail");
    /* key=value pairs are fields of their own: no logfmt string inside a "msg". */
    assert_string_equal(json_string_value(json_object_get(j, "peer")), "[::1]:4");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "bad");
    assert_null(json_object_get(j, "msg"));
    assert_int_equal(json_object_size(j), 6);
    const char *ts = json_string_value(json_object_get(j, "ts"));
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[23], 'Z');
    json_decref(j);
}

/* Quotes, backslashes and every control byte survive as JSON escapes, and round-trip. */
static void test_json_escapes(void **state)
{
    (void)state;
    char msg[64];
    size_t o = 0;
    for (int ch = 1; ch < 0x20; ch++)
        msg[o++] = (char)ch;
    memcpy(msg + o, "\"q\\b\x7f", 5);
    o += 5;
    msg[o] = '\0';
    struct capture c;
    cg_log_init("t", CG_LOG_JSON, CG_LOG_INFO);
    capture_begin(&c);
    cg_log_info("ev\"ent\n", "%s", msg);
    capture_end(&c);
    json_t *j = one_json_line(&c);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), msg);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "ev\"ent\n");
    json_decref(j);
}

/* Messages past the line limit are cut, but the line stays one valid JSON object. */
static void test_json_long(void **state)
{
    (void)state;
    static const char fill[] = {'"', '\n', '\\', 'a'};
    for (size_t k = 0; k < sizeof(fill); k++) {
        char msg[5000];
        memset(msg, fill[k], sizeof(msg) - 1);
        msg[sizeof(msg) - 1] = '\0';
        struct capture c;
        cg_log_init("t", CG_LOG_JSON, CG_LOG_INFO);
        capture_begin(&c);
        cg_log_info("e", "%s", msg);
        cg_log_info(msg, "%s", msg); /* the event alone fills the line: no room for msg */
        capture_end(&c);
        const char *second = strchr(c.text, '\n') + 1;
        assert_true(second - c.text <= 4096 && strlen(second) <= 4096);
        json_error_t jerr;
        json_t *j = json_loadb(c.text, (size_t)(second - c.text), 0, &jerr);
        assert_non_null(j);
        const char *got = json_string_value(json_object_get(j, "msg"));
        assert_true(strlen(got) > 500);
        for (const char *p = got; *p != '\0'; p++)
            assert_int_equal(*p, fill[k]);
        json_decref(j);
        j = json_loads(second, 0, &jerr);
        assert_non_null(j);
        assert_true(strlen(json_string_value(json_object_get(j, "event"))) > 500);
        json_decref(j);
    }
}

/* JSON is UTF-8: valid sequences pass whole, invalid bytes or a sequence cut by the length
 * limit must not make the line unparsable. */
static void test_json_utf8(void **state)
{
    (void)state;
    struct capture c;
    cg_log_init("t", CG_LOG_JSON, CG_LOG_INFO);
    capture_begin(&c);
    cg_log_info("e", "path=/caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
    capture_end(&c);
    json_t *j = one_json_line(&c);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/caf\xc3\xa9");
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "\xe2\x82\xac \xf0\x9f\x94\x92");
    json_decref(j);

    static const char *const bad[] = {"a\xff", "a\xc3",    "a\xc3(",       "\xe2\x82",
                                      "\x80z", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        capture_begin(&c);
        cg_log_info("e", "v=%s", bad[i]);
        capture_end(&c);
        j = one_json_line(&c);
        assert_non_null(json_string_value(json_object_get(j, "v")));
        json_decref(j);
    }
    capture_begin(&c);
    cg_log_info("e", "v=a\xff\xc3(b");
    capture_end(&c);
    j = one_json_line(&c);
    assert_string_equal(json_string_value(json_object_get(j, "v")), "a\xef\xbf\xbd\xef\xbf\xbd(b");
    json_decref(j);

    /* Two-byte characters across the message limit. */
    char msg[5001];
    for (size_t i = 0; i + 1 < sizeof(msg); i += 2) {
        msg[i] = '\xc3';
        msg[i + 1] = '\xa9';
    }
    msg[sizeof(msg) - 1] = '\0';
    for (int shift = 0; shift < 2; shift++) {
        capture_begin(&c);
        cg_log_info("e", "%s%s", shift ? "x" : "", msg);
        capture_end(&c);
        j = one_json_line(&c);
        json_decref(j);
    }
}

/* The printf API's key=value convention in JSON: numbers stay numbers, quoted values lose
 * their quotes (even with quotes inside, as TLS reasons have), and text that is no pair
 * goes to "msg". */
static void test_json_logfmt(void **state)
{
    (void)state;
    struct capture c;
    cg_log_init("t", CG_LOG_JSON, CG_LOG_INFO);
    capture_begin(&c);
    cg_log_info("attest.failed",
                "id=12 ms=3.25 neg=-4 hex=0e5 zero=0 big=1234567890123456 empty= "
                "actual=\"the peer refused \"http/1.1\": here\" check=tls.handshake: nothing sent");
    capture_end(&c);
    json_t *j = one_json_line(&c);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 12);
    assert_true(json_real_value(json_object_get(j, "ms")) == 3.25);
    assert_int_equal(json_integer_value(json_object_get(j, "neg")), -4);
    assert_string_equal(json_string_value(json_object_get(j, "hex")), "0e5");
    assert_int_equal(json_integer_value(json_object_get(j, "zero")), 0);
    assert_string_equal(json_string_value(json_object_get(j, "big")), "1234567890123456");
    assert_string_equal(json_string_value(json_object_get(j, "empty")), "");
    assert_string_equal(json_string_value(json_object_get(j, "actual")),
                        "the peer refused \"http/1.1\": here");
    assert_string_equal(json_string_value(json_object_get(j, "check")), "tls.handshake:");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "nothing sent");
    json_decref(j);

    /* A quoted value followed by free text, not by a key. */
    capture_begin(&c);
    cg_log_error("attest.failed", "check=x actual=\"a \"b\": c\": nothing was sent");
    capture_end(&c);
    j = one_json_line(&c);
    assert_string_equal(json_string_value(json_object_get(j, "actual")), "a \"b\": c");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), ": nothing was sent");
    json_decref(j);

    /* Free text first: all of it is the message. */
    capture_begin(&c);
    cg_log_warn("policy.sim", "INSECURE: the policy accepts x=1");
    capture_end(&c);
    j = one_json_line(&c);
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "INSECURE: the policy accepts x=1");
    assert_null(json_object_get(j, "x"));
    json_decref(j);
}

/* The typed API: the same fields in text (quoted where needed) and in JSON. */
static void test_fields(void **state)
{
    (void)state;
    struct capture c;
    cg_log_init("ccgate-server", CG_LOG_TEXT, CG_LOG_INFO);
    capture_begin(&c);
    cg_logf(CG_LOG_INFO, "request", CG_LF_STR("method", "GET"), CG_LF_STR("path", "/v1/models"),
            CG_LF_INT("status", 200), CG_LF_DBL("duration_ms", 1.5), CG_LF_UINT("bytes_out", 42),
            CG_LF_STR("err", "a \"b\" c"), CG_LF_STR("none", NULL));
    cg_logf(CG_LOG_DEBUG, "hidden", CG_LF_INT("x", 1));
    capture_end(&c);
    assert_int_equal(count_lines(c.text), 1);
    assert_non_null(strstr(c.text, " info ccgate-server request method=GET path=/v1/models "
                                   "status=200 duration_ms=1.500 bytes_out=42 "
                                   "err=\"a \\\"b\\\" c\" none=\"\"\n"));

    cg_log_init("ccgate-server", CG_LOG_JSON, CG_LOG_INFO);
    capture_begin(&c);
    cg_logf(CG_LOG_WARN, "request", CG_LF_STR("method", "POST"), CG_LF_INT("status", 502),
            CG_LF_DBL("duration_ms", 12.25), CG_LF_STR("path", "/caf\xc3\xa9\n\"x\""));
    capture_end(&c);
    json_t *j = one_json_line(&c);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 502);
    assert_true(json_real_value(json_object_get(j, "duration_ms")) == 12.25);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/caf\xc3\xa9\n\"x\"");
    assert_int_equal(json_object_size(j), 8);
    json_decref(j);

    /* Values past the line limit: fields are cut or left out, the line stays JSON. */
    char big[5000];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    capture_begin(&c);
    cg_logf(CG_LOG_INFO, "e", CG_LF_STR("a", big), CG_LF_STR("b", big), CG_LF_INT("n", 7));
    capture_end(&c);
    assert_true(c.len <= 4096);
    j = one_json_line(&c);
    assert_true(strlen(json_string_value(json_object_get(j, "a"))) > 3000);
    json_decref(j);
    assert_string_equal(cg_log_prog(), "ccgate-server");
}

/* Numbers written by hand read as printf would write them; the time stamp keeps its form. */
static void test_numbers(void **state)
{
    (void)state;
    struct capture c;
    static const double ds[] = {0,       0.0004,     0.0006,           1.5,  12.25, 1234.5678, -2.5,
                                -0.0004, 99999.9996, 123456789012.345, 1e15, -1e16, 1e20};
    cg_log_init("ccgate-client", CG_LOG_TEXT, CG_LOG_INFO);
    for (size_t i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
        char want[400];
        snprintf(want, sizeof(want), " d=%.3f\n", ds[i]);
        capture_begin(&c);
        cg_logf(CG_LOG_INFO, "n", CG_LF_DBL("d", ds[i]));
        capture_end(&c);
        if (strstr(c.text, want) == NULL)
            fail_msg("%.17g: got %s, want %s", ds[i], c.text, want);
    }
    capture_begin(&c);
    cg_logf(CG_LOG_INFO, "n", CG_LF_INT("a", LLONG_MIN), CG_LF_INT("b", -1), CG_LF_INT("c", 0),
            CG_LF_INT("d", LLONG_MAX), CG_LF_UINT("e", ULLONG_MAX), CG_LF_UINT("f", 10));
    capture_end(&c);
    assert_non_null(strstr(c.text, " n a=-9223372036854775808 b=-1 c=0 d=9223372036854775807 "
                                   "e=18446744073709551615 f=10\n"));
    /* 2026-12-05T18:17:48.404Z info ... */
    assert_true(strlen(c.text) > 25 && c.text[4] == '-' && c.text[10] == 'T' && c.text[19] == '.' &&
                c.text[23] == 'Z' && c.text[24] == ' ');
    for (int k = 20; k < 23; k++)
        assert_true(c.text[k] >= '0' && c.text[k] <= '9');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_format), cmocka_unit_test(test_parse_level),
        cmocka_unit_test(test_text),         cmocka_unit_test(test_levels),
        cmocka_unit_test(test_json_fields),  cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_json_long),    cmocka_unit_test(test_json_utf8),
        cmocka_unit_test(test_json_logfmt),  cmocka_unit_test(test_fields),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
