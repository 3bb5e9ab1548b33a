/* ccgate-kbs: a key broker speaking Trustee's KBS protocol RCAR 0.4.0 (key-broker/). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/audit.h"
#include "ccgate/err.h"
#include "ccgate/log.h"
#include "ccgate/opts.h"
#include "ccgate/ratls.h"
#include "ccgate/signals.h"
#include "ccgate/tls.h"
#include "kb_config.h"
#include "kb_http.h"
#include "kb_rcar.h"

static struct cg_opt opts[] = {
    {"listen", "ADDR:PORT", "where to answer (plain HTTP only on loopback)", NULL, NULL, NULL},
    {"config", "FILE",
     "the broker's JSON config: resources, audit_log, tls_cert, tls_key, tdx_collateral", NULL,
     NULL, NULL},
    {"log-format", "text|json", "log line format", "text", NULL, NULL},
    {"help", NULL, "print this help and exit", NULL, NULL, NULL},
    {"version", NULL, "print the version and exit", NULL, NULL, NULL},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const char usage_line[] = "ccgate-kbs --listen ADDR:PORT --config FILE";
static const char summary[] =
    "Key broker: releases a resource (a sealed model's key) only to a TEE whose fresh\n"
    "evidence passes the resource's policy, as a JWE to the TEE's ephemeral key; records\n"
    "every decision in a hash-chained audit log (docs/model-protection.md).";

static struct kb_http *http;

/* The broker's own certificate and key (tls_cert, tls_key): presented to every client. */
struct identity {
    struct cg_ratls_key *key;
    uint8_t *der;
    size_t der_len;
};

static int use_identity(void *arg, struct cg_tls *t, const uint8_t *nonce)
{
    (void)nonce; /* an RA-TLS client's nonce: the broker has no evidence to bind it to */
    const struct identity *id = arg;
    return cg_tls_use_cert(t, id->der, id->der_len, id->key);
}

static struct cg_signals sig;

/* SIGTERM/SIGINT: stop accepting, answer the requests in flight, then end. */
static void on_drain(struct cg_signals *sg, int signum)
{
    (void)sg;
    (void)signum;
    kb_http_drain(http);
}

static void on_deadline(struct cg_signals *sg)
{
    (void)sg;
    kb_http_abort(http);
}

/* The listener and every connection are gone: the signal handles are all that is left. */
static void on_http_stopped(void *arg)
{
    cg_signals_close(arg);
}

int main(int argc, char **argv)
{
    char err[512];
    struct kb_config cfg;
    struct cg_addr addr;
    struct cg_audit *audit = NULL;
    struct kb_broker *broker = NULL;
    enum cg_log_format fmt;
    cg_log_init("ccgate-kbs", CG_LOG_TEXT, CG_LOG_INFO);
    if (cg_opts_parse(argc, argv, 1, opts, N_OPTS, err, sizeof(err)) != 0)
        cg_fatal("%s", err);
    if (cg_opts_get(opts, N_OPTS, "help")->value != NULL) {
        cg_opts_usage(stdout, usage_line, summary, opts, N_OPTS);
        return 0;
    }
    if (cg_opts_get(opts, N_OPTS, "version")->value != NULL) {
        printf("ccgate-kbs %s\n", CCGATE_VERSION);
        return 0;
    }
    const char *listen = opts[0].value, *config = opts[1].value;
    const char *lf = opts[2].value != NULL ? opts[2].value : opts[2].def;
    if (cg_log_parse_format(lf, &fmt) != 0)
        cg_fatal("--log-format: expected text or json, got '%s'", lf);
    cg_log_init("ccgate-kbs", fmt, CG_LOG_INFO);
    if (listen == NULL || config == NULL)
        cg_fatal("--listen and --config are required (see --help)");
    if (cg_addr_parse(listen, 0, &addr, err, sizeof(err)) != 0)
        cg_fatal("--listen: %s", err);
    if (kb_config_load(config, &cfg, err, sizeof(err)) != 0)
        cg_fatal("%s", err);
    struct identity id = {0};
    struct cg_tls_ctx *tls = NULL;
    if (cfg.tls_cert != NULL) {
        if (cg_ratls_identity_load_pem(cfg.tls_cert, cfg.tls_key, &id.key, &id.der, &id.der_len) !=
            0)
            cg_fatal("tls_cert %s / tls_key %s: expected a PEM certificate and its PEM "
                     "private key",
                     cfg.tls_cert, cfg.tls_key);
        if (cg_tls_server_ctx_new(CG_ALPN_HTTP, use_identity, &id, &tls) != 0)
            cg_fatal("TLS context setup failed");
    } else if (!cg_addr_is_loopback(&addr))
        cg_fatal("--listen %s: plain HTTP only on loopback; set tls_cert and tls_key for "
                 "other addresses",
                 listen);
    if (cg_audit_open(cfg.audit_log, &audit, err, sizeof(err)) != 0)
        cg_fatal("%s", err);
    if (kb_broker_new(&cfg, audit, &broker) != 0)
        cg_fatal("cannot create the token-signing key");

    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    sig.on_drain = on_drain;
    sig.on_deadline = on_deadline;
    sig.drain_ms = KB_HTTP_TIMEOUT_MS; /* no exchange lasts longer */
    int rc = cg_signals_start(&sig, loop);
    if (rc != 0)
        cg_fatal("signal handlers: %s", cg_strerror(rc));
    rc = kb_http_start(loop, &addr, broker, tls, on_http_stopped, &sig, &http);
    if (rc != 0)
        cg_fatal("--listen %s: %s", listen, cg_strerror(rc));
    char head[65];
    uint64_t lines = cg_audit_head(audit, head);
    cg_log_info("listening",
                "addr=%s scheme=%s resources=%zu audit_log=%s audit_lines=%llu audit_head=%s",
                addr.text, tls != NULL ? "https" : "http", cfg.n_res, cfg.audit_log,
                (unsigned long long)lines, head);
    uv_run(loop, UV_RUN_DEFAULT);
    lines = cg_audit_head(audit, head);
    cg_log_info("stopped", "audit_lines=%llu audit_head=%s", (unsigned long long)lines, head);
    kb_broker_free(broker);
    cg_tls_ctx_free(tls);
    cg_ratls_key_free(id.key);
    free(id.der);
    cg_audit_close(audit);
    kb_config_free(&cfg);
    (void)uv_loop_close(loop);
    return 0;
}
