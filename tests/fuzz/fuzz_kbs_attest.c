/*
 * libFuzzer target: ccgate-kbs's request handling (key-broker/kb_rcar.c) with the input as
 * an /attest body after a real /auth, and as an /auth body: the JSON, the tee-pubkey JWK,
 * the evidence decoding and the verifier behind them. Nothing may crash or leak, and no
 * input may attest (the sim root below belongs to no key).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kb_config.h"
#include "kb_rcar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kb_config cfg;
static struct kb_resource res;
static struct kb_broker *broker;
static struct cg_audit *audit;
static int audit_fd;

static void setup(void)
{
    static const char policy[] =
        "{\"sim\":{\"allow\":true,\"root_sha256\":"
        "\"0000000000000000000000000000000000000000000000000000000000000000\"}}";
    char err[256], path[64];
    snprintf(res.id, sizeof(res.id), "a/b/c");
    res.secret = (uint8_t *)strdup("{}");
    res.secret_len = 2;
    res.policy = calloc(1, sizeof(*res.policy));
    if (res.policy == NULL ||
        kb_policy_parse(policy, strlen(policy), res.policy, &res.has_min_version, &res.min_version,
                        err, sizeof(err)) != 0)
        abort();
    cfg.res = &res;
    cfg.n_res = 1;
    cfg.session_timeout_s = 300;
    cfg.token_lifetime_s = 300;
    audit_fd = memfd_create("audit", 0);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", audit_fd);
    if (audit_fd < 0 || cg_audit_open(path, &audit, err, sizeof(err)) != 0 ||
        kb_broker_new(&cfg, audit, &broker) != 0)
        abort();
}

static void handle(const char *method, const char *target, const char *cookie, const char *body,
                   size_t len, struct kb_response *rs)
{
    struct kb_request rq = {.method = method,
                            .target = target,
                            .cookie = cookie,
                            .peer = "fuzz",
                            .body = body,
                            .body_len = len,
                            .now = time(NULL)};
    kb_broker_handle(broker, &rq, rs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    static const char auth[] = "{\"version\":\"0.4.0\",\"tee\":\"ccgate-sim\",\"extra-params\":{}}";
    if (broker == NULL)
        setup();
    if (++runs % 1024 == 0 && ftruncate(audit_fd, 0) != 0) /* keep the log small */
        abort();
    char *body = malloc(size + 1);
    if (body == NULL)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    struct kb_response rs;
    handle("POST", "/kbs/v0/auth", NULL, body, size, &rs);
    cg_buf_free(&rs.body);
    handle("POST", "/kbs/v0/auth", NULL, auth, strlen(auth), &rs);
    char cookie[160];
    snprintf(cookie, sizeof(cookie), "%.*s", (int)strcspn(rs.set_cookie, ";"), rs.set_cookie);
    cg_buf_free(&rs.body);
    handle("POST", "/kbs/v0/attest", cookie, body, size, &rs);
    if (rs.status == 200)
        abort();
    cg_buf_free(&rs.body);
    handle("GET", "/kbs/v0/resource/a/b/c", cookie, "", 0, &rs);
    if (rs.status == 200)
        abort();
    cg_buf_free(&rs.body);
    free(body);
    return 0;
}
