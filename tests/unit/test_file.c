#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccgate/err.h"
#include "ccgate/file.h"

/* Writes n bytes of a pattern to a new temporary file; returns its path (static storage). */
static const char *temp_file(size_t n)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/cg_test_file.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)(i * 7 + 1);
        assert_int_equal(write(fd, &c, 1), 1);
    }
    close(fd);
    return path;
}

static void test_reads_exactly_max(void **state)
{
    (void)state;
    /* Larger than the first chunk, so the buffer has to grow. */
    const size_t n = 40000;
    const char *path = temp_file(n);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cg_file_read(path, n, &data, &len), 0);
    assert_int_equal(len, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(data[i], (uint8_t)(i * 7 + 1));
    assert_int_equal(data[n], 0);
    free(data);
    unlink(path);
}

static void test_one_byte_over_max_is_a_limit(void **state)
{
    (void)state;
    const char *path = temp_file(101);
    uint8_t *data = (uint8_t *)"untouched";
    size_t len = 7;
    assert_int_equal(cg_file_read(path, 100, &data, &len), CG_ELIMIT);
    assert_string_equal((const char *)data, "untouched");
    assert_int_equal(len, 7);
    unlink(path);
}

static void test_empty_file_is_an_empty_string(void **state)
{
    (void)state;
    const char *path = temp_file(0);
    uint8_t *data = NULL;
    size_t len = 1;
    assert_int_equal(cg_file_read(path, 10, &data, &len), 0);
    assert_int_equal(len, 0);
    assert_non_null(data);
    assert_int_equal(data[0], 0);
    free(data);
    unlink(path);
}

static void test_errors_are_negative_errno(void **state)
{
    (void)state;
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cg_file_read("/nonexistent/cg_test_file", 10, &data, &len), -ENOENT);
    assert_int_equal(cg_file_read("/tmp", 10, &data, &len), -EISDIR);
    assert_null(data);
}

/* Files whose size stat() does not know (procfs, configfs) are read to their end. */
static void test_reads_a_file_of_unknown_size(void **state)
{
    (void)state;
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cg_file_read("/proc/self/status", 1 << 20, &data, &len), 0);
    assert_true(len > 0);
    assert_non_null(strstr((const char *)data, "Name:"));
    free(data);
}

static void test_write_atomic(void **state)
{
    (void)state;
    char dir[] = "/tmp/cg_test_file_w.XXXXXX", path[64], stray[80];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/p.json", dir);
    assert_int_equal(cg_file_write_atomic(path, "{\"a\": 1}\n", 9), 0);
    assert_int_equal(cg_file_write_atomic(path, "{}\n", 3), 0);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(cg_file_read(path, 100, &data, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "{}\n", 3);
    free(data);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0044, 0044); /* readable by others, not 0600 */
    /* A folder that does not exist: an error and nothing left behind. */
    snprintf(stray, sizeof(stray), "%s/none/p.json", dir);
    assert_int_equal(cg_file_write_atomic(stray, "x", 1), -ENOENT);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0); /* empty: no temporary file left */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_exactly_max),
        cmocka_unit_test(test_one_byte_over_max_is_a_limit),
        cmocka_unit_test(test_empty_file_is_an_empty_string),
        cmocka_unit_test(test_errors_are_negative_errno),
        cmocka_unit_test(test_reads_a_file_of_unknown_size),
        cmocka_unit_test(test_write_atomic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
