#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "ccgate/err.h"

static void test_strerror(void **state)
{
    (void)state;
    static const int codes[] = {CG_ETLS,  CG_EHTTP,  CG_EEVIDENCE, CG_EPOLICY,  CG_ECONFIG,
                                CG_ECBOR, CG_ELIMIT, CG_ECRYPTO,   CG_ETIMEOUT, CG_ENOTEE};
    const char *seen[sizeof(codes) / sizeof(codes[0])];
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        seen[i] = cg_strerror(codes[i]);
        assert_non_null(seen[i]);
        assert_string_not_equal(seen[i], "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
    }
    assert_string_equal(cg_strerror(CG_ETIMEOUT), "timed out");
    assert_string_equal(cg_strerror(0), "success");
    /* libuv codes pass through to libuv's text. */
    assert_string_equal(cg_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
    assert_string_equal(cg_strerror(UV_EOF), uv_strerror(UV_EOF));
    assert_string_equal(cg_strerror(-5000), "unknown error");
    assert_string_equal(cg_strerror(-5999), "unknown error");
    assert_string_equal(cg_strerror(7), "unknown error");
}

static void test_strerror_unknown_libuv_range(void **state)
{
    (void)state;
    /* A negative code libuv does not know still gets a static text (no allocation, which
     * LeakSanitizer would report). */
    const char *a = cg_strerror(-4000);
    const char *b = cg_strerror(-4000);
    assert_non_null(a);
    assert_ptr_equal(a, b);
}

static void test_reject(void **state)
{
    (void)state;
    struct cg_verdict v;
    memset(&v, 0x55, sizeof(v));
    assert_int_equal(cg_reject(&v, CG_EPOLICY, "snp.debug", "false", "%s/%d", "true", 3),
                     CG_EPOLICY);
    assert_string_equal(v.check, "snp.debug");
    assert_string_equal(v.expected, "false");
    assert_string_equal(v.actual, "true/3");
    assert_int_equal(cg_reject(NULL, CG_EEVIDENCE, "x", "y", "%d", 1), CG_EEVIDENCE);

    /* Long values are truncated, NUL-terminated, never overflow. */
    char longs[1000];
    memset(longs, 'z', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    assert_int_equal(cg_reject(&v, CG_EEVIDENCE, longs, longs, "%s", longs), CG_EEVIDENCE);
    assert_int_equal(strlen(v.check), sizeof(v.check) - 1);
    assert_int_equal(strlen(v.expected), sizeof(v.expected) - 1);
    assert_int_equal(strlen(v.actual), sizeof(v.actual) - 1);
}

static void test_errf(void **state)
{
    (void)state;
    char err[16];
    assert_int_equal(cg_errf(err, sizeof(err), CG_ECONFIG, "%s: %d", "jwk.crv", 7), CG_ECONFIG);
    assert_string_equal(err, "jwk.crv: 7");
    assert_int_equal(cg_errf(err, 8, -5, "a long message"), -5);
    assert_string_equal(err, "a long ");
    assert_int_equal(cg_errf(NULL, 0, CG_EHTTP, "x"), CG_EHTTP);
}

static void test_hex(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x00, 0x01, 0xab, 0xff, 0x7f};
    char out[16];
    cg_hex(out, sizeof(out), in, sizeof(in));
    assert_string_equal(out, "0001abff7f");
    /* Exactly enough room. */
    char exact[11];
    cg_hex(exact, sizeof(exact), in, sizeof(in));
    assert_string_equal(exact, "0001abff7f");
    /* Truncated to whole bytes. */
    char small[6];
    memset(small, 'x', sizeof(small));
    cg_hex(small, sizeof(small), in, sizeof(in));
    assert_string_equal(small, "0001");
    char one[1] = {'x'};
    cg_hex(one, sizeof(one), in, sizeof(in));
    assert_int_equal(one[0], '\0');
    char none[1] = {'x'};
    cg_hex(none, 0, in, sizeof(in));
    assert_int_equal(none[0], 'x');
    cg_hex(out, sizeof(out), in, 0);
    assert_string_equal(out, "");
}

static void test_unhex(void **state)
{
    (void)state;
    uint8_t out[5];
    assert_int_equal(cg_unhex(out, sizeof(out), "0001AbfF7f"), 0);
    static const uint8_t want[] = {0x00, 0x01, 0xab, 0xff, 0x7f};
    assert_memory_equal(out, want, sizeof(want));

    /* Round trip of every byte value. */
    uint8_t all[256], back[256];
    char hex[513];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    cg_hex(hex, sizeof(hex), all, sizeof(all));
    assert_int_equal(strlen(hex), 512);
    assert_int_equal(cg_unhex(back, sizeof(back), hex), 0);
    assert_memory_equal(all, back, sizeof(all));

    assert_int_equal(cg_unhex(out, sizeof(out), "0001abff7"), CG_ECONFIG);
    assert_int_equal(cg_unhex(out, sizeof(out), "0001abff7f0"), CG_ECONFIG);
    assert_int_equal(cg_unhex(out, sizeof(out), "0001abff7g"), CG_ECONFIG);
    assert_int_equal(cg_unhex(out, sizeof(out), "0x01abff7f"), CG_ECONFIG);
    assert_int_equal(cg_unhex(out, sizeof(out), " 001abff7f"), CG_ECONFIG);
    assert_int_equal(cg_unhex(out, sizeof(out), ""), CG_ECONFIG);
    assert_int_equal(cg_unhex(out, 0, ""), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror), cmocka_unit_test(test_strerror_unknown_libuv_range),
        cmocka_unit_test(test_reject),   cmocka_unit_test(test_hex),
        cmocka_unit_test(test_unhex),    cmocka_unit_test(test_errf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
