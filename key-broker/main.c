/* ccgate-kbs: a key broker speaking Trustee's KBS protocol RCAR 0.4.0 (key-broker/). */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ccgate/audit.h"
#include "ccgate/err.h"
#include "ccgate/log.h"
#include "ccgate/opts.h"
#include "ccgate/ratls.h"
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

static void on_signal(uv_signal_t *s, int sig)
{
    cg_log_info("stopping", "signal=%d", sig);
    kb_http_close(http);
    uv_close((uv_handle_t *)s, NULL);
    uv_signal_t *other = s->data;
    uv_close((uv_handle_t *)other, NULL);
}

static int is_loopback(const struct cg_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
    return a->ss.ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
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
    } else if (!is_loopback(&addr))
        cg_fatal("--listen %s: plain HTTP only on loopback; set tls_cert and tls_key for "
                 "other addresses",
                 listen);
    if (cg_audit_open(cfg.audit_log, &audit, err, sizeof(err)) != 0)
        cg_fatal("%s", err);
    if (kb_broker_new(&cfg, audit, &broker) != 0)
        cg_fatal("cannot create the token-signing key");

    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    int rc = kb_http_start(loop, &addr, broker, tls, &http);
    if (rc != 0)
        cg_fatal("--listen %s: %s", listen, cg_strerror(rc));
    uv_signal_t sigterm, sigint;
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    sigterm.data = &sigint;
    sigint.data = &sigterm;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
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
