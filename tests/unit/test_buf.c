#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ccgate/buf.h"
#include "ccgate/err.h"

static void test_append_grows(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 100000);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    char chunk[1000];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)('a' + i % 26);
    for (int i = 0; i < 50; i++)
        assert_int_equal(cg_buf_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(b.len, 50000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    for (int i = 0; i < 50; i++)
        assert_memory_equal(b.data + i * 1000, chunk, sizeof(chunk));
    assert_int_equal(b.overflow, 0);
    cg_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 100000);
}

static void test_limit(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 10);
    assert_int_equal(cg_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 10);
    assert_true(b.cap <= 11);
    assert_string_equal(b.data, "0123456789");
    assert_int_equal(cg_buf_append(&b, "x", 1), CG_ELIMIT);
    assert_int_equal(b.overflow, 1);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    /* An empty append at the limit is fine. */
    assert_int_equal(cg_buf_append(&b, "", 0), 0);
    cg_buf_free(&b);

    cg_buf_init(&b, 10);
    assert_int_equal(cg_buf_append(&b, "0123456789a", 11), CG_ELIMIT);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.overflow, 1);
    /* A length that would wrap size_t arithmetic. */
    assert_int_equal(cg_buf_append(&b, "x", SIZE_MAX), CG_ELIMIT);
    cg_buf_free(&b);

    cg_buf_init(&b, 0);
    assert_int_equal(cg_buf_append(&b, "x", 1), CG_ELIMIT);
    assert_int_equal(cg_buf_append(&b, "", 0), 0);
    assert_string_equal(b.data, "");
    cg_buf_free(&b);
}

static void test_printf(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 32);
    assert_int_equal(cg_buf_printf(&b, "%s=%d", "a", 42), 0);
    assert_int_equal(cg_buf_printf(&b, " %s", "b"), 0);
    assert_string_equal(b.data, "a=42 b");
    assert_int_equal(b.len, 6);
    assert_int_equal(cg_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 6);
    /* 26 more bytes fit exactly; one more does not, and nothing is written. */
    assert_int_equal(cg_buf_printf(&b, "%026d", 7), 0);
    assert_int_equal(b.len, 32);
    assert_int_equal(cg_buf_printf(&b, "%d", 1), CG_ELIMIT);
    assert_int_equal(b.overflow, 1);
    assert_int_equal(b.len, 32);
    assert_int_equal(strlen(b.data), 32);
    cg_buf_free(&b);
}

static void test_consume(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 64);
    cg_buf_consume(&b, 5); /* empty, never allocated */
    assert_int_equal(b.len, 0);
    assert_int_equal(cg_buf_append(&b, "hello world", 11), 0);
    cg_buf_consume(&b, 6);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "world");
    cg_buf_consume(&b, 0);
    assert_string_equal(b.data, "world");
    cg_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(cg_buf_append(&b, "again", 5), 0);
    assert_string_equal(b.data, "again");
    cg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_consume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
