/* ccgate-server: the server sidecar, inside the confidential VM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "ccgate/admin.h"
#include "ccgate/err.h"
#include "ccgate/log.h"
#include "ccgate/opts.h"
#include "ccgate/signals.h"
#include "ccgate/sim.h"
#include "ccgate/token.h"
#include "ccgate/tsm.h"
#include "sp_attester.h"
#include "sp_model.h"
#include "sp_proxy.h"

static struct cg_opt opts[] = {
    {"listen", "ADDR:PORT", "RA-TLS listener for client sidecars", NULL, NULL, NULL},
    {"upstream", "ADDR:PORT", "the inference service (or unix:PATH)", NULL, NULL, NULL},
    {"tee", "sim|snp|tdx|auto", "evidence provider; auto never falls back to sim", "auto", NULL,
     NULL},
    {"state-dir", "DIR", "state folder (sim TEE chain; created by `ccgate sim-init`)", NULL, NULL,
     NULL},
    {"tsm-root", "PATH", "configfs-tsm report folder", CG_TSM_ROOT, NULL, NULL},
    {"snp-certs", "DIR", "VCEK/VLEK and ASK files when the host's certificate table has none", NULL,
     NULL, NULL},
    {"tdx-collateral", "DIR",
     "TDX collateral sent to clients (tcb_info.json, qe_identity.json, ...)", NULL, NULL, NULL},
    {"gpu", "none|sim|nvml|auto",
     "GPU evidence provider; sim only with --tee sim; auto never falls back to sim", "none", NULL,
     NULL},
    {"gpu-collateral", "DIR", "RIMs and OCSP responses sent with the GPU evidence", NULL, NULL,
     NULL},
    {"admin", "ADDR:PORT", "admin listener: /healthz /readyz /metrics", NULL, NULL, NULL},
    {"config", "FILE", "JSON config file (keys = these option names)", NULL, NULL, NULL},
    {"log-format", "text|json", "log line format", "text", NULL, NULL},
    {"log-level", "error|warn|info|debug",
     "lowest level logged; info (production) has no line per request or connection", "info", NULL,
     NULL},
    {"mode", "http|tcp", "tunnel mode, offered as ALPN", "http", NULL, NULL},
    {"tokens", "FILE",
     "HTTP mode: only requests with a bearer token listed in FILE (`ccgate token hash`) reach "
     "the upstream; SIGHUP reloads it",
     NULL, NULL, NULL},
    {"access-log", "on|off",
     "HTTP mode: a line per request (info level): method, path, status, bytes, times", "on", NULL,
     NULL},
    {"model-query-s", "N",
     "HTTP mode: seconds between asking the upstream's GET /health which sealed model it "
     "loaded, which the attestation claims then name; 0 = never",
     "30", NULL, NULL},
    {"refresh-s", "N", "seconds between periodic evidence refreshes", "600", NULL, NULL},
    {"batch-window-ms", "N", "window in which nonces share one evidence request", "20", NULL, NULL},
    {"sim-evidence-delay-ms", "N",
     "TEST ONLY, --tee sim: each evidence request after start-up takes N ms longer", "0", NULL,
     NULL},
    {"batch-max", "N", "most nonces per evidence request", "64", NULL, NULL},
    {"handshake-timeout-ms", "N", "limit for a client's TLS handshake", "10000", NULL, NULL},
    {"max-connections", "N", "most concurrent client connections", "4096", NULL, NULL},
    {"upstream-connect-timeout-ms", "N", "limit for connecting to the upstream (502 after)", "5000",
     NULL, NULL},
    {"idle-timeout-s", "N", "close a connection with no traffic either way for this long", "300",
     NULL, NULL},
    {"drain-timeout-s", "N", "on SIGTERM, how long live connections may finish", "30", NULL, NULL},
    {"help", NULL, "print this help and exit", NULL, NULL, NULL},
    {"version", NULL, "print the version and exit", NULL, NULL, NULL},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const char usage_line[] =
    "ccgate-server --listen ADDR:PORT --upstream ADDR:PORT --tee sim|snp|tdx|auto "
    "--state-dir DIR [--admin ADDR:PORT] [--config FILE] [--log-format text|json]";
static const char summary[] =
    "Server sidecar: answers attested TLS 1.3 (RA-TLS) from ccgate-client with hardware\n"
    "evidence bound to its key, and relays the traffic to the upstream inference service.";

struct app {
    uv_loop_t *loop;
    struct sp_server server;
    struct sp_attester *attester;
    struct sp_model_query *model_query;
    struct cg_provider *provider;
    struct cg_admin *admin;
    struct cg_signals sig;
    const char *tee;
    const char *tokens_path;
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
    (void)cg_buf_printf(out, "ready\n");
    return 200;
}

/* The HTTP-mode request metrics: answers by status class, the latency histogram, refusals. */
static void request_metrics(const struct sp_stats *s, struct cg_buf *out)
{
    (void)cg_buf_printf(out,
                        "# HELP ccgate_server_requests_total Requests answered (by the upstream "
                        "or by ccgate: 401, 502), by status class.\n"
                        "# TYPE ccgate_server_requests_total counter\n");
    for (int i = 1; i <= 5; i++)
        (void)cg_buf_printf(out, "ccgate_server_requests_total{code=\"%dxx\"} %llu\n", i,
                            (unsigned long long)s->requests[i]);
    cg_hist_write(out, "ccgate_server_upstream_latency_seconds",
                  "Time from a request's head to the upstream's response head.", &s->latency);
    (void)cg_buf_printf(out, "# HELP ccgate_server_auth_failures_total Requests refused for their "
                             "bearer token (--tokens), by reason.\n"
                             "# TYPE ccgate_server_auth_failures_total counter\n");
    for (int f = CG_TOKEN_MISSING; f <= CG_TOKEN_UNKNOWN; f++)
        (void)cg_buf_printf(out, "ccgate_server_auth_failures_total{reason=\"%s\"} %llu\n",
                            cg_token_fail_name((enum cg_token_fail)f),
                            (unsigned long long)s->auth_failures[f]);
}

static int metrics(void *arg, struct cg_buf *out)
{
    struct app *a = arg;
    const struct sp_stats *s = &a->server.stats;
    const struct sp_attester_stats *e = sp_attester_stats(a->attester);
    (void)cg_buf_printf(
        out,
        "# HELP ccgate_server_connections_total Client connections accepted.\n"
        "# TYPE ccgate_server_connections_total counter\n"
        "ccgate_server_connections_total %llu\n"
        "# HELP ccgate_server_connections_active Client connections open now.\n"
        "# TYPE ccgate_server_connections_active gauge\n"
        "ccgate_server_connections_active %llu\n"
        "# HELP ccgate_server_handshake_failures_total TLS handshakes with clients that failed.\n"
        "# TYPE ccgate_server_handshake_failures_total counter\n"
        "ccgate_server_handshake_failures_total %llu\n"
        "# HELP ccgate_server_upstream_failures_total Connections to the upstream that failed.\n"
        "# TYPE ccgate_server_upstream_failures_total counter\n"
        "ccgate_server_upstream_failures_total %llu\n"
        "# HELP ccgate_server_bytes_total Plaintext bytes from and to client sidecars, counted as "
        "they move.\n"
        "# TYPE ccgate_server_bytes_total counter\n"
        "ccgate_server_bytes_total{direction=\"from_client\"} %llu\n"
        "ccgate_server_bytes_total{direction=\"to_client\"} %llu\n"
        "# HELP ccgate_evidence_requests_total Hardware evidence requests (each covers a batch).\n"
        "# TYPE ccgate_evidence_requests_total counter\n"
        "ccgate_evidence_requests_total{tee=\"%s\"} %llu\n"
        "# HELP ccgate_evidence_failures_total Hardware evidence requests that failed.\n"
        "# TYPE ccgate_evidence_failures_total counter\n"
        "ccgate_evidence_failures_total{tee=\"%s\"} %llu\n"
        "# HELP ccgate_nonce_handshakes_total Handshakes that asked for fresh evidence.\n"
        "# TYPE ccgate_nonce_handshakes_total counter\n"
        "ccgate_nonce_handshakes_total %llu\n"
        "# HELP ccgate_evidence_cert_iat_seconds Issue time (Unix seconds) of the certificate "
        "served now.\n"
        "# TYPE ccgate_evidence_cert_iat_seconds gauge\n"
        "ccgate_evidence_cert_iat_seconds %lld\n",
        (unsigned long long)s->conns_total, (unsigned long long)s->conns_active,
        (unsigned long long)s->handshake_failures, (unsigned long long)s->upstream_failures,
        (unsigned long long)s->bytes_from_client, (unsigned long long)s->bytes_to_client, a->tee,
        (unsigned long long)e->evidence_requests, a->tee, (unsigned long long)e->evidence_failures,
        (unsigned long long)e->nonce_handshakes, (long long)e->cert_iat);
    if (!a->server.tcp_mode)
        request_metrics(s, out);
    return 200;
}

static const struct cg_admin_handlers admin_handlers_tmpl = {NULL, NULL, readyz, metrics};
static struct cg_admin_handlers admin_handlers;

static void on_idle(struct sp_server *s)
{
    struct app *a = (struct app *)((char *)s - offsetof(struct app, server));
    sp_attester_close(a->attester);
    sp_model_query_close(a->model_query);
    a->model_query = NULL;
    cg_signals_close(&a->sig);
}

/* SIGHUP: reads the token file again; a bad file keeps the tokens in force (and says why). */
static void on_reload(struct cg_signals *sg)
{
    struct app *a = sg->data;
    if (a->tokens_path == NULL) {
        cg_log_info("reload", "what=nothing");
        return;
    }
    struct cg_tokens *t;
    char err[512];
    if (cg_tokens_load(a->tokens_path, &t, err, sizeof(err)) < 0) {
        cg_logf(CG_LOG_ERROR, "tokens.reload_failed", CG_LF_STR("file", a->tokens_path),
                CG_LF_STR("err", err), CG_LF_STR("kept", "the tokens loaded before"));
        return;
    }
    /* Connections borrow the set only inside a check: the old one can go at once. */
    cg_tokens_free(a->server.tokens);
    a->server.tokens = t;
    cg_logf(CG_LOG_INFO, "tokens.reloaded", CG_LF_STR("file", a->tokens_path),
            CG_LF_UINT("tokens", cg_tokens_count(t)));
}

static void on_drain_deadline(struct cg_signals *sg)
{
    struct app *a = sg->data;
    sp_server_abort(&a->server);
}

static void on_drain(struct cg_signals *sg, int signum)
{
    struct app *a = sg->data;
    (void)signum;
    cg_log_info("shutdown.server", "active=%llu", (unsigned long long)a->server.stats.conns_active);
    cg_admin_close(a->admin);
    a->admin = NULL;
    sp_server_stop(&a->server);
}

/* Chooses the provider for --tee; auto looks for hardware and never picks sim. */
static struct cg_provider *make_provider(const char *tee, const char *state_dir)
{
    struct cg_provider *p = NULL;
    struct cg_tsm_config cfg = {.root = opt("tsm-root"),
                                .snp_certs = opt("snp-certs"),
                                .tdx_collateral = opt("tdx-collateral")};
    char how[512];
    if (strcmp(tee, "auto") == 0) {
        if (cg_tsm_detect(&cfg, &tee, how, sizeof(how)) != 0)
            cg_fatal("--tee auto: no TEE found (%s); for development use --tee sim", how);
        cg_logf(CG_LOG_INFO, "tee.auto", CG_LF_STR("picked", tee), CG_LF_STR("via", how));
    }
    if (strcmp(tee, "snp") == 0 || strcmp(tee, "tdx") == 0) {
        int rc = cg_tsm_provider_new(tee, &cfg, &p);
        if (rc == CG_ENOTEE)
            cg_fatal("--tee %s: no %s here (%s is not a folder%s; configfs-tsm needs Linux 6.7+ "
                     "and configfs mounted on /sys/kernel/config); for development use --tee sim",
                     tee, tee, cfg.root,
                     strcmp(tee, "snp") == 0 ? " and no " CG_SEV_GUEST_DEV : "");
        if (rc < 0)
            cg_fatal("--tee %s: %s", tee, cg_strerror(rc));
        if (strcmp(tee, "tdx") == 0 && cfg.tdx_collateral == NULL)
            cg_log_warn("tdx.collateral", "no --tdx-collateral DIR: clients get the quote "
                                          "without TCB info, QE identity or CRLs");
        return p;
    }
    if (strcmp(tee, "sim") != 0)
        cg_fatal("--tee: expected sim, snp, tdx or auto, got '%s'", tee);
    if (state_dir == NULL)
        cg_fatal("--tee sim needs --state-dir DIR (created by `ccgate sim-init --state-dir DIR`)");
    int rc = cg_sim_provider_new(state_dir, "/proc/self/exe", &p);
    if (rc < 0)
        cg_fatal("--state-dir %s: cannot load the simulated TEE (%s); run `ccgate sim-init "
                 "--state-dir %s` first",
                 state_dir, cg_strerror(rc), state_dir);
    return p;
}

int main(int argc, char **argv)
{
    char err[512];
    if (cg_opts_startup("ccgate-server", argc, argv, opts, N_OPTS, usage_line, summary) != 0)
        return 0;

    static struct app a;
    a.loop = uv_default_loop();
    a.tee = opt("tee");
    struct sp_server *srv = &a.server;
    srv->loop = a.loop;
    if (opt("listen") == NULL || opt("upstream") == NULL)
        cg_fatal("--listen and --upstream are required (see --help)");
    if (cg_addr_parse(opt("listen"), 0, &srv->listen_addr, err, sizeof(err)) < 0)
        cg_fatal("--listen: %s", err);
    if (cg_addr_parse(opt("upstream"), 1, &srv->upstream, err, sizeof(err)) < 0)
        cg_fatal("--upstream: %s", err);
    const char *alpn;
    if (strcmp(opt("mode"), "http") == 0)
        alpn = CG_ALPN_HTTP;
    else if (strcmp(opt("mode"), "tcp") == 0) {
        alpn = CG_ALPN_TCP;
        srv->tcp_mode = 1;
    } else
        cg_fatal("--mode: expected http or tcp, got '%s'", opt("mode"));
    /* TCP mode sees no requests */
    srv->access_log =
        cg_opts_onoff_or_exit(cg_opts_get(opts, N_OPTS, "access-log")) && !srv->tcp_mode;
    a.tokens_path = opt("tokens");
    if (a.tokens_path != NULL) {
        if (srv->tcp_mode)
            cg_fatal("--tokens: only with --mode http (TCP mode carries no requests to check; "
                     "restrict the port instead)");
        if (cg_tokens_load(a.tokens_path, &srv->tokens, err, sizeof(err)) < 0)
            cg_fatal("--tokens %s: %s", a.tokens_path, err);
    }
    unsigned long refresh = opt_uint("refresh-s", 10, 86400);
    unsigned long window = opt_uint("batch-window-ms", 0, 1000);
    unsigned long batch_max = opt_uint("batch-max", 1, 64);
    unsigned long model_query_s = opt_uint("model-query-s", 0, 86400);
    srv->handshake_timeout_ms = (unsigned)opt_uint("handshake-timeout-ms", 100, 600000);
    srv->max_conns = (unsigned)opt_uint("max-connections", 1, 1000000);
    srv->upstream_connect_timeout_ms =
        (unsigned)opt_uint("upstream-connect-timeout-ms", 100, 600000);
    srv->idle_timeout_ms = (unsigned)opt_uint("idle-timeout-s", 1, 86400) * 1000;
    a.sig.drain_ms = opt_uint("drain-timeout-s", 0, 3600) * 1000;
    struct cg_addr admin_addr;
    if (opt("admin") != NULL && cg_addr_parse(opt("admin"), 1, &admin_addr, err, sizeof(err)) < 0)
        cg_fatal("--admin: %s", err);

    unsigned long evidence_delay = opt_uint("sim-evidence-delay-ms", 0, 10000);
    if (evidence_delay > 0 && strcmp(a.tee, "sim") != 0)
        cg_fatal("--sim-evidence-delay-ms: only with --tee sim (a test option), got --tee %s",
                 a.tee);

    signal(SIGPIPE, SIG_IGN);
    struct cg_gpu_provider *gpu; /* first: --gpu sim needs --tee sim, not what auto finds */
    int rc = sp_attester_gpu_provider(opt("gpu"), a.tee, opt("state-dir"), opt("gpu-collateral"),
                                      &gpu, err, sizeof(err));
    if (rc < 0)
        cg_fatal("--gpu %s: %s", opt("gpu"), err);
    a.provider = make_provider(a.tee, opt("state-dir"));
    a.tee = a.provider->name; /* what auto picked */
    rc = sp_attester_new(a.loop, a.provider, gpu, (unsigned)refresh, (unsigned)window,
                         (unsigned)batch_max, &a.attester);
    if (rc < 0)
        cg_fatal("first evidence from the %s TEE failed: %s", a.tee, cg_strerror(rc));
    sp_attester_set_evidence_delay(a.attester, (unsigned)evidence_delay);
    srv->attester = a.attester;
    if (!srv->tcp_mode && model_query_s > 0 &&
        sp_model_query_start(a.loop, &srv->upstream, (unsigned)model_query_s, a.attester,
                             &a.model_query) < 0)
        cg_fatal("--model-query-s: out of memory");
    if (cg_tls_server_ctx_new(alpn, sp_attester_cert_cb, a.attester, &srv->tls) < 0)
        cg_fatal("TLS context setup failed");
    srv->on_idle = on_idle;
    rc = sp_server_start(srv);
    if (rc < 0)
        cg_fatal("--listen %s: %s", srv->listen_addr.text, cg_strerror(rc));
    if (opt("admin") != NULL) {
        admin_handlers = admin_handlers_tmpl;
        admin_handlers.arg = &a;
        rc = cg_admin_start(a.loop, &admin_addr, &admin_handlers, &a.admin);
        if (rc < 0)
            cg_fatal("--admin %s: %s", admin_addr.text, cg_strerror(rc));
    }
    a.sig.data = &a;
    a.sig.on_drain = on_drain;
    a.sig.on_deadline = on_drain_deadline;
    a.sig.on_reload = on_reload;
    if (cg_signals_start(&a.sig, a.loop) < 0)
        cg_fatal("signal handlers: setup failed");

    if (strcmp(a.tee, "sim") == 0)
        cg_log_warn("tee.sim", "INSECURE simulated TEE: for development and tests only");
    cg_logf(CG_LOG_INFO, "listening", CG_LF_STR("addr", srv->listen_addr.text),
            CG_LF_STR("upstream", srv->upstream.text), CG_LF_STR("tee", a.tee),
            CG_LF_STR("mode", opt("mode")), CG_LF_STR("admin", opt("admin") ? opt("admin") : "-"),
            CG_LF_UINT("tokens", srv->tokens != NULL ? cg_tokens_count(srv->tokens) : 0));

    uv_run(a.loop, UV_RUN_DEFAULT);
    cg_tls_ctx_free(srv->tls);
    cg_tokens_free(srv->tokens);
    sp_attester_free(a.attester);
    a.provider->free(a.provider);
    (void)uv_loop_close(a.loop);
    cg_opts_free(opts, N_OPTS);
    cg_logf(CG_LOG_INFO, "stopped", CG_LF_INT("clean", 1));
    return 0;
}
