/* ccgate-client: the client sidecar, next to the app. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ccgate/admin.h"
#include "ccgate/err.h"
#include "ccgate/log.h"
#include "ccgate/opts.h"
#include "ccgate/policy.h"
#include "ccgate/signals.h"
#include "cp_proxy.h"

static struct cg_opt opts[] = {
    {"listen", "ADDR:PORT", "HTTP listener for the app (loopback)", NULL, NULL, NULL},
    {"server", "HOST:PORT", "the ccgate-server to attest and forward to", NULL, NULL, NULL},
    {"policy", "FILE", "appraisal policy JSON (docs/policy.md); required", NULL, NULL, NULL},
    {"admin", "ADDR:PORT", "admin listener: /healthz /readyz /metrics", NULL, NULL, NULL},
    {"config", "FILE", "JSON config file (keys = these option names)", NULL, NULL, NULL},
    {"log-format", "text|json", "log line format", "text", NULL, NULL},
    {"log-level", "error|warn|info|debug",
     "lowest level logged; info (production) has no line per connection", "info", NULL, NULL},
    {"access-log", "on|off",
     "one info line per request: method, path, status, duration_ms, request_id, ...", "on", NULL,
     NULL},
    {"mode", "http|tcp", "http: HTTP/1.1 proxy; tcp: raw byte pipe (ALPN ccgate-tcp)", "http", NULL,
     NULL},
    {"handshake-timeout-ms", "N", "limit for connect + attested handshake", "10000", NULL, NULL},
    {"server-wait-ms", "N",
     "how long a request waits for a server refusing connections (502 after)", "3000", NULL, NULL},
    {"idle-timeout-s", "N", "close idle app connections after this", "60", NULL, NULL},
    {"header-timeout-s", "N", "time for a request head once begun (408 after)", "30", NULL, NULL},
    {"response-timeout-s", "N", "time for a response head after the request (504 after)", "300",
     NULL, NULL},
    {"max-connections", "N", "most concurrent app connections", "4096", NULL, NULL},
    {"pool-max", "N", "idle attested connections kept for reuse, 0 = none (HTTP mode)", "64", NULL,
     NULL},
    {"pool-idle-timeout-s", "N", "close a pooled connection unused this long", "30", NULL, NULL},
    {"max-header-bytes", "N", "request line + headers limit (431 above)", "32768", NULL, NULL},
    {"max-headers", "N", "header count limit (431 above)", "100", NULL, NULL},
    {"max-body-bytes", "N", "request body limit, 0 = none (413 above)", "0", NULL, NULL},
    {"drain-timeout-s", "N", "on SIGTERM, how long in-flight requests may finish", "30", NULL,
     NULL},
    {"help", NULL, "print this help and exit", NULL, NULL, NULL},
    {"version", NULL, "print the version and exit", NULL, NULL, NULL},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const char usage_line[] =
    "ccgate-client --listen ADDR:PORT --server HOST:PORT --policy FILE [--admin ADDR:PORT] "
    "[--config FILE] [--log-format text|json]";
static const char summary[] =
    "Client sidecar: the app sends plain HTTP here; requests go to ccgate-server only over\n"
    "TLS 1.3 whose key is proven, by hardware evidence appraised against the policy, to live\n"
    "in a TEE. A failed appraisal answers 502 with the failed check; nothing is sent.\n"
    "GET /.well-known/ccgate/verification on the listener shows the last verified evidence.";

struct app {
    uv_loop_t *loop;
    struct cp_server server;
    struct cg_policy policies[2]; /* the current one and the slot a reload loads into */
    struct cg_policy *policy;
    struct cg_admin *admin;
    struct cg_signals sig;
};

/* The value of option name (start-up: a bad value ends the process with status 2). */
#define opt(name) cg_opts_get(opts, N_OPTS, (name))->value
#define opt_uint(name, min, max) cg_opts_uint_or_exit(cg_opts_get(opts, N_OPTS, (name)), min, max)

static int readyz(void *arg, struct cg_buf *out)
{
    struct app *a = arg;
    if (a->sig.draining) {
        (void)cg_buf_printf(out, "draining\n");
        return 503;
    }
    if (!cp_server_ready(&a->server, time(NULL), out))
        return 503;
    (void)cg_buf_printf(out, "ready\n");
    return 200;
}

static void write_hist(struct cg_buf *out, const char *name, const char *help,
                       const struct cp_hist *h)
{
    (void)cg_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < CP_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        if (i + 1 == CP_HIST_BUCKETS)
            (void)cg_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
                                (unsigned long long)cum);
        else
            (void)cg_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, cp_hist_bounds[i],
                                (unsigned long long)cum);
    }
    (void)cg_buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name,
                        (unsigned long long)h->count);
}

static int metrics(void *arg, struct cg_buf *out)
{
    struct app *a = arg;
    const struct cp_stats *s = &a->server.stats;
    (void)cg_buf_printf(
        out,
        "# HELP ccgate_client_connections_total App connections accepted.\n"
        "# TYPE ccgate_client_connections_total counter\n"
        "ccgate_client_connections_total %llu\n"
        "# HELP ccgate_client_connections_active App connections open now.\n"
        "# TYPE ccgate_client_connections_active gauge\n"
        "ccgate_client_connections_active %llu\n"
        "# HELP ccgate_client_requests_total App requests forwarded to the server.\n"
        "# TYPE ccgate_client_requests_total counter\n"
        "ccgate_client_requests_total %llu\n"
        "# HELP ccgate_client_local_requests_total App requests answered by the client itself.\n"
        "# TYPE ccgate_client_local_requests_total counter\n"
        "ccgate_client_local_requests_total %llu\n"
        "# HELP ccgate_client_responses_total Responses to the app, by status class.\n"
        "# TYPE ccgate_client_responses_total counter\n",
        (unsigned long long)a->server.set.stats.accepted,
        (unsigned long long)a->server.set.stats.live, (unsigned long long)s->requests_total,
        (unsigned long long)s->local_requests);
    for (int i = 1; i <= 5; i++)
        (void)cg_buf_printf(out, "ccgate_client_responses_total{class=\"%dxx\"} %llu\n", i,
                            (unsigned long long)s->responses_by_class[i]);
    (void)cg_buf_printf(
        out,
        "# HELP ccgate_client_bytes_total Bytes from and to apps, added when a connection closes.\n"
        "# TYPE ccgate_client_bytes_total counter\n"
        "ccgate_client_bytes_total{direction=\"from_app\"} %llu\n"
        "ccgate_client_bytes_total{direction=\"to_app\"} %llu\n"
        "# HELP ccgate_client_handshakes_total Attested handshakes completed.\n"
        "# TYPE ccgate_client_handshakes_total counter\n"
        "ccgate_client_handshakes_total %llu\n"
        "# HELP ccgate_client_handshakes_with_nonce_total Handshakes that asked for fresh "
        "evidence.\n"
        "# TYPE ccgate_client_handshakes_with_nonce_total counter\n"
        "ccgate_client_handshakes_with_nonce_total %llu\n"
        "# HELP ccgate_client_handshake_seconds_total Time spent in attested handshakes.\n"
        "# TYPE ccgate_client_handshake_seconds_total counter\n"
        "ccgate_client_handshake_seconds_total %.6f\n"
        "# HELP ccgate_client_key_changes_total Times the server's verified key changed.\n"
        "# TYPE ccgate_client_key_changes_total counter\n"
        "ccgate_client_key_changes_total %llu\n"
        "# HELP ccgate_client_server_unreachable_total Connections to the server that failed.\n"
        "# TYPE ccgate_client_server_unreachable_total counter\n"
        "ccgate_client_server_unreachable_total %llu\n"
        "# HELP ccgate_client_connections_refused_total App connections over max-connections "
        "(503).\n"
        "# TYPE ccgate_client_connections_refused_total counter\n"
        "ccgate_client_connections_refused_total %llu\n"
        "# HELP ccgate_client_response_timeouts_total Responses that did not begin in time (504).\n"
        "# TYPE ccgate_client_response_timeouts_total counter\n"
        "ccgate_client_response_timeouts_total %llu\n"
        "# HELP ccgate_client_pool_connections Idle attested connections in the pool.\n"
        "# TYPE ccgate_client_pool_connections gauge\n"
        "ccgate_client_pool_connections %zu\n"
        "# HELP ccgate_client_pool_reused_total Requests sent on a pooled attested connection.\n"
        "# TYPE ccgate_client_pool_reused_total counter\n"
        "ccgate_client_pool_reused_total %llu\n"
        "# HELP ccgate_client_pool_dropped_total Pooled connections closed unused.\n"
        "# TYPE ccgate_client_pool_dropped_total counter\n"
        "ccgate_client_pool_dropped_total %llu\n"
        "# HELP ccgate_client_retries_total Requests sent again after their connection died "
        "unanswered.\n"
        "# TYPE ccgate_client_retries_total counter\n"
        "ccgate_client_retries_total %llu\n"
        "# HELP ccgate_attestation_verifications_total Evidence appraisals by result.\n"
        "# TYPE ccgate_attestation_verifications_total counter\n"
        "ccgate_attestation_verifications_total{result=\"ok\"} %llu\n",
        (unsigned long long)s->bytes_from_app, (unsigned long long)s->bytes_to_app,
        (unsigned long long)s->handshakes, (unsigned long long)s->handshakes_with_nonce,
        s->handshake_seconds_sum, (unsigned long long)s->key_changes,
        (unsigned long long)s->server_unreachable, (unsigned long long)s->conns_refused,
        (unsigned long long)s->response_timeouts, a->server.peer.pool_len,
        (unsigned long long)s->pool_reused, (unsigned long long)s->pool_dropped,
        (unsigned long long)s->retries, (unsigned long long)s->verify_ok);
    for (size_t i = 0; i < s->n_checks; i++)
        (void)cg_buf_printf(out,
                            "ccgate_attestation_verifications_total{result=\"failed\","
                            "check=\"%s\"} %llu\n",
                            s->failed_checks[i].check,
                            (unsigned long long)s->failed_checks[i].count);
    (void)cg_buf_printf(out,
                        "# HELP ccgate_client_ready 1 when /readyz answers 200.\n"
                        "# TYPE ccgate_client_ready gauge\nccgate_client_ready %d\n",
                        cp_server_ready(&a->server, time(NULL), NULL));
    write_hist(out, "ccgate_client_upstream_response_seconds",
               "From the request sent to the response head from the server.", &s->response_latency);
    write_hist(out, "ccgate_attestation_verification_seconds",
               "Connect to verified handshake, for handshakes with fresh evidence.",
               &s->verification_latency);
    return 200;
}

static struct cg_admin_handlers admin_handlers = {NULL, NULL, readyz, metrics};

static void on_idle(struct cp_server *s)
{
    struct app *a = (struct app *)((char *)s - offsetof(struct app, server));
    cg_signals_close(&a->sig);
}

/* SIGHUP: loads the policy file again; new handshakes use it, established connections stay.
 * A policy that does not load leaves the current one in force. */
static void on_sighup(struct cg_signals *sg)
{
    struct app *a = sg->data;
    char err[512], digest[65];
    struct cg_policy *next = a->policy == &a->policies[0] ? &a->policies[1] : &a->policies[0];
    if (cg_policy_load(opt("policy"), next, err, sizeof(err)) < 0) {
        cg_log_error("reload.failed", "policy=%s err=\"%s\": the current policy stays",
                     opt("policy"), err);
        return;
    }
    cp_server_set_policy(&a->server, next);
    a->policy = next;
    cg_hex(digest, sizeof(digest), next->digest, sizeof(next->digest));
    cg_log_info("reload", "policy=%s policy_sha256=%s", opt("policy"), digest);
}

static void on_drain_deadline(struct cg_signals *sg)
{
    struct app *a = sg->data;
    cp_server_abort(&a->server);
}

static void on_drain(struct cg_signals *sg, int signum)
{
    struct app *a = sg->data;
    (void)signum;
    cg_log_info("shutdown.client", "active=%llu", (unsigned long long)a->server.set.stats.live);
    cg_admin_close(a->admin);
    a->admin = NULL;
    cp_server_stop(&a->server);
}

int main(int argc, char **argv)
{
    char err[512];
    if (cg_opts_startup("ccgate-client", argc, argv, opts, N_OPTS, usage_line, summary) != 0)
        return 0;

    static struct app a;
    a.loop = uv_default_loop();
    struct cp_server *srv = &a.server;
    srv->loop = a.loop;
    if (opt("listen") == NULL || opt("server") == NULL)
        cg_fatal("--listen and --server are required (see --help)");
    if (opt("policy") == NULL)
        cg_fatal("--policy FILE is required: without a policy nothing can be trusted "
                 "(see docs/policy.md, or `ccgate policy from-evidence`)");
    if (cg_addr_parse(opt("listen"), 0, &srv->listen_addr, err, sizeof(err)) < 0)
        cg_fatal("--listen: %s", err);
    if (!cg_addr_is_loopback(&srv->listen_addr))
        cg_log_warn("listen.exposed",
                    "addr=%s err=\"the app listener speaks plain HTTP: whoever reaches it reads "
                    "and sends requests in clear; use 127.0.0.1 unless that network is trusted\"",
                    srv->listen_addr.text);
    if (cg_addr_parse(opt("server"), 0, &srv->peer.addr, err, sizeof(err)) < 0)
        cg_fatal("--server: %s", err);
    srv->access_log = cg_opts_onoff_or_exit(cg_opts_get(opts, N_OPTS, "access-log"));
    if (strcmp(opt("mode"), "tcp") == 0)
        srv->tcp_mode = 1;
    else if (strcmp(opt("mode"), "http") != 0)
        cg_fatal("--mode: expected http or tcp, got '%s'", opt("mode"));
    a.policy = &a.policies[0];
    if (cg_policy_load(opt("policy"), a.policy, err, sizeof(err)) < 0)
        cg_fatal("--policy %s: %s", opt("policy"), err);
    srv->policy = a.policy;
    srv->handshake_timeout_ms = (unsigned)opt_uint("handshake-timeout-ms", 100, 600000);
    srv->server_wait_ms = (unsigned)opt_uint("server-wait-ms", 0, 600000);
    srv->idle_timeout_ms = (unsigned)opt_uint("idle-timeout-s", 1, 86400) * 1000;
    srv->max_conns = (unsigned)opt_uint("max-connections", 1, 1000000);
    srv->pool_max = (unsigned)opt_uint("pool-max", 0, 100000);
    srv->pool_idle_ms = (unsigned)opt_uint("pool-idle-timeout-s", 1, 3600) * 1000;
    srv->header_timeout_ms = (unsigned)opt_uint("header-timeout-s", 1, 3600) * 1000;
    srv->response_timeout_ms = (unsigned)opt_uint("response-timeout-s", 1, 86400) * 1000;
    srv->limits.max_header_bytes = opt_uint("max-header-bytes", 1024, 1024 * 1024);
    srv->limits.max_headers = opt_uint("max-headers", 8, CG_HTTP_MAX_HEADERS_CAP);
    srv->limits.max_body_bytes = opt_uint("max-body-bytes", 0, (unsigned long)-1);
    a.sig.drain_ms = opt_uint("drain-timeout-s", 0, 3600) * 1000;
    struct cg_addr admin_addr;
    if (opt("admin") != NULL && cg_addr_parse(opt("admin"), 1, &admin_addr, err, sizeof(err)) < 0)
        cg_fatal("--admin: %s", err);

    signal(SIGPIPE, SIG_IGN);
    if (cp_fresh_init(&srv->peer.fresh, srv->tcp_mode ? CG_ALPN_TCP : CG_ALPN_HTTP,
                      srv->peer.addr.text, a.policy) < 0)
        cg_fatal("TLS context setup failed");
    srv->on_idle = on_idle;
    int rc = cp_server_start(srv);
    if (rc < 0)
        cg_fatal("--listen %s: %s", srv->listen_addr.text, cg_strerror(rc));
    if (opt("admin") != NULL) {
        admin_handlers.arg = &a;
        rc = cg_admin_start(a.loop, &admin_addr, &admin_handlers, &a.admin);
        if (rc < 0)
            cg_fatal("--admin %s: %s", admin_addr.text, cg_strerror(rc));
    }
    a.sig.data = &a;
    a.sig.on_drain = on_drain;
    a.sig.on_deadline = on_drain_deadline;
    a.sig.on_reload = on_sighup;
    if (cg_signals_start(&a.sig, a.loop) < 0)
        cg_fatal("signal handlers: setup failed");

    if (a.policy->sim.allow)
        cg_log_warn("policy.sim", "INSECURE: the policy accepts the simulated TEE");
    if (a.policy->snp.n_measurements == 0)
        cg_log_warn("policy.measurements",
                    "snp.measurements is empty: ANY guest image is accepted; pin it");
    char digest[65];
    cg_hex(digest, sizeof(digest), a.policy->digest, sizeof(a.policy->digest));
    cg_log_info("listening", "addr=%s server=%s mode=%s policy=%s policy_sha256=%s admin=%s",
                srv->listen_addr.text, srv->peer.addr.text, opt("mode"), opt("policy"), digest,
                opt("admin") ? opt("admin") : "-");

    uv_run(a.loop, UV_RUN_DEFAULT);
    cp_fresh_free(&srv->peer.fresh);
    (void)uv_loop_close(a.loop);
    cg_opts_free(opts, N_OPTS);
    cg_log_info("stopped", "clean=1");
    return 0;
}
