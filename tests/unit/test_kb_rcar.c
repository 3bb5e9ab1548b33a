/* ccgate-kbs's RCAR handlers in steps (kb_broker_begin, kb_attest_job_verify,
 * kb_attest_job_finish): the session waits while its evidence is verified, the job survives
 * the session's end, and a verification that fails in the job is denied at finish. Real sim
 * evidence, a real broker, a real audit log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "ccgate/audit.h"
#include "ccgate/err.h"
#include "ccgate/jose.h"
#include "ccgate/kbc.h"
#include "ccgate/sim.h"
#include "kb_config.h"
#include "kb_rcar.h"

static char dir[] = "/tmp/ccgate-kb-rcar.XXXXXX";
static struct kb_config cfg;
static struct kb_resource res;
static struct cg_audit *audit;
static struct kb_broker *broker;
static struct cg_provider *tee;

static int setup(void **state)
{
    (void)state;
    uint8_t ark[32];
    char root[65], policy[160], path[96], err[256];
    if (mkdtemp(dir) == NULL || cg_sim_init(dir, ark) != 0 ||
        cg_sim_provider_new(dir, "/proc/self/exe", &tee) != 0)
        return -1;
    cg_hex(root, sizeof(root), ark, 32);
    snprintf(policy, sizeof(policy), "{\"sim\":{\"allow\":true,\"root_sha256\":\"%s\"}}", root);
    snprintf(res.id, sizeof(res.id), "models/key/tiny");
    res.secret = (uint8_t *)strdup("{\"k\":\"secret\"}");
    res.secret_len = strlen((const char *)res.secret);
    res.policy = calloc(1, sizeof(*res.policy));
    if (res.secret == NULL || res.policy == NULL ||
        kb_policy_parse(policy, strlen(policy), res.policy, &res.has_min_version, &res.min_version,
                        err, sizeof(err)) != 0)
        return -1;
    cfg.res = &res;
    cfg.n_res = 1;
    cfg.session_timeout_s = 300;
    cfg.token_lifetime_s = 300;
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    if (cg_audit_open(path, &audit, err, sizeof(err)) != 0 ||
        kb_broker_new(&cfg, audit, &broker) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    kb_broker_free(broker);
    cg_audit_close(audit);
    tee->free(tee);
    free(res.policy);
    free(res.secret);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct kb_request request(const char *method, const char *target, const char *cookie,
                                 const char *body, time_t now)
{
    struct kb_request rq = {.method = method,
                            .target = target,
                            .cookie = cookie,
                            .peer = "127.0.0.1:1",
                            .body = body,
                            .body_len = strlen(body),
                            .now = now};
    return rq;
}

static int status_of(const char *method, const char *target, const char *cookie, const char *body,
                     time_t now, char *detail, size_t detail_len)
{
    struct kb_request rq = request(method, target, cookie, body, now);
    struct kb_response rs;
    kb_broker_handle(broker, &rq, &rs);
    snprintf(detail, detail_len, "%.*s", (int)rs.body.len, rs.body.data ? rs.body.data : "");
    cg_buf_free(&rs.body);
    return rs.status;
}

/* /kbs/v0/auth at now: the session's cookie, and an attestation body for it with sim
 * evidence (bound to the body's key and nonce, or, with bound 0, to other data). */
static char *auth_and_attestation(time_t now, int bound, char *cookie, size_t cookie_len)
{
    static const char auth[] = "{\"version\":\"0.4.0\",\"tee\":\"ccgate-sim\",\"extra-params\":{}}";
    struct kb_request rq = request("POST", "/kbs/v0/auth", NULL, auth, now);
    struct kb_response rs;
    kb_broker_handle(broker, &rq, &rs);
    assert_int_equal(rs.status, 200);
    snprintf(cookie, cookie_len, "%.*s", (int)strcspn(rs.set_cookie, ";"), rs.set_cookie);
    json_t *chal = json_loadb(rs.body.data, rs.body.len, 0, NULL);
    cg_buf_free(&rs.body);
    const char *nonce = json_string_value(json_object_get(chal, "nonce"));
    const char *alg = json_string_value(
        json_object_get(json_object_get(chal, "extra-params"), "selected-hash-algorithm"));
    assert_non_null(nonce);
    assert_non_null(alg);
    struct cg_jose_key *k;
    assert_int_equal(cg_jose_key_generate(CG_JOSE_EC, &k), 0);
    json_t *pk = cg_jose_key_to_jwk(k, 0);
    uint8_t rd[CG_REPORT_DATA_LEN] = {0};
    if (bound)
        assert_int_equal(cg_kbc_binding(alg, pk, nonce, "", rd), 0);
    struct cg_evidence ev = {0};
    const char *tee_name;
    assert_int_equal(tee->get(tee, rd, &ev), 0);
    json_t *primary = cg_kbc_evidence_json(&ev, &tee_name);
    assert_non_null(primary);
    json_t *body =
        json_pack("{s:{s:s,s:o},s:{s:o,s:s}}", "runtime-data", "nonce", nonce, "tee-pubkey", pk,
                  "tee-evidence", "primary_evidence", primary, "additional_evidence", "");
    char *text = json_dumps(body, JSON_COMPACT);
    assert_non_null(text);
    json_decref(body);
    json_decref(chal);
    cg_evidence_clear(&ev);
    cg_jose_key_free(k);
    return text;
}

/* /kbs/v0/attest up to its job: every check before the verification passed. */
static struct kb_attest_job *begin(const char *cookie, const char *body, time_t now)
{
    struct kb_request rq = request("POST", "/kbs/v0/attest", cookie, body, now);
    struct kb_response rs;
    struct kb_attest_job *job;
    kb_broker_begin(broker, &rq, &rs, &job);
    assert_non_null(job);
    assert_null(rs.body.data); /* nothing answered yet */
    return job;
}

/* The job's verification, then its finish: the status, the body into detail. */
static int finish(struct kb_attest_job *job, char *detail, size_t detail_len)
{
    struct kb_response rs;
    kb_attest_job_verify(job);
    kb_attest_job_finish(broker, job, &rs);
    snprintf(detail, detail_len, "%.*s", (int)rs.body.len, rs.body.data ? rs.body.data : "");
    cg_buf_free(&rs.body);
    return rs.status;
}

static int release(const char *cookie, time_t now, char *detail, size_t detail_len)
{
    return status_of("GET", "/kbs/v0/resource/models/key/tiny", cookie, "", now, detail,
                     detail_len);
}

/* While the job runs the session waits (no release, no second attestation); then a token and
 * the release. */
static void test_steps_grant(void **state)
{
    (void)state;
    char cookie[160], detail[2048];
    time_t now = time(NULL);
    char *body = auth_and_attestation(now, 1, cookie, sizeof(cookie));
    struct kb_attest_job *job = begin(cookie, body, now);
    assert_int_equal(release(cookie, now, detail, sizeof(detail)), 401);
    assert_non_null(strstr(detail, "session.verifying"));
    assert_int_equal(status_of("POST", "/kbs/v0/attest", cookie, body, now, detail, sizeof(detail)),
                     401);
    assert_non_null(strstr(detail, "session.nonce_used"));
    assert_int_equal(finish(job, detail, sizeof(detail)), 200);
    assert_non_null(strstr(detail, "\"token\""));
    assert_int_equal(release(cookie, now, detail, sizeof(detail)), 200);
    free(body);
}

/* The session expires (its slot is cleared, then taken by others) while its evidence is
 * verified: the job still holds its own evidence; finish denies with session.expired. */
static void test_session_ends_while_verifying(void **state)
{
    (void)state;
    char cookie[160], other[160], detail[2048];
    time_t now = time(NULL), later = now + (time_t)cfg.session_timeout_s;
    char *body = auth_and_attestation(now, 1, cookie, sizeof(cookie));
    struct kb_attest_job *job = begin(cookie, body, now);
    assert_int_equal(release(cookie, later, detail, sizeof(detail)), 401);
    assert_non_null(strstr(detail, "session.expired"));
    for (int i = 0; i < 3; i++)
        free(auth_and_attestation(later, 1, other, sizeof(other)));
    assert_int_equal(finish(job, detail, sizeof(detail)), 401);
    assert_non_null(strstr(detail, "session.expired"));
    assert_non_null(strstr(detail, "it ended meanwhile"));
    free(body);
}

/* Evidence bound to other data passes every check before the job and fails in it: finish
 * denies and the session is spent. */
static void test_verify_fails_in_job(void **state)
{
    (void)state;
    char cookie[160], detail[2048];
    time_t now = time(NULL);
    char *body = auth_and_attestation(now, 0, cookie, sizeof(cookie));
    struct kb_attest_job *job = begin(cookie, body, now);
    assert_int_equal(finish(job, detail, sizeof(detail)), 401);
    assert_non_null(strstr(detail, "report_data"));
    assert_int_equal(release(cookie, now, detail, sizeof(detail)), 401);
    assert_non_null(strstr(detail, "session.used"));
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_grant),
        cmocka_unit_test(test_session_ends_while_verifying),
        cmocka_unit_test(test_verify_fails_in_job),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
