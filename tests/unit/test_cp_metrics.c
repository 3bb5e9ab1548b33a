#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cp_proxy.h"

/*
 * The client's /metrics writer over several forwards: each family once (HELP and TYPE), one
 * sample per forward labelled forward="NAME" with the name escaped, counters kept apart.
 */

static struct cp_server srv_a, srv_b;

static char *render(const struct cp_server *const *srv, size_t n, struct cg_buf *b)
{
    cg_buf_init(b, 1 << 20);
    cp_metrics_write(b, srv, n, time(NULL));
    assert_false(b->overflow);
    assert_non_null(b->data);
    return b->data;
}

/* How many lines of text start with prefix. */
static size_t count_lines(const char *text, const char *prefix)
{
    size_t n = 0;
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            n++;
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    return n;
}

static void has_line(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (strstr(text, want) == NULL)
        fail_msg("no line '%s' in:\n%s", line, text);
}

static void test_two_forwards(void **state)
{
    (void)state;
    memset(&srv_a, 0, sizeof(srv_a));
    memset(&srv_b, 0, sizeof(srv_b));
    srv_a.name = "api";
    srv_b.name = "we\"ird\\na\nme";
    srv_a.stats.requests_total = 3;
    srv_b.stats.requests_total = 5;
    srv_a.stats.responses_by_class[2] = 3;
    srv_b.stats.responses_by_class[5] = 1;
    srv_b.stats.n_checks = 1;
    snprintf(srv_b.stats.failed_checks[0].check, sizeof(srv_b.stats.failed_checks[0].check),
             "snp.measurement");
    srv_b.stats.failed_checks[0].count = 2;
    srv_a.stats.response_latency.counts[0] = 1;
    srv_a.stats.response_latency.counts[3] = 2;
    srv_a.stats.response_latency.count = 3;
    srv_a.stats.response_latency.sum = 0.125;
    srv_a.set.stats.accepted = 7;
    char err[128];
    assert_int_equal(cp_server_add_server(&srv_a, "127.0.0.1:1", err, sizeof(err)), 0);
    assert_int_equal(cp_server_add_server(&srv_a, "127.0.0.1:2", err, sizeof(err)), 0);
    assert_int_equal(cp_server_add_server(&srv_b, "127.0.0.1:1", err, sizeof(err)), 0);
    srv_a.peers[0]->pool_len = 1;
    srv_a.peers[1]->pool_len = 1;
    srv_a.peers[1]->state = CP_PEER_EJECTED;
    srv_a.peers[1]->ejections = 4;
    srv_b.peers[0]->outstanding = 9;

    const struct cp_server *const srv[] = {&srv_a, &srv_b};
    struct cg_buf b;
    const char *t = render(srv, 2, &b);

    /* Each family once; no sample without the forward label. */
    static const char *const families[] = {"ccgate_client_connections_total",
                                           "ccgate_client_requests_total",
                                           "ccgate_client_responses_total",
                                           "ccgate_client_bytes_total",
                                           "ccgate_client_pool_connections",
                                           "ccgate_attestation_verifications_total",
                                           "ccgate_client_ready",
                                           "ccgate_client_upstream_response_seconds",
                                           "ccgate_client_server_state",
                                           "ccgate_client_server_ejections_total",
                                           "ccgate_client_server_outstanding",
                                           "ccgate_attestation_verification_seconds"};
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char help[128], type[128];
        snprintf(help, sizeof(help), "# HELP %s ", families[i]);
        snprintf(type, sizeof(type), "# TYPE %s ", families[i]);
        if (count_lines(t, help) != 1 || count_lines(t, type) != 1)
            fail_msg("%s: HELP or TYPE not exactly once", families[i]);
    }
    for (const char *p = t; *p != '\0';) {
        const char *end = strchr(p, '\n');
        assert_non_null(end);
        if (*p != '#' && memchr(p, '{', (size_t)(end - p)) == NULL)
            fail_msg("sample without labels: %.*s", (int)(end - p), p);
        if (*p != '#' && strncmp(strchr(p, '{'), "{forward=\"", 10) != 0)
            fail_msg("sample without the forward label first: %.*s", (int)(end - p), p);
        p = end + 1;
    }

    /* The values stay each forward's; the name is escaped as the text format says. */
    has_line(t, "ccgate_client_requests_total{forward=\"api\"} 3");
    has_line(t, "ccgate_client_requests_total{forward=\"we\\\"ird\\\\na\\nme\"} 5");
    has_line(t, "ccgate_client_connections_total{forward=\"api\"} 7");
    has_line(t, "ccgate_client_pool_connections{forward=\"api\"} 2");
    has_line(t, "ccgate_client_responses_total{forward=\"api\",class=\"2xx\"} 3");
    has_line(t, "ccgate_client_responses_total{forward=\"api\",class=\"5xx\"} 0");
    has_line(t, "ccgate_attestation_verifications_total{forward=\"we\\\"ird\\\\na\\nme\","
                "result=\"failed\",check=\"snp.measurement\"} 2");
    assert_null(strstr(t, "forward=\"api\",result=\"failed\""));
    has_line(t, "ccgate_client_ready{forward=\"api\"} 0");
    /* Histogram buckets are cumulative, per forward. */
    has_line(t, "ccgate_client_upstream_response_seconds_bucket{forward=\"api\",le=\"0.001\"} 1");
    has_line(t, "ccgate_client_upstream_response_seconds_bucket{forward=\"api\",le=\"0.01\"} 3");
    has_line(t, "ccgate_client_upstream_response_seconds_bucket{forward=\"api\",le=\"+Inf\"} 3");
    has_line(t, "ccgate_client_upstream_response_seconds_sum{forward=\"api\"} 0.125000");
    has_line(t, "ccgate_client_upstream_response_seconds_count{forward=\"api\"} 3");
    has_line(t,
             "ccgate_client_upstream_response_seconds_count{forward=\"we\\\"ird\\\\na\\nme\"} 0");
    assert_int_equal(count_lines(t, "ccgate_client_requests_total{"), 2);
    /* Per server: the forward's label, then the server's; one state sample per state. */
    has_line(t, "ccgate_client_server_state{forward=\"api\",server=\"127.0.0.1:2\","
                "state=\"ejected\"} 1");
    has_line(t, "ccgate_client_server_state{forward=\"api\",server=\"127.0.0.1:2\","
                "state=\"verified\"} 0");
    has_line(t, "ccgate_client_server_state{forward=\"api\",server=\"127.0.0.1:1\","
                "state=\"never\"} 1");
    has_line(t, "ccgate_client_server_ejections_total{forward=\"api\",server=\"127.0.0.1:2\"} 4");
    has_line(t, "ccgate_client_server_outstanding{forward=\"we\\\"ird\\\\na\\nme\","
                "server=\"127.0.0.1:1\"} 9");
    assert_int_equal(count_lines(t, "ccgate_client_server_state{"), 3 * 4);
    cg_buf_free(&b);

    /* One forward: the same families, one sample each. */
    const char *one = render(srv, 1, &b);
    assert_int_equal(count_lines(one, "ccgate_client_requests_total{"), 1);
    assert_int_equal(count_lines(one, "# TYPE ccgate_client_requests_total counter"), 1);
    cg_buf_free(&b);
    cp_server_free(&srv_a);
    cp_server_free(&srv_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_forwards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
