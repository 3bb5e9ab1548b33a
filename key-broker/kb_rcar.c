/* RCAR 0.4.0, the broker's side: sessions, evidence, tokens, releases, audit (kb_rcar.h). */
#include "kb_rcar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

#include "ccgate/jose.h"
#include "ccgate/kbc.h"
#include "ccgate/log.h"
#include "ccgate/ratls.h"
#include "kb_evidence.h"

#define RESOURCE_PREFIX "/kbs/v0/resource/"

/* S_VERIFYING: its evidence is being verified (kb_attest_job), the nonce already spent. */
enum sstate { S_FREE, S_AUTHED, S_VERIFYING, S_ATTESTED, S_USED };

struct session {
    enum sstate state;
    char id[48];  /* base64url of 32 random bytes: the cookie's value */
    char tag[17]; /* hex of SHA-256(id)[0..8): names the session in logs and tokens */
    time_t created;
    char nonce[48]; /* standard base64 of 32 random bytes */
    char tee[24];
    char alg[8]; /* selected hash algorithm */
    struct cg_evidence ev;
    uint8_t report_data[CG_REPORT_DATA_LEN];
    json_t *pubkey; /* tee-pubkey JWK */
    char evidence_sha256[65];
    char measurement[97];
};

struct kb_broker {
    const struct kb_config *c;
    struct cg_audit *audit;
    struct cg_jose_key *key; /* signs attestation tokens; lives in memory only */
    struct session s[KB_MAX_SESSIONS];
};

/* A decision's context, for the audit line and the error answer. */
struct decision {
    struct kb_broker *b;
    const char *event;
    const struct kb_request *rq;
    struct kb_response *rs;
    struct session *s;
    const char *resource;
    const struct kb_resource *res;
};

static void session_clear(struct session *s)
{
    cg_evidence_clear(&s->ev);
    json_decref(s->pubkey);
    memset(s, 0, sizeof(*s));
}

int kb_broker_new(const struct kb_config *c, struct cg_audit *audit, struct kb_broker **out)
{
    struct kb_broker *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    b->c = c;
    b->audit = audit;
    int rc = cg_jose_key_generate(CG_JOSE_EC, &b->key);
    if (rc != 0) {
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void kb_broker_free(struct kb_broker *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < KB_MAX_SESSIONS; i++)
        session_clear(&b->s[i]);
    cg_jose_key_free(b->key);
    free(b);
}

/* The audit line for d with decision and extra members (stolen reference, may be NULL). */
static int audit(const struct decision *d, const char *decision, json_t *extra)
{
    json_t *e = json_pack("{s:s,s:s,s:s}", "event", d->event, "decision", decision, "client",
                          d->rq->peer != NULL ? d->rq->peer : "");
    if (e == NULL) {
        json_decref(extra);
        return -ENOMEM;
    }
    if (d->s != NULL) {
        json_object_set_new(e, "tee", json_string(d->s->tee));
        json_object_set_new(e, "session", json_string(d->s->tag));
        if (d->s->evidence_sha256[0] != '\0')
            json_object_set_new(e, "evidence_sha256", json_string(d->s->evidence_sha256));
        if (d->s->measurement[0] != '\0')
            json_object_set_new(e, "measurement", json_string(d->s->measurement));
    }
    if (d->resource != NULL)
        json_object_set_new(e, "resource", json_string(d->resource));
    if (d->res != NULL) {
        char hex[65];
        cg_hex(hex, sizeof(hex), d->res->policy->digest, 32);
        json_object_set_new(e, "policy_sha256", json_string(hex));
    }
    if (extra != NULL) {
        json_object_update(e, extra);
        json_decref(extra);
    }
    int rc = cg_audit_append(d->b->audit, e);
    json_decref(e);
    return rc;
}

/* Answers a denial: status, {"type", "detail"}, the audit line and a log line. */
static void deny(const struct decision *d, int status, const struct cg_verdict *v)
{
    char detail[700];
    snprintf(detail, sizeof(detail), "%s: expected %s, got %s", v->check,
             v->expected[0] ? v->expected : "(see check)", v->actual);
    d->rs->status = status;
    json_t *o = json_pack("{s:s,s:s}", "type", "ccgate-kbs", "detail", detail);
    char type[96];
    snprintf(type, sizeof(type), "ccgate-kbs/%s", v->check);
    json_object_set_new(o, "type", json_string(type));
    char *txt = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (txt != NULL)
        (void)cg_buf_printf(&d->rs->body, "%s", txt);
    free(txt);
    json_decref(o);
    (void)audit(d, "denied",
                json_pack("{s:s,s:s,s:s}", "check", v->check, "expected", v->expected, "actual",
                          v->actual));
    cg_log_warn("kbs.denied", "event=%s client=%s check=%s status=%d session=%s", d->event,
                d->rq->peer != NULL ? d->rq->peer : "", v->check, status,
                d->s != NULL ? d->s->tag : "-");
}

static void deny_msg(const struct decision *d, int status, const char *check, const char *expected,
                     const char *actual)
{
    struct cg_verdict v;
    cg_reject(&v, 0, check, expected, "%s", actual);
    deny(d, status, &v);
}

static void respond_json(struct kb_response *rs, int status, json_t *o)
{
    char *txt = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    rs->status = txt != NULL ? status : 500;
    (void)cg_buf_printf(&rs->body, "%s", txt != NULL ? txt : "{\"type\":\"ccgate-kbs/internal\"}");
    free(txt);
    json_decref(o);
}

static int random_b64(int url, char *out, size_t outlen)
{
    uint8_t r[32];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return -EIO;
    char *s = url ? cg_b64url_encode(r, sizeof(r)) : cg_b64_encode(r, sizeof(r));
    if (s == NULL)
        return -ENOMEM;
    snprintf(out, outlen, "%s", s);
    free(s);
    return 0;
}

static int ct_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b))
        return 0;
    unsigned char x = 0;
    for (size_t i = 0; i < n; i++)
        x |= (unsigned char)(a[i] ^ b[i]);
    return x == 0;
}

/* The session this request names by cookie (or NULL, with the check that failed). */
static struct session *session_by_cookie(struct kb_broker *b, const struct kb_request *rq,
                                         const char **check)
{
    const char *p = rq->cookie;
    const size_t cl = strlen(CG_KBC_SESSION_COOKIE);
    *check = "session.missing";
    while (p != NULL && *p != '\0') {
        p += strspn(p, " ;");
        if (strncmp(p, CG_KBC_SESSION_COOKIE "=", cl + 1) == 0) {
            char id[64];
            size_t n = strcspn(p + cl + 1, ";");
            if (n >= sizeof(id)) {
                *check = "session.unknown";
                return NULL;
            }
            snprintf(id, sizeof(id), "%.*s", (int)n, p + cl + 1);
            for (size_t i = 0; i < KB_MAX_SESSIONS; i++) {
                struct session *s = &b->s[i];
                if (s->state == S_FREE || !ct_equal(s->id, id))
                    continue;
                if (rq->now - s->created >= (time_t)b->c->session_timeout_s) {
                    session_clear(s);
                    *check = "session.expired";
                    return NULL;
                }
                return s;
            }
            *check = "session.unknown";
            return NULL;
        }
        p += strcspn(p, ";");
    }
    return NULL;
}

/* The session of a bearer token: signed by this broker, unexpired, naming a live session. */
static struct session *session_by_token(struct kb_broker *b, const struct kb_request *rq,
                                        const char **check)
{
    json_t *claims = NULL;
    char err[160];
    struct session *found = NULL;
    *check = "token.invalid";
    if (cg_jwt_verify(b->key, rq->authorization + 7, rq->now, &claims, err, sizeof(err)) != 0)
        return NULL;
    const char *jti = json_string_value(json_object_get(claims, "jti"));
    *check = "session.unknown";
    for (size_t i = 0; jti != NULL && i < KB_MAX_SESSIONS; i++) {
        struct session *s = &b->s[i];
        if (s->state != S_FREE && strcmp(s->tag, jti) == 0) {
            if (rq->now - s->created >= (time_t)b->c->session_timeout_s) {
                session_clear(s);
                *check = "session.expired";
            } else {
                found = s;
            }
            break;
        }
    }
    json_decref(claims);
    return found;
}

static int tee_supported(const char *tee)
{
    return tee != NULL &&
           (strcmp(tee, CG_KBC_TEE_SIM) == 0 || strcmp(tee, "snp") == 0 || strcmp(tee, "tdx") == 0);
}

static void handle_auth(struct kb_broker *b, const struct kb_request *rq, struct kb_response *rs)
{
    struct decision d = {.b = b, .event = "auth", .rq = rq, .rs = rs};
    json_t *j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, NULL);
    const char *version = json_string_value(json_object_get(j, "version"));
    const char *tee = json_string_value(json_object_get(j, "tee"));
    const json_t *algs =
        json_object_get(json_object_get(j, "extra-params"), "supported-hash-algorithms");
    const char *alg = NULL;
    struct session *s = NULL;
    if (!json_is_object(j)) {
        deny_msg(&d, 400, "rcar.request", "a JSON object", "other bytes");
        goto out;
    }
    if (version == NULL || strcmp(version, CG_KBC_VERSION) != 0) {
        deny_msg(&d, 401, "rcar.version", CG_KBC_VERSION, version != NULL ? version : "none");
        goto out;
    }
    if (!tee_supported(tee)) {
        deny_msg(&d, 401, "rcar.tee",
                 "snp, tdx or " CG_KBC_TEE_SIM " (the TEEs this broker verifies)",
                 tee != NULL ? tee : "none");
        goto out;
    }
    /* SHA-384 unless the client lists only others. */
    static const char *const prefs[] = {"sha384", "sha256", "sha512"};
    for (size_t i = 0; alg == NULL && i < 3; i++) {
        if (algs == NULL) {
            alg = prefs[0];
            break;
        }
        size_t k;
        json_t *e;
        json_array_foreach(algs, k, e)
        {
            if (json_is_string(e) && strcmp(json_string_value(e), prefs[i]) == 0)
                alg = prefs[i];
        }
    }
    if (alg == NULL) {
        deny_msg(&d, 401, "rcar.hash-algorithm", "sha384, sha256 or sha512", "none of them");
        goto out;
    }
    for (size_t i = 0; s == NULL && i < KB_MAX_SESSIONS; i++) {
        if (b->s[i].state != S_FREE && rq->now - b->s[i].created >= (time_t)b->c->session_timeout_s)
            session_clear(&b->s[i]);
        if (b->s[i].state == S_FREE)
            s = &b->s[i];
    }
    if (s == NULL) {
        deny_msg(&d, 503, "rcar.sessions", "a free session", "all in use");
        goto out;
    }
    uint8_t h[32];
    if (random_b64(1, s->id, sizeof(s->id)) != 0 ||
        random_b64(0, s->nonce, sizeof(s->nonce)) != 0 ||
        cg_sha256((const uint8_t *)s->id, strlen(s->id), h) != 0) {
        session_clear(s);
        deny_msg(&d, 500, "rcar.random", "random bytes", "none");
        goto out;
    }
    cg_hex(s->tag, sizeof(s->tag), h, 8);
    s->state = S_AUTHED;
    s->created = rq->now;
    snprintf(s->tee, sizeof(s->tee), "%s", tee);
    snprintf(s->alg, sizeof(s->alg), "%s", alg);
    d.s = s;
    if (audit(&d, "granted", NULL) != 0) {
        session_clear(s);
        rs->status = 500;
        (void)cg_buf_printf(&rs->body, "{\"type\":\"ccgate-kbs/audit.write\"}");
        goto out;
    }
    snprintf(rs->set_cookie, sizeof(rs->set_cookie), "%s=%s; Path=/kbs/v0; HttpOnly; Max-Age=%u%s",
             CG_KBC_SESSION_COOKIE, s->id, b->c->session_timeout_s,
             b->c->tls_cert != NULL ? "; Secure" : "");
    respond_json(rs, 200,
                 json_pack("{s:s,s:{s:s}}", "nonce", s->nonce, "extra-params",
                           "selected-hash-algorithm", s->alg));
out:
    json_decref(j);
}

/* Verifies ev (genuine, bound to report_data) against policy p. */
static int verify_with(const struct cg_evidence *ev, const uint8_t *report_data,
                       const struct cg_policy *p, time_t now, struct cg_attestation *att,
                       struct cg_verdict *v)
{
    memset(att, 0, sizeof(*att));
    return cg_ratls_verify_evidence(ev->tag, ev->evidence, ev->evidence_len, ev, p, report_data,
                                    now, att, v);
}

/* An attestation between its checks on the loop and its verification (kb_rcar.h). It owns
 * copies of all it needs, so the session may end meanwhile; finish finds it again by id. */
struct kb_attest_job {
    char session_id[48];
    char peer[64];
    time_t now;
    json_t *body;          /* the request; tee-pubkey lives in it */
    struct cg_evidence ev; /* moved out of the session, back into it at finish */
    uint8_t report_data[CG_REPORT_DATA_LEN];
    const struct kb_config *c;
    struct cg_attestation att;
    struct cg_verdict first; /* why, when rc != 0 */
    int rc;
};

static void job_free(struct kb_attest_job *job)
{
    cg_evidence_clear(&job->ev);
    json_decref(job->body);
    free(job);
}

static void handle_attest(struct kb_broker *b, const struct kb_request *rq, struct kb_response *rs,
                          struct kb_attest_job **jobp)
{
    struct decision d = {.b = b, .event = "attest", .rq = rq, .rs = rs};
    const char *check;
    char err[256];
    struct cg_jose_key *tk = NULL;
    json_t *j = NULL;
    struct session *s = session_by_cookie(b, rq, &check);
    if (s == NULL) {
        deny_msg(&d, 401, check, "a live session from /kbs/v0/auth", "none");
        return;
    }
    d.s = s;
    if (s->state != S_AUTHED) {
        deny_msg(&d, 401, "session.nonce_used", "a session not yet attested",
                 "this session's nonce was already used");
        return;
    }
    s->state = S_USED; /* one attestation per nonce, whatever its outcome */
    j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, NULL);
    const json_t *rt = json_object_get(j, "runtime-data");
    const json_t *te = json_object_get(j, "tee-evidence");
    const char *nonce = json_string_value(json_object_get(rt, "nonce"));
    const json_t *pk = json_object_get(rt, "tee-pubkey");
    const json_t *add = json_object_get(te, "additional_evidence");
    if (!json_is_object(rt) || !json_is_object(te)) {
        deny_msg(&d, 400, "rcar.attestation", "runtime-data and tee-evidence objects", "missing");
        goto out;
    }
    if (nonce == NULL || !ct_equal(nonce, s->nonce)) {
        deny_msg(&d, 401, "rcar.nonce", "the nonce of this session's challenge",
                 nonce != NULL ? "another nonce (a replay?)" : "none");
        goto out;
    }
    if (cg_jose_key_from_jwk(pk, &tk, err, sizeof(err)) != 0 ||
        cg_jose_key_type(tk) == CG_JOSE_OCT) {
        deny_msg(&d, 400, "rcar.tee-pubkey", "an EC P-256 or RSA JWK", err);
        goto out;
    }
    if (add != NULL && !(json_is_string(add) && json_string_length(add) == 0)) {
        deny_msg(&d, 401, "rcar.additional_evidence", "none (no device evidence verifier here)",
                 "device evidence");
        goto out;
    }
    int rc = kb_evidence_decode(s->tee, json_object_get(te, "primary_evidence"),
                                &b->c->tdx_collateral, &s->ev, err, sizeof(err));
    if (rc != 0) {
        deny_msg(&d, 401, "rcar.evidence", "evidence of the TEE named at auth", err);
        goto out;
    }
    uint8_t h[32];
    if (cg_sha256(s->ev.evidence, s->ev.evidence_len, h) == 0)
        cg_hex(s->evidence_sha256, sizeof(s->evidence_sha256), h, 32);
    if (cg_kbc_binding(s->alg, pk, s->nonce, "", s->report_data) != 0) {
        deny_msg(&d, 400, "rcar.tee-pubkey", "a JWK with canonical JSON", "other");
        goto out;
    }
    struct kb_attest_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        deny_msg(&d, 500, "rcar.memory", "memory", "none");
        goto out;
    }
    snprintf(job->session_id, sizeof(job->session_id), "%s", s->id);
    snprintf(job->peer, sizeof(job->peer), "%s", rq->peer != NULL ? rq->peer : "");
    job->now = rq->now;
    job->body = j;
    j = NULL;
    job->ev = s->ev; /* the job's now; the session's again at finish */
    memset(&s->ev, 0, sizeof(s->ev));
    memcpy(job->report_data, s->report_data, sizeof(job->report_data));
    job->c = b->c;
    s->state = S_VERIFYING;
    *jobp = job;
out:
    cg_jose_key_free(tk);
    json_decref(j);
}

void kb_attest_job_verify(struct kb_attest_job *job)
{
    /* Genuine and bound under some resource's trust anchors; each release appraises again
     * against its own policy. On failure, say why under the first policy that accepts this
     * TEE at all. */
    struct cg_verdict v;
    job->rc = -1;
    for (size_t i = 0; job->rc != 0 && i < job->c->n_res; i++) {
        job->rc =
            verify_with(&job->ev, job->report_data, job->c->res[i].policy, job->now, &job->att, &v);
        if (job->rc != 0 &&
            (job->first.check[0] == '\0' || (strcmp(job->first.check, "evidence.tee") == 0 &&
                                             strcmp(v.check, "evidence.tee") != 0)))
            job->first = v;
    }
}

static void response_init(struct kb_response *rs)
{
    rs->status = 500;
    rs->set_cookie[0] = '\0';
    cg_buf_init(&rs->body, KB_MAX_BODY);
}

void kb_attest_job_finish(struct kb_broker *b, struct kb_attest_job *job, struct kb_response *rs)
{
    const struct kb_request req = {.peer = job->peer, .now = job->now}, *rq = &req;
    struct decision d = {.b = b, .event = "attest", .rq = rq, .rs = rs};
    const struct cg_attestation *att = &job->att;
    const json_t *pk = json_object_get(json_object_get(job->body, "runtime-data"), "tee-pubkey");
    char *token = NULL;
    struct session *s = NULL;
    response_init(rs);
    for (size_t i = 0; s == NULL && i < KB_MAX_SESSIONS; i++)
        if (b->s[i].state == S_VERIFYING && strcmp(b->s[i].id, job->session_id) == 0)
            s = &b->s[i];
    if (s == NULL) { /* expired, and maybe reused, while its evidence was verified */
        deny_msg(&d, 401, "session.expired", "a session alive until its evidence is verified",
                 "it ended meanwhile");
        goto out;
    }
    d.s = s;
    s->state = S_USED;
    s->ev = job->ev; /* each release verifies it again */
    memset(&job->ev, 0, sizeof(job->ev));
    if (job->rc != 0) {
        deny(&d, 401, &job->first);
        goto out;
    }
    cg_hex(s->measurement, sizeof(s->measurement),
           att->tag == CG_TAG_TDX ? att->tdx.mrtd : att->snp.measurement, 48);
    json_t *claims = json_pack(
        "{s:s,s:I,s:I,s:s,s:s,s:O,s:s,s:s,s:b}", "iss", "ccgate-kbs", "iat", (json_int_t)rq->now,
        "exp", (json_int_t)(rq->now + (time_t)b->c->token_lifetime_s), "jti", s->tag, "tee", s->tee,
        "tee-pubkey", pk, "evidence_sha256", s->evidence_sha256, "measurement", s->measurement,
        "insecure", att->insecure);
    if (claims == NULL || cg_jwt_sign(b->key, claims, &token) != 0) {
        json_decref(claims);
        deny_msg(&d, 500, "rcar.token", "a signed token", "signing failed");
        goto out;
    }
    json_decref(claims);
    if (audit(&d, "granted", NULL) != 0) {
        deny_msg(&d, 500, "audit.write", "the decision recorded", "write failed");
        goto out;
    }
    s->pubkey = json_deep_copy(pk);
    s->state = S_ATTESTED;
    respond_json(rs, 200, json_pack("{s:s}", "token", token));
out:
    free(token);
    job_free(job);
}

/* The plaintext to release: the resource's bytes, with the model minimum when it has one. */
static char *release_text(const struct kb_resource *r, size_t *n)
{
    if (!r->has_min_version) {
        char *p = malloc(r->secret_len + 1);
        if (p != NULL) {
            memcpy(p, r->secret, r->secret_len);
            *n = r->secret_len;
        }
        return p;
    }
    json_t *j = json_loadb((const char *)r->secret, r->secret_len, 0, NULL);
    char *txt = NULL;
    if (json_is_object(j) && json_object_set_new(j, CG_KBC_MIN_VERSION_MEMBER,
                                                 json_integer((json_int_t)r->min_version)) == 0)
        txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (txt != NULL)
        *n = strlen(txt);
    return txt;
}

static void handle_resource(struct kb_broker *b, const struct kb_request *rq,
                            struct kb_response *rs)
{
    const char *id = rq->target + strlen(RESOURCE_PREFIX);
    struct decision d = {.b = b, .event = "resource", .rq = rq, .rs = rs, .resource = id};
    const char *check;
    struct session *s;
    struct cg_attestation *att = NULL;
    struct cg_jose_key *tk = NULL;
    json_t *jwe = NULL;
    char *pt = NULL, err[160];
    size_t ptn = 0;
    if (!kb_resource_id_ok(id)) {
        d.resource = NULL;
        deny_msg(&d, 400, "rcar.resource", "REPO/TYPE/TAG", "another path");
        return;
    }
    if (rq->authorization != NULL && strncmp(rq->authorization, "Bearer ", 7) == 0)
        s = session_by_token(b, rq, &check);
    else
        s = session_by_cookie(b, rq, &check);
    if (s == NULL) {
        deny_msg(&d, 401, check, "an attested session (cookie or bearer token)", "none");
        return;
    }
    d.s = s;
    if (s->state == S_AUTHED || s->state == S_VERIFYING) {
        deny_msg(&d, 401, s->state == S_AUTHED ? "session.not_attested" : "session.verifying",
                 "a session attested at /kbs/v0/attest",
                 s->state == S_AUTHED ? "not attested" : "its evidence is still being verified");
        return;
    }
    if (s->state == S_USED) {
        deny_msg(&d, 401, "session.used", "a session that has not had a decision yet",
                 "this session was already used");
        return;
    }
    const struct kb_resource *r = kb_config_find(b->c, id);
    if (r == NULL) {
        deny_msg(&d, 404, "rcar.resource", "a resource of this broker", id);
        return;
    }
    d.res = r;
    s->state = S_USED; /* one release decision per session */
    att = malloc(sizeof(*att));
    struct cg_verdict v;
    if (att == NULL) {
        deny_msg(&d, 500, "rcar.memory", "memory", "none");
        goto out;
    }
    if (verify_with(&s->ev, s->report_data, r->policy, rq->now, att, &v) != 0 ||
        cg_ratls_appraise(r->policy, att, &v) != 0) {
        deny(&d, 403, &v);
        goto out;
    }
    pt = release_text(r, &ptn);
    if (pt == NULL || cg_jose_key_from_jwk(s->pubkey, &tk, err, sizeof(err)) != 0 ||
        cg_jwe_encrypt(tk, (const uint8_t *)pt, ptn, &jwe) != 0) {
        deny_msg(&d, 500, "rcar.jwe", "the resource encrypted to tee-pubkey", "failed");
        goto out;
    }
    json_t *extra = r->has_min_version
                        ? json_pack("{s:I}", "model_min_version", (json_int_t)r->min_version)
                        : NULL;
    if (audit(&d, "granted", extra) != 0) {
        deny_msg(&d, 500, "audit.write", "the decision recorded", "write failed");
        goto out;
    }
    cg_log_info("kbs.released", "resource=%s client=%s session=%s measurement=%.16s...", id,
                rq->peer != NULL ? rq->peer : "", s->tag, s->measurement);
    respond_json(rs, 200, jwe);
    jwe = NULL;
out:
    if (pt != NULL) {
        explicit_bzero(pt, ptn);
        free(pt);
    }
    json_decref(jwe);
    cg_jose_key_free(tk);
    free(att);
}

void kb_broker_begin(struct kb_broker *b, const struct kb_request *rq, struct kb_response *rs,
                     struct kb_attest_job **job)
{
    *job = NULL;
    response_init(rs);
    int post = strcmp(rq->method, "POST") == 0, get = strcmp(rq->method, "GET") == 0;
    if (strcmp(rq->target, "/kbs/v0/auth") == 0 && post)
        handle_auth(b, rq, rs);
    else if (strcmp(rq->target, "/kbs/v0/attest") == 0 && post)
        handle_attest(b, rq, rs, job);
    else if (strncmp(rq->target, RESOURCE_PREFIX, strlen(RESOURCE_PREFIX)) == 0 && get)
        handle_resource(b, rq, rs);
    else if (strcmp(rq->target, "/kbs/v0/auth") == 0 || strcmp(rq->target, "/kbs/v0/attest") == 0 ||
             strncmp(rq->target, RESOURCE_PREFIX, strlen(RESOURCE_PREFIX)) == 0)
        respond_json(rs, 405,
                     json_pack("{s:s,s:s}", "type", "ccgate-kbs/method", "detail",
                               "method not allowed here"));
    else
        respond_json(rs, 404,
                     json_pack("{s:s,s:s}", "type", "ccgate-kbs/path", "detail",
                               "try /kbs/v0/auth, /kbs/v0/attest, /kbs/v0/resource/R"));
}

void kb_broker_handle(struct kb_broker *b, const struct kb_request *rq, struct kb_response *rs)
{
    struct kb_attest_job *job;
    kb_broker_begin(b, rq, rs, &job);
    if (job != NULL) {
        kb_attest_job_verify(job);
        kb_attest_job_finish(b, job, rs);
    }
}
