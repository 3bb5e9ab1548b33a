#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "ccgate/addr.h"
#include "ccgate/err.h"

static void test_ipv4(void **state)
{
    (void)state;
    struct cg_addr a;
    char err[256] = "";
    assert_int_equal(cg_addr_parse("127.0.0.1:8080", 0, &a, err, sizeof(err)), 0);
    assert_int_equal(a.is_unix, 0);
    assert_string_equal(a.text, "127.0.0.1:8080");
    const struct sockaddr_in *in = (const struct sockaddr_in *)&a.ss;
    assert_int_equal(in->sin_family, AF_INET);
    assert_int_equal(ntohs(in->sin_port), 8080);
    assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);

    assert_int_equal(cg_addr_parse("10.1.2.3:1", 0, &a, err, sizeof(err)), 0);
    assert_int_equal(ntohs(((const struct sockaddr_in *)&a.ss)->sin_port), 1);
    assert_int_equal(cg_addr_parse("10.1.2.3:65535", 0, &a, err, sizeof(err)), 0);
    assert_int_equal(ntohs(((const struct sockaddr_in *)&a.ss)->sin_port), 65535);

    /* Port 0 only where a listener lets the kernel pick (CG_ADDR_PORT0). */
    assert_int_equal(cg_addr_parse("127.0.0.1:0", CG_ADDR_PORT0, &a, err, sizeof(err)), 0);
    assert_int_equal(ntohs(((const struct sockaddr_in *)&a.ss)->sin_port), 0);
    assert_int_equal(cg_addr_parse("[::1]:0", CG_ADDR_UNIX | CG_ADDR_PORT0, &a, err, sizeof(err)),
                     0);
    assert_int_equal(cg_addr_parse("127.0.0.1:-1", CG_ADDR_PORT0, &a, err, sizeof(err)),
                     CG_ECONFIG);
    assert_non_null(strstr(err, "between 0 and 65535"));
    assert_int_equal(cg_addr_parse("unix:/tmp/x", CG_ADDR_PORT0, &a, err, sizeof(err)), CG_ECONFIG);
}

static void test_ipv6(void **state)
{
    (void)state;
    struct cg_addr a;
    char err[256] = "";
    assert_int_equal(cg_addr_parse("[::1]:8443", 0, &a, err, sizeof(err)), 0);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a.ss;
    assert_int_equal(in6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(in6->sin6_port), 8443);
    assert_memory_equal(&in6->sin6_addr, &in6addr_loopback, sizeof(struct in6_addr));
    assert_string_equal(a.text, "[::1]:8443");
}

static void test_hostname(void **state)
{
    (void)state;
    struct cg_addr a;
    char err[256] = "";
    assert_int_equal(cg_addr_parse("localhost:80", 0, &a, err, sizeof(err)), 0);
    if (a.ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a.ss;
        assert_int_equal(ntohs(in->sin_port), 80);
        assert_int_equal(ntohl(in->sin_addr.s_addr) >> 24, 127);
    } else {
        assert_int_equal(a.ss.ss_family, AF_INET6);
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a.ss;
        assert_int_equal(ntohs(in6->sin6_port), 80);
        assert_memory_equal(&in6->sin6_addr, &in6addr_loopback, sizeof(struct in6_addr));
    }
}

static void test_unix(void **state)
{
    (void)state;
    struct cg_addr a;
    char err[256] = "";
    assert_int_equal(cg_addr_parse("unix:/run/x.sock", 1, &a, err, sizeof(err)), 0);
    assert_int_equal(a.is_unix, 1);
    assert_string_equal(a.path, "/run/x.sock");
    assert_string_equal(a.text, "unix:/run/x.sock");

    assert_int_equal(cg_addr_parse("unix:/run/x.sock", 0, &a, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "no unix socket"));
    assert_int_equal(cg_addr_parse("unix:", 1, &a, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "unix:/path"));

    /* The longest path that fits sun_path with its NUL, and one byte more. */
    char s[sizeof(a.path) + 8];
    memcpy(s, "unix:", 5);
    memset(s + 5, 'p', sizeof(a.path) - 1);
    s[5 + sizeof(a.path) - 1] = '\0';
    assert_int_equal(cg_addr_parse(s, 1, &a, err, sizeof(err)), 0);
    assert_int_equal(strlen(a.path), sizeof(a.path) - 1);
    s[5 + sizeof(a.path) - 1] = 'p';
    s[5 + sizeof(a.path)] = '\0';
    assert_int_equal(cg_addr_parse(s, 1, &a, err, sizeof(err)), CG_ECONFIG);
}

static void test_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *why;
    } bad[] = {
        {"127.0.0.1", "HOST:PORT"},
        {":80", "HOST:PORT"},
        {"::1:80", "HOST:PORT"},
        {"127.0.0.1:", "port between"},
        {"127.0.0.1:0", "port between"},
        {"127.0.0.1:65536", "port between"},
        {"127.0.0.1:-1", "port between"},
        {"127.0.0.1:80x", "port between"},
        {"[::1]80", "[IPV6]:PORT"},
        {"[::1:80", "[IPV6]:PORT"},
        {"[::1]:", "port between"},
        {"no-such-host.invalid:80", "cannot resolve"},
        {"[::1]:99999999999999999999", "port between"},
        {"", "HOST:PORT"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cg_addr a;
        char err[256] = "";
        if (cg_addr_parse(bad[i].in, 1, &a, err, sizeof(err)) != CG_ECONFIG)
            fail_msg("'%s' accepted", bad[i].in);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("'%s': error '%s' lacks '%s'", bad[i].in, err, bad[i].why);
    }
}

static void test_loopback(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int loopback;
    } cases[] = {{"127.0.0.1:1", 1},      {"127.9.8.7:1", 1},
                 {"[::1]:1", 1},          {"[::ffff:127.0.0.1]:1", 1},
                 {"unix:/tmp/x.sock", 1}, {"0.0.0.0:1", 0},
                 {"[::]:1", 0},           {"10.0.0.1:1", 0},
                 {"128.0.0.1:1", 0},      {"[::ffff:10.0.0.1]:1", 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cg_addr a;
        char err[128];
        assert_int_equal(cg_addr_parse(cases[i].s, 1, &a, err, sizeof(err)), 0);
        if (cg_addr_is_loopback(&a) != cases[i].loopback)
            fail_msg("%s: loopback %d", cases[i].s, !cases[i].loopback);
    }
}

static void test_too_long(void **state)
{
    (void)state;
    struct cg_addr a;
    char err[256] = "";
    char s[300];
    memset(s, 'a', sizeof(s) - 1);
    s[sizeof(s) - 1] = '\0';
    assert_int_equal(cg_addr_parse(s, 1, &a, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "too long"));
    /* A host of 127 bytes passes the text limit but not the host buffer. */
    char h[sizeof(a.text)];
    memset(h, 'b', sizeof(h) - 1);
    h[sizeof(h) - 1] = '\0';
    h[sizeof(h) - 4] = ':';
    assert_int_equal(cg_addr_parse(h, 1, &a, err, sizeof(err)), CG_ECONFIG);
}

/* Socket addresses as logs and announcements show them; other families are refused. */
static void test_format(void **state)
{
    (void)state;
    char out[64];
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(8080)};
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &in.sin_addr), 1);
    assert_int_equal(cg_addr_format((struct sockaddr *)&in, out, sizeof(out)), 0);
    assert_string_equal(out, "127.0.0.1:8080");
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    assert_int_equal(inet_pton(AF_INET6, "::1", &in6.sin6_addr), 1);
    assert_int_equal(cg_addr_format((struct sockaddr *)&in6, out, sizeof(out)), 0);
    assert_string_equal(out, "[::1]:443");
    char small[6];
    assert_int_equal(cg_addr_format((struct sockaddr *)&in, small, sizeof(small)), 0);
    assert_string_equal(small, "127.0");
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_not_equal(cg_addr_format(&un, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4),     cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_hostname), cmocka_unit_test(test_unix),
        cmocka_unit_test(test_rejects),  cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_loopback), cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
